import Foundation
import Testing
import TestSupport

/// A coordinator with one worker that computes each unit 300 ms longer (a test hook inside its
/// reported compute time) gives that worker fewer units once it has three results — and ends with
/// the parameters `train` gets in one process: the cut changes who computes what, never a bit.
/// The slow worker's 6 units of the MLP fixture take ≥ 1.8 s against milliseconds for the other,
/// so the cut it gets (1 of 6) does not depend on how busy the machine is.
@Suite(.serialized) struct ShardBalanceIntegrationTests {
    @Test func aSlowerWorkerGetsFewerUnitsAndTheBitsStayTheSame() throws {
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "spectral", epochs: 1) + "\nmax_steps: 5\n")
        let reference = Fixtures.temporaryDirectory("ssgd-balance") + "/run"
        let single = try SSGDProcess.run(["train", "--config", config, "--threads", "1", "--run-dir", reference])
        #expect(single.status == 0, "\(single.output)")
        let expected = try #require(SSGDProcess.parametersHash(runDirectory: reference))

        let endpoint = ClusterFixtures.ipcEndpoint()
        let run = Fixtures.temporaryDirectory("ssgd-balance") + "/run"
        let coordinator = try SSGDProcess(["coordinator", "--config", config, "--run-dir", run, "--bind", endpoint, "--workers", "2", "--threads", "1"])
        let fast = try SSGDProcess(["worker", "--connect", endpoint, "--threads", "1", "--name", "fast"])
        #expect(coordinator.waitForOutput("worker fast joined", timeout: 60), "\(coordinator.output)")
        let slow = try SSGDProcess(
            ["worker", "--connect", endpoint, "--threads", "1", "--name", "slow"],
            environment: ["SSGD_TEST_UNIT_DELAY_MS": "300"], executable: .faults)
        #expect(coordinator.wait(timeout: 120) == 0, "\(coordinator.output)")
        #expect(fast.wait(timeout: 30) == 0 && slow.wait(timeout: 30) == 0)
        #expect(coordinator.output.contains("step 3: units per worker fast 5, slow 1 (cut by measured speed"), "\(coordinator.output)")
        #expect(SSGDProcess.parametersHash(runDirectory: run) == expected, "a cut by measured speed changed the result")
    }
}
