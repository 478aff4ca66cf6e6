import ArgumentParser
import Cluster
import Engine
import Training

struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the coordinator of a cluster: workers connect with `ssgd worker --connect ENDPOINT`.",
        discussion: "Owns the parameters, momentum and spectral vectors; shards each batch over the live workers and reduces their gradients in a fixed order, so the result does not depend on the number of workers.")

    @OptionGroup var options: TrainingOptions

    @Option(help: "ZeroMQ endpoint to bind, e.g. tcp://0.0.0.0:5555, tcp://127.0.0.1:* or ipc:///tmp/ssgd.sock.")
    var bind = "tcp://127.0.0.1:5555"

    @Option(help: "Workers that must join before step 0.")
    var workers = 1

    @Option(help: "Seconds to wait for workers before giving up (the checkpoint is kept).")
    var waitForWorkers: Double = 120

    func validate() throws {
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        guard waitForWorkers > 0 else { throw ValidationError("--wait-for-workers must be positive") }
    }

    func run() throws {
        try reportingErrors {
            let prepared = try TrainingSession.prepare(options.request)
            BLASThreads.set(prepared.config.threads == 0 ? 1 : prepared.config.threads)
            StopRequest.installHandlers()
            let settings = ClusterSettings(bind: bind, minimumWorkers: workers, waitForWorkersSeconds: waitForWorkers)
            let (trainer, executor) = try ClusterSession.coordinatorTrainer(prepared, settings: settings)
            trainer.resumeCommand = "ssgd coordinator --bind \(bind)"
            Console.line("coordinator listening on \(executor.endpoint) (job \(executor.identity.jobID.short)…)")
            defer { executor.shutdown() }
            try executor.waitForWorkers(workers)
            try trainer.train()
        }
    }
}

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Compute gradients for a coordinator.",
        discussion: "Gets the training config from the coordinator (or --config), loads the data set locally and serves shards until the coordinator shuts it down. Exits non-zero when refused (other version, job or data).")

    @Option(help: "Coordinator endpoint, e.g. tcp://10.0.0.1:5555 or ipc:///tmp/ssgd.sock.")
    var connect: String

    @Option(help: "Use this config instead of the coordinator's (must describe the same job).")
    var config: String?

    @Option(help: "Folder of the data set on this node (overrides data_path).")
    var data: String?

    @Option(help: "BLAS threads for this worker.")
    var threads = 1

    @Option(help: "Name shown in the coordinator's log (default: host:pid).")
    var name = ""

    func run() throws {
        ProcessSupervisor.adoptLauncherIfAny()
        try reportingErrors {
            let worker = try Worker(options: WorkerOptions(endpoint: connect, configPath: config, dataPath: data, threads: threads, name: name))
            defer { worker.close() }
            try worker.run()
        }
    }
}
