import Foundation
import Testing
import TestSupport

/// `--metrics-listen` end to end: a real `ssgd launch` scraped by a real Prometheus server
/// (Debian's prometheus), and the refusals that happen before any run directory is made.
@Suite(.serialized) struct MetricsScrapeTests {
    /// Long enough (2,000 epochs of 5 steps) to be stopped by the test, not by its end.
    static func longConfig() -> String {
        ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "spectral", epochs: 2000))
    }

    /// The value of an instant query's first sample, if Prometheus has one.
    static func query(_ expression: String, port: Int) -> Double? {
        guard let answer = try? LoopbackHTTP.get(port: port, path: "/api/v1/query?query=\(expression)"), answer.status == 200,
              let json = try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any],
              let data = json["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
              let value = result.first?["value"] as? [Any], value.count == 2, let text = value[1] as? String
        else { return nil }
        return Double(text)
    }

    @Test func prometheusScrapesTheStepOfARunningLaunch() throws {
        let prometheus = try #require(ExternalProgram.which("prometheus"), "prometheus not found: install Debian's prometheus (make test-deps)")
        let folder = Fixtures.temporaryDirectory("ssgd-scrape")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let launch = try SSGDProcess([
            "launch", "--config", Self.longConfig(), "--run-dir", folder + "/run", "--workers", "2", "--threads", "1",
            "--metrics-listen", "127.0.0.1:0",
        ])
        defer {
            kill(launch.processID, SIGINT)
            launch.wait(timeout: 60)
        }
        #expect(launch.waitForOutput("/metrics", timeout: 60), "\(launch.output)")
        let announced = launch.output.split(separator: "\n").first { $0.hasPrefix("metrics on http://127.0.0.1:") } ?? ""
        let metricsPort = try #require(Int(announced.dropFirst("metrics on http://127.0.0.1:".count).prefix { $0.isNumber }),
                                       "no metrics port in: \(launch.output)")

        let webPort = try LoopbackHTTP.freePort()
        let configPath = folder + "/prometheus.yml"
        try """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: ssgd
                scrape_interval: 1s
                scrape_timeout: 1s
                static_configs:
                  - targets: ["127.0.0.1:\(metricsPort)"]
            """.write(toFile: configPath, atomically: true, encoding: .utf8)
        let server = Process()
        server.executableURL = URL(fileURLWithPath: prometheus)
        server.arguments = [
            "--config.file=\(configPath)", "--storage.tsdb.path=\(folder)/tsdb", "--web.listen-address=127.0.0.1:\(webPort)",
        ]
        _ = FileManager.default.createFile(atPath: folder + "/prometheus.log", contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: folder + "/prometheus.log"))
        server.standardOutput = log
        server.standardError = log
        try server.run()
        defer {
            server.terminate()
            let deadline = Date().addingTimeInterval(20)
            while server.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if server.isRunning { kill(server.processIdentifier, SIGKILL) }
            server.waitUntilExit()
        }

        // Upper bound only: stop as soon as two scrapes show the step rising.
        var seen = [Double]()
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && launch.process.isRunning && server.isRunning {
            if let step = Self.query("ssgd_step", port: webPort), step != seen.last { seen.append(step) }
            if let first = seen.first, let last = seen.last, last > first { break }
            Thread.sleep(forTimeInterval: 0.25)
        }
        let prometheusLog = (try? String(contentsOfFile: folder + "/prometheus.log", encoding: .utf8)) ?? ""
        #expect(seen.count >= 2 && seen.last! > seen.first!,
                "ssgd_step as Prometheus saw it: \(seen)\nlaunch:\n\(launch.output.suffix(2000))\nprometheus:\n\(prometheusLog.suffix(2000))")
        #expect(Self.query("ssgd_live_workers", port: webPort) == 2)
        #expect(Self.query("up", port: webPort) == 1)
    }

    @Test func aNonLoopbackMetricsAddressIsRefusedWithoutTheAcknowledgement() throws {
        let folder = Fixtures.temporaryDirectory("ssgd-metrics-refused")
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "vanilla"))
        let launch = try SSGDProcess.run(
            ["launch", "--config", config, "--run-dir", folder + "/run", "--workers", "1", "--metrics-listen", "0.0.0.0:0"], timeout: 60)
        #expect(launch.status == 1, "\(launch.output)")
        #expect(launch.output.contains("refusing to serve metrics on 0.0.0.0:0") && launch.output.contains("--metrics-insecure"), "\(launch.output)")
        let coordinator = try SSGDProcess.run(
            ["coordinator", "--config", config, "--run-dir", folder + "/run", "--bind", ClusterFixtures.ipcEndpoint(),
             "--metrics-listen", "[::]:0"], timeout: 60)
        #expect(coordinator.status == 1 && coordinator.output.contains("refusing to serve metrics on [::]:0"), "\(coordinator.output)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/run"), "a refused run made its run directory")
        let unparsable = try SSGDProcess.run(["launch", "--config", config, "--metrics-listen", "metrics.example:9464"], timeout: 60)
        #expect(unparsable.status != 0 && unparsable.output.contains("numeric address"), "\(unparsable.output)")
    }

    @Test func aTakenMetricsPortIsAClearError() throws {
        let folder = Fixtures.temporaryDirectory("ssgd-metrics-taken")
        let (descriptor, port) = try LoopbackHTTP.occupyPort()
        defer { close(descriptor) }
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "vanilla"))
        let launch = try SSGDProcess.run(
            ["launch", "--config", config, "--run-dir", folder + "/run", "--workers", "1", "--metrics-listen", "127.0.0.1:\(port)"],
            timeout: 60)
        #expect(launch.status == 1, "\(launch.output)")
        #expect(launch.output.contains("cannot listen for metrics (--metrics-listen) on 127.0.0.1:\(port)")
                    && launch.output.contains("taken"), "\(launch.output)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/run"))
    }
}
