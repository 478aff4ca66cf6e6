import ArgumentParser
import Cluster
import Engine
import Foundation
import Runs
import Study
import Training

struct Launch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train on this node with a coordinator and N worker processes.",
        discussion: """
            The coordinator runs in this process; workers are started, their output prefixed with \
            [worker K], and stopped when training ends. Ctrl-C stops after the current step, writes a \
            checkpoint and shuts the workers down. If a worker fails, everything stops with the reason. \
            Parameters and gradients move through shared memory in /dev/shm (SSGD_SHM_DISABLE=1: through \
            the sockets); see docs/distributed.md.
            """)

    @OptionGroup var options: TrainingOptions
    @OptionGroup var metricsOptions: MetricsOptions

    @Option(name: .customLong("workers"), help: "Worker processes to start.")
    var workerCount = 2

    @Option(help: "Aggregator processes between the coordinator and the workers (0: none); the workers are split over them in contiguous groups. Results keep their bits; see docs/scaling.md.")
    var aggregators = 0

    @Option(help: "Transport between coordinator and workers: ipc or tcp (loopback).")
    var transport = "ipc"

    @Flag(help: "Admit workers whose OpenBLAS kernel (core name) differs from the coordinator's; results then depend on which worker computed what. Without it they are refused: pin one kernel with OPENBLAS_CORETYPE instead.")
    var allowMixedKernels = false

    @Flag(help: "Give every worker exactly its equal share of each step's units. By default the units are cut by measured speed and neighbouring 1-lane-group workers on this host meet within the step (each takes units from its end of their shared range), so a slower or busier worker holds the step back less. Either way the result has the same bits.")
    var equalShards = false

    func validate() throws {
        guard workerCount >= 1 else { throw ValidationError("--workers must be at least 1") }
        guard aggregators >= 0 && aggregators <= workerCount else {
            throw ValidationError("--aggregators must be between 0 and --workers (\(workerCount)), got \(aggregators)")
        }
        guard ["ipc", "tcp"].contains(transport) else { throw ValidationError("--transport is ipc or tcp, got '\(transport)'") }
    }

    func run() throws {
        try reportingErrors {
            ChildProcess.adoptRunnerIfAny()
            let exporter = try metricsOptions.start()
            defer { exporter?.server.stop() }
            let prepared = try TrainingSession.prepare(options.request)
            let cores = ProcessInfo.processInfo.activeProcessorCount
            // Workers × lanes ≤ cores unless --threads says otherwise.
            let workerThreads = prepared.config.threads > 0 ? prepared.config.threads : max(1, cores / workerCount)
            BLASThreads.set(1)
            StopRequest.installHandlers()
            let socketBase = "\(NSTemporaryDirectory())ssgd-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let endpoint = transport == "ipc" ? "ipc://\(socketBase).sock" : "tcp://127.0.0.1:*"
            // Aggregators always listen on ipc: their workers are on this node, and launch must
            // know the endpoint before the aggregator binds it.
            let aggregatorEndpoints = (0..<aggregators).map { "ipc://\(socketBase)-aggregator-\($0).sock" }
            let settings = ClusterSettings(
                bind: endpoint, config: prepared.config, minimumWorkers: aggregators > 0 ? aggregators : workerCount,
                statusEndpoint: transport == "ipc" ? endpoint + ".status" : "tcp://127.0.0.1:*",
                allowMixedKernels: allowMixedKernels, balanceShards: !equalShards)
            let (trainer, executor) = try ClusterSession.coordinatorTrainer(prepared, settings: settings)
            trainer.resumeCommand = "ssgd launch --workers \(workerCount)" + (aggregators > 0 ? " --aggregators \(aggregators)" : "")
                + (allowMixedKernels ? " --allow-mixed-kernels" : "") + (equalShards ? " --equal-shards" : "")
            exporter?.metrics.observe(trainer, executor: executor)
            let supervisor = ProcessSupervisor(maxRestarts: prepared.config.maxWorkerRestarts)
            executor.abortCheck = { supervisor.failureReason.map { "stopping: \($0)" } }
            defer {
                executor.shutdown(reason: StopRequest.requested ? "stopped on request" : "launch finished")
                supervisor.stopAll(grace: 5)
                if endpoint.hasPrefix("ipc://") {
                    let path = String(endpoint.dropFirst(6))
                    try? FileManager.default.removeItem(atPath: path)
                    try? FileManager.default.removeItem(atPath: path + ".status")
                }
                for aggregatorEndpoint in aggregatorEndpoints {
                    try? FileManager.default.removeItem(atPath: String(aggregatorEndpoint.dropFirst(6)))
                }
            }
            Console.line("launch: coordinator on \(executor.endpoint), \(workerCount) worker(s) × \(workerThreads) lane(s)"
                + (aggregators > 0 ? " under \(aggregators) aggregator(s)" : "")
                + (executor.statusEndpoint.map { ", status on \($0)" } ?? ""))
            let dataArguments = prepared.config.dataset != .synthetic ? ["--data", prepared.config.dataPath] : []
            // Worker k's parent: the coordinator, or aggregator k·A/W (contiguous groups).
            let parent = { (k: Int) in aggregators > 0 ? k * aggregators / workerCount : -1 }
            for a in 0..<aggregators {
                let group = (0..<workerCount).filter { parent($0) == a }.count
                let arguments = ["aggregator", "--connect", executor.endpoint, "--bind", aggregatorEndpoints[a],
                                 "--workers", String(group), "--name", "aggregator-\(a)"] + (equalShards ? ["--equal-shards"] : [])
                    + dataArguments
                try supervisor.start(label: "aggregator \(a)", executable: ProcessSupervisor.currentExecutable, arguments: arguments)
            }
            for k in 0..<workerCount {
                let target = parent(k) >= 0 ? aggregatorEndpoints[parent(k)] : executor.endpoint
                let arguments = ["worker", "--connect", target, "--threads", String(workerThreads), "--name", "worker-\(k)"] + dataArguments
                try supervisor.start(label: "worker \(k)", executable: ProcessSupervisor.currentExecutable, arguments: arguments)
            }
            Console.line("launch: worker pids \(supervisor.processIDs.map(String.init).joined(separator: " "))")
            try executor.waitForWorkers(aggregators > 0 ? aggregators : workerCount)
            try trainer.train()
        }
    }
}
