import Foundation
import Testing
import TestSupport

/// CURVE end to end with real processes: only allow-listed worker keys get in, and a
/// non-loopback bind without keys is refused unless --insecure.
@Suite(.serialized) struct SecurityIntegrationTests {
    func keygen(_ directory: String, _ name: String) throws {
        let result = try SSGDProcess.run(["keygen", "--output", directory, "--name", name])
        #expect(result.status == 0, "\(result.output)")
    }

    @Test func onlyAllowListedWorkersJoinAndTheCoordinatorKeepsRunning() throws {
        let keys = Fixtures.temporaryDirectory("ssgd-keys")
        for name in ["coordinator", "trusted", "stranger"] { try keygen(keys, name) }
        let allow = keys + "/allow"
        try FileManager.default.createDirectory(atPath: allow, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: keys + "/trusted.pub", toPath: allow + "/trusted.pub")
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "spectral", epochs: 1))
        let endpoint = ClusterFixtures.ipcEndpoint()
        let run = Fixtures.temporaryDirectory("ssgd-curve") + "/run"
        let coordinator = try SSGDProcess([
            "coordinator", "--config", config, "--run-dir", run, "--bind", endpoint, "--threads", "1",
            "--curve-secret-key", keys + "/coordinator.key", "--curve-allow", allow,
        ])
        #expect(coordinator.waitForOutput("CURVE", timeout: 60), "\(coordinator.output)")
        let stranger = try SSGDProcess.run([
            "worker", "--connect", endpoint, "--name", "stranger", "--handshake-timeout", "3",
            "--curve-secret-key", keys + "/stranger.key", "--curve-server-key", keys + "/coordinator.pub",
        ], timeout: 60)
        #expect(stranger.status == 1)
        #expect(stranger.output.contains("allow-list"), "\(stranger.output)")
        let plaintext = try SSGDProcess.run(["worker", "--connect", endpoint, "--name", "plaintext", "--handshake-timeout", "3"], timeout: 60)
        #expect(plaintext.status == 1)
        // "no answer", or "closed the connection" when the refusal beats its HELLO: both name the keys.
        #expect(plaintext.output.contains("give this worker --curve-secret-key and --curve-server-key"), "\(plaintext.output)")
        let trusted = try SSGDProcess.run([
            "worker", "--connect", endpoint, "--name", "trusted", "--threads", "1",
            "--curve-secret-key", keys + "/trusted.key", "--curve-server-key", keys + "/coordinator.pub",
        ], timeout: 120)
        #expect(trusted.status == 0, "\(trusted.output)")
        #expect(coordinator.wait(timeout: 60) == 0, "\(coordinator.output)")
        #expect(coordinator.output.contains("worker trusted joined"))
        #expect(coordinator.output.contains("refused a connection"))
        #expect(!coordinator.output.contains("worker stranger joined"))
        #expect(SSGDProcess.parametersHash(runDirectory: run) != nil)
    }

    @Test func nonLoopbackBindWithoutKeysIsRefusedUnlessInsecure() throws {
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "vanilla"))
        let port = Int.random(in: 20000..<40000)
        let refused = try SSGDProcess.run(["coordinator", "--config", config, "--bind", "tcp://0.0.0.0:\(port)",
                                           "--run-dir", Fixtures.temporaryDirectory() + "/run"], timeout: 30)
        #expect(refused.status == 1)
        #expect(refused.output.contains("keygen"), "\(refused.output)")
        #expect(refused.output.contains("--insecure"))
        let insecure = try SSGDProcess(["coordinator", "--config", config, "--bind", "tcp://0.0.0.0:\(port)", "--insecure",
                                        "--run-dir", Fixtures.temporaryDirectory() + "/run", "--wait-for-workers", "1"])
        #expect(insecure.wait(timeout: 30) == 1)
        #expect(insecure.output.contains("coordinator listening on tcp://0.0.0.0:\(port)"), "\(insecure.output)")
        #expect(insecure.output.contains("ssgd: warning: tcp://0.0.0.0:\(port) may be reachable"), "\(insecure.output)")
        #expect(!insecure.output.contains("warning: warning:"))
    }
}
