import Foundation
import Testing
import TestSupport

/// Three hosts on one machine: a coordinator and two workers, each in its own network namespace
/// joined by veth pairs, over tcp with CURVE. One worker's link is cut mid-run; the run still
/// completes, bit-identical to a single-process run. Needs root (CI runs as root); elsewhere the
/// test is skipped with the reason.
@Suite(.serialized) struct MultiHostTests {
    static let ip = "/usr/sbin/ip"

    /// nil when namespaces can be made here, else why not.
    static let unavailableReason: String? = {
        guard getuid() == 0 else { return "network namespaces need root" }
        guard FileManager.default.isExecutableFile(atPath: ip) else { return "no \(ip) (Debian package iproute2)" }
        let probe = "ssgd-probe-\(getpid())"
        guard run([ip, "netns", "add", probe]) else { return "ip netns add failed (no namespace support in this sandbox)" }
        _ = run([ip, "netns", "del", probe])
        return nil
    }()

    @discardableResult
    static func run(_ command: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    /// coordinator ⟷ worker k over veth, 10.213.k.1 (coordinator side) / 10.213.k.2 (worker).
    struct Topology {
        let tag = String(UInt32.random(in: 0...0xFFFFF), radix: 16)
        var coordinator: String { "ssgdc\(tag)" }
        func worker(_ k: Int) -> String { "ssgdw\(k)\(tag)" }
        func link(_ k: Int) -> String { "vw\(k)\(tag)" }

        func create(workers: Int) -> Bool {
            var ok = MultiHostTests.run([ip, "netns", "add", coordinator])
            ok = ok && MultiHostTests.run([ip, "-n", coordinator, "link", "set", "lo", "up"])
            for k in 1...workers {
                ok = ok && MultiHostTests.run([ip, "netns", "add", worker(k)])
                ok = ok && MultiHostTests.run([ip, "-n", worker(k), "link", "set", "lo", "up"])
                ok = ok && MultiHostTests.run([ip, "link", "add", "c" + link(k), "netns", coordinator, "type", "veth", "peer", "name", link(k), "netns", worker(k)])
                ok = ok && MultiHostTests.run([ip, "-n", coordinator, "addr", "add", "10.213.\(k).1/24", "dev", "c" + link(k)])
                ok = ok && MultiHostTests.run([ip, "-n", worker(k), "addr", "add", "10.213.\(k).2/24", "dev", link(k)])
                ok = ok && MultiHostTests.run([ip, "-n", coordinator, "link", "set", "c" + link(k), "up"])
                ok = ok && MultiHostTests.run([ip, "-n", worker(k), "link", "set", link(k), "up"])
            }
            return ok
        }

        func destroy(workers: Int) {
            for k in 1...workers { MultiHostTests.run([ip, "netns", "del", worker(k)]) }
            MultiHostTests.run([ip, "netns", "del", coordinator])
        }

        func exec(_ namespace: String) -> [String] { [ip, "netns", "exec", namespace] }
    }

    @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
    func coordinatorAndTwoWorkersInNamespacesOverCurveSurviveACutLink() throws {
        let keys = Fixtures.temporaryDirectory("ssgd-netns-keys")
        for name in ["coordinator", "w1", "w2"] {
            #expect(try SSGDProcess.run(["keygen", "--output", keys, "--name", name]).status == 0)
        }
        try FileManager.default.createDirectory(atPath: keys + "/allow", withIntermediateDirectories: true)
        for name in ["w1", "w2"] { try FileManager.default.copyItem(atPath: keys + "/\(name).pub", toPath: keys + "/allow/\(name).pub") }
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "spectral", epochs: 6, extra: FaultToleranceTests.tunables))
        let reference = Fixtures.temporaryDirectory("ssgd-netns-ref") + "/run"
        #expect(try SSGDProcess.run(["train", "--config", config, "--run-dir", reference, "--threads", "1"]).status == 0)
        let expected = try #require(SSGDProcess.parametersHash(runDirectory: reference))

        let net = Topology()
        defer { net.destroy(workers: 2) }
        try #require(net.create(workers: 2), "could not build the namespaces and veth links")
        let run = Fixtures.temporaryDirectory("ssgd-netns") + "/run"
        let coordinator = try SSGDProcess([
            "coordinator", "--config", config, "--run-dir", run, "--bind", "tcp://0.0.0.0:5555", "--workers", "2", "--threads", "1",
            "--curve-secret-key", keys + "/coordinator.key", "--curve-allow", keys + "/allow",
        ], prefix: net.exec(net.coordinator))
        #expect(coordinator.waitForOutput("listening", timeout: 60), "\(coordinator.output)")
        var workers = [SSGDProcess]()
        for k in 1...2 {
            workers.append(try SSGDProcess([
                "worker", "--connect", "tcp://10.213.\(k).1:5555", "--name", "w\(k)", "--threads", "1",
                "--curve-secret-key", keys + "/w\(k).key", "--curve-server-key", keys + "/coordinator.pub",
            ], environment: ["SSGD_TEST_WORKER_DELAY_MS": "100"], prefix: net.exec(net.worker(k)), executable: .faults))
        }
        defer { for worker in workers where worker.process.isRunning { kill(worker.processID, SIGKILL) } }
        #expect(coordinator.waitForOutput("eval epoch 2.00", timeout: 120), "\(coordinator.output)")
        // Cut worker 2's cable.
        #expect(MultiHostTests.run([MultiHostTests.ip, "-n", net.worker(2), "link", "set", net.link(2), "down"]))
        #expect(coordinator.wait(timeout: 180) == 0, "\(coordinator.output)")
        #expect(coordinator.output.contains("worker w2 declared dead"))
        #expect(workers[0].wait(timeout: 30) == 0)
        #expect(SSGDProcess.parametersHash(runDirectory: run) == expected)
    }
}
