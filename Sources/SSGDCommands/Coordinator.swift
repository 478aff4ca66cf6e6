import ArgumentParser
import Cluster
import Engine
import Foundation
import Runs
import Training
import Transport

struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the coordinator of a cluster: workers connect with `ssgd worker --connect ENDPOINT`.",
        discussion: """
            Owns the parameters, momentum and spectral vectors; shards each batch over the live workers \
            and reduces their gradients in a fixed order, so the result does not depend on the number \
            of workers. A dead worker's shard is re-issued; `--resume RUN_DIR` continues after a crash \
            and connected workers rejoin by themselves. A non-loopback --bind needs CURVE keys \
            (ssgd keygen) or --insecure.
            """)

    @OptionGroup var options: TrainingOptions
    @OptionGroup var security: SecurityOptions
    @OptionGroup var metricsOptions: MetricsOptions

    @Option(help: "ZeroMQ endpoint to bind, e.g. tcp://0.0.0.0:5555, tcp://127.0.0.1:* or ipc:///tmp/ssgd.sock.")
    var bind = "tcp://127.0.0.1:5555"

    @Option(help: "Workers that must join before step 0.")
    var workers = 1

    @Option(help: "Seconds to wait for workers (at the start, and when all are lost) before stopping; overrides wait_for_workers.")
    var waitForWorkers: Double?

    @Option(help: "Status socket for `ssgd status` (loopback or ipc; default: the bind port + 1 on 127.0.0.1 (any free port for a :* bind), or the ipc path + .status).")
    var statusBind: String?

    @Flag(help: "Admit workers whose OpenBLAS kernel (core name) differs from the coordinator's; results then depend on which worker computed what. Without it they are refused: pin one kernel with OPENBLAS_CORETYPE instead.")
    var allowMixedKernels = false

    @Flag(help: "Give every worker exactly its equal share of each step's units. By default the units are cut by measured speed and neighbouring 1-lane-group workers on this host meet within the step (each takes units from its end of their shared range), so a slower or busier worker holds the step back less. Either way the result has the same bits.")
    var equalShards = false

    func validate() throws {
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        if let waitForWorkers, waitForWorkers <= 0 { throw ValidationError("--wait-for-workers must be positive") }
        try checkEndpoint(bind, "--bind", operation: "bind")
        if let statusBind { try checkEndpoint(statusBind, "--status-bind", operation: "bind") }
    }

    func run() throws {
        try reportingErrors {
            if case .insecure(let warning) = try security.check(bind: bind) { Console.error("ssgd: warning: \(warning)") }
            let exporter = try metricsOptions.start()
            defer { exporter?.server.stop() }
            var request = options.request
            if let waitForWorkers { request.overrides.append(("wait_for_workers", String(waitForWorkers))) }
            let prepared = try TrainingSession.prepare(request)
            BLASThreads.set(prepared.config.threads == 0 ? 1 : prepared.config.threads)
            StopRequest.installHandlers()
            let settings = ClusterSettings(
                bind: bind, config: prepared.config, minimumWorkers: workers, security: try security.load(),
                statusEndpoint: statusBind ?? ClusterStatus.endpoint(forCoordinator: bind), allowMixedKernels: allowMixedKernels,
                balanceShards: !equalShards)
            let (trainer, executor) = try ClusterSession.coordinatorTrainer(prepared, settings: settings)
            trainer.resumeCommand = "ssgd coordinator --bind \(bind)" + (allowMixedKernels ? " --allow-mixed-kernels" : "")
                + (equalShards ? " --equal-shards" : "")
            exporter?.metrics.observe(trainer, executor: executor)
            Console.line("coordinator listening on \(executor.endpoint) (job \(executor.identity.jobID.short)…, "
                + "\(settings.security == nil ? "plaintext" : "CURVE")"
                + (executor.statusEndpoint.map { ", status on \($0)" } ?? "") + ")")
            defer { executor.shutdown(reason: StopRequest.requested ? "stopped on request" : "coordinator finished") }
            try executor.waitForWorkers(workers)
            try trainer.train()
        }
    }
}

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Compute gradients for a coordinator.",
        discussion: """
            Gets the training config from the coordinator (or --config), loads the data set locally \
            and serves shards until the coordinator shuts it down. Heartbeats on a side connection; \
            if the coordinator restarts, the worker rejoins by itself. Exits 1 when refused (other \
            protocol version, OpenBLAS kernel, job or data set). On the coordinator's host, parameters \
            and gradients move through shared memory in /dev/shm (SSGD_SHM_DISABLE=1: through the socket).
            """)

    @OptionGroup var parent: ParentOptions

    @Option(help: "Lanes of this worker: single-threaded engine contexts, OpenBLAS at one thread in each (never changes a result).")
    var threads = 1

    @OptionGroup var security: WorkerSecurityOptions

    func run() throws {
        ProcessSupervisor.adoptLauncherIfAny()
        try reportingErrors {
            let worker = try Worker(options: parent.workerOptions(threads: threads, security: try security.load()))
            defer { worker.close() }
            worker.faultHooks = SSGD.workerFaultHooks
            try worker.run()
        }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Ask a running coordinator for step, epoch, live workers, last step time and recent reassignments.")

    @Option(help: "The coordinator's endpoint (its status socket is found from it) …")
    var coordinator: String?

    @Option(help: "… or the status socket itself.")
    var endpoint: String?

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        try reportingErrors {
            guard let target = endpoint ?? coordinator.flatMap(ClusterStatus.endpoint(forCoordinator:)) else {
                throw ValidationError("give --coordinator ENDPOINT (tcp://HOST:PORT or ipc://PATH) or --endpoint STATUS_ENDPOINT")
            }
            let status = try ClusterStatusClient.query(target)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                Console.line(String(decoding: try encoder.encode(status), as: UTF8.self))
            } else {
                Console.line(status.text)
            }
        }
    }
}

/// How a worker or an aggregator reaches its parent (the coordinator, or an aggregator).
struct ParentOptions: ParsableArguments {
    @Option(help: "The parent's endpoint (the coordinator, or an aggregator), e.g. tcp://10.0.0.1:5555 or ipc:///tmp/ssgd.sock.")
    var connect: String

    @Option(help: "Use this config instead of the parent's (must describe the same job).")
    var config: String?

    @Option(help: "Folder of the data set on this node (overrides data_path).")
    var data: String?

    @Option(help: "Name shown in the parent's log (default: host:pid).")
    var name = ""

    @Option(help: "Seconds without hearing from the parent before giving up.")
    var giveUpAfter: Double = 600

    @Option(help: "Seconds to wait for the parent to answer the handshake.")
    var handshakeTimeout: Double = 60

    func validate() throws {
        try checkEndpoint(connect, "--connect", operation: "connect")
    }

    func workerOptions(threads: Int, security: CurveClientSecurity?) -> WorkerOptions {
        WorkerOptions(
            endpoint: connect, configPath: config, dataPath: data, threads: threads, name: name,
            handshakeTimeoutSeconds: handshakeTimeout, security: security, giveUpSeconds: giveUpAfter)
    }
}

/// An endpoint option that libzmq would misread (a tcp port outside 1–65535) is a usage error.
func checkEndpoint(_ endpoint: String, _ option: String, operation: String) throws {
    do {
        _ = try ZMQEndpoint(endpoint, operation: operation)
    } catch {
        throw ValidationError("\(option): \(error)")
    }
}
