import ArgumentParser
import Cluster
import Monitoring
import Training

/// `--metrics-listen` and `--metrics-insecure`, shared by `coordinator` and `launch`.
struct MetricsOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Serve Prometheus metrics over HTTP (GET /metrics) at ADDRESS:PORT, e.g. 127.0.0.1:9464 (port 0: any free port). Off by default; an address other than loopback needs --metrics-insecure.",
        valueName: "address:port"))
    var metricsListen: String?

    @Flag(help: "Allow --metrics-listen on an address other than loopback (plain HTTP without authentication; trusted networks only).")
    var metricsInsecure = false

    func validate() throws {
        if metricsInsecure && metricsListen == nil { throw ValidationError("--metrics-insecure goes with --metrics-listen") }
        if let metricsListen {
            do { _ = try MetricsAddress(parsing: metricsListen) } catch { throw ValidationError("\(error)") }
        }
    }

    /// Listening once this returns (nil without --metrics-listen); refuses an address other
    /// than loopback without --metrics-insecure, and a taken port.
    func start() throws -> (metrics: TrainingMetrics, server: MetricsServer)? {
        guard let metricsListen else { return nil }
        let address = try MetricsAddress(parsing: metricsListen)
        if let warning = try address.checkExposure(insecure: metricsInsecure) { Console.error("ssgd: warning: \(warning)") }
        let metrics = TrainingMetrics()
        let server = try MetricsServer(address: address, render: metrics.exposition)
        Console.line("metrics on http://\(server.address)/metrics")
        return (metrics, server)
    }
}

extension TrainingMetrics {
    /// Watch a coordinator's trainer and executor.
    func observe(_ trainer: Trainer, executor: ClusterExecutor) {
        observe(trainer)
        clusterCounters = { [unowned executor] in
            ClusterCounters(reassignments: executor.reassignments, droppedMessages: executor.droppedMessages)
        }
    }
}
