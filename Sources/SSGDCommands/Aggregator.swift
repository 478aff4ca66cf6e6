import ArgumentParser
import Cluster
import Engine
import Foundation
import Training

struct AggregatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aggregator",
        abstract: "Stand between a coordinator and a group of workers, reducing their gradients before they travel up.",
        discussion: """
            To its parent (`--connect`: the coordinator or another aggregator) it is one worker; its own \
            workers connect to it (`ssgd worker --connect` its --bind endpoint). Each shard it is sent is \
            cut over its live workers and their gradient blocks are added into the unit tree's blocks of \
            the shard, exactly the additions the coordinator would make, so the result keeps its bits \
            while the coordinator's link carries one result per aggregator instead of one per worker. \
            A dead worker's part is re-issued to another of its workers; if the aggregator dies, the \
            coordinator re-issues its shard to another member, and its workers wait for it to return. \
            See docs/scaling.md.
            """)

    @OptionGroup var parent: ParentOptions

    @Option(help: "ZeroMQ endpoint this aggregator's workers connect to, e.g. tcp://0.0.0.0:5556 or ipc:///tmp/ssgd-agg.sock.")
    var bind: String

    @Option(help: "Workers that must join before this aggregator joins its parent.")
    var workers = 1

    @Flag(help: "Admit workers whose OpenBLAS kernel differs from this aggregator's (results then depend on which worker computed what).")
    var allowMixedKernels = false

    @Flag(help: "Cut each shard's units equally over this aggregator's workers instead of by their measured speed. Either way the result has the same bits.")
    var equalShards = false

    @OptionGroup var security: AggregatorSecurityOptions

    func validate() throws {
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        try checkEndpoint(bind, "--bind", operation: "bind")
    }

    func run() throws {
        ProcessSupervisor.adoptLauncherIfAny()
        try reportingErrors {
            if case .insecure(let warning) = try security.check(bind: bind) { Console.error("ssgd: warning: \(warning)") }
            let serverSecurity = try security.loadServer()
            let worker = try Worker(options: parent.workerOptions(threads: 1, security: try security.loadClient()))
            defer { worker.close() }
            worker.faultHooks = SSGD.workerFaultHooks
            let (bind, workers, allowMixedKernels, balanceShards) = (bind, workers, allowMixedKernels, !equalShards)
            worker.makeBackend = { job in
                let settings = ClusterSettings(
                    bind: bind, config: job.config, minimumWorkers: workers, security: serverSecurity,
                    allowMixedKernels: allowMixedKernels, balanceShards: balanceShards)
                let executor = try ClusterExecutor(
                    config: job.config, identity: job.identity, network: job.network, data: job.data, settings: settings)
                Console.line("aggregator: listening on \(executor.endpoint) for \(workers) worker(s) (job \(job.identity.jobID.short)…)")
                do {
                    try executor.waitForWorkers(workers)
                } catch {
                    executor.shutdown(reason: "aggregator stopped: \(error)")
                    throw error
                }
                return AggregatingShardBackend(executor: executor, parameterCount: job.network.parameterCount)
            }
            try worker.run()
        }
    }
}
