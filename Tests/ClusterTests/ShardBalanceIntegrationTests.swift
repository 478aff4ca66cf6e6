import Foundation
import Testing
import TestSupport

/// A coordinator with one worker that computes each unit 300 ms longer (a test hook inside its
/// reported compute time) gives that worker fewer units once it has three results, and the two
/// workers meet within each step from the first — and both end with the parameters `train`
/// gets in one process: who computes what changes, never a bit. The slow worker's units of the
/// MLP fixture take ≥ 300 ms each against milliseconds for the other, so what it gets does not
/// depend on how busy the machine is.
@Suite(.serialized) struct ShardBalanceIntegrationTests {
    /// `steps` steps with workers `fast` and `slow` (joined in that order) under a coordinator
    /// given `flags`: its output, and whether it ended with `train`'s parameters.
    static func runWithASlowWorker(steps: Int, flags: [String] = []) throws -> (output: String, sameBits: Bool) {
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "spectral", epochs: 1) + "\nmax_steps: \(steps)\n")
        let reference = Fixtures.temporaryDirectory("ssgd-balance") + "/run"
        let single = try SSGDProcess.run(["train", "--config", config, "--threads", "1", "--run-dir", reference])
        #expect(single.status == 0, "\(single.output)")
        let expected = try #require(SSGDProcess.parametersHash(runDirectory: reference))

        let endpoint = ClusterFixtures.ipcEndpoint()
        let run = Fixtures.temporaryDirectory("ssgd-balance") + "/run"
        let coordinator = try SSGDProcess(
            ["coordinator", "--config", config, "--run-dir", run, "--bind", endpoint, "--workers", "2", "--threads", "1"] + flags)
        let fast = try SSGDProcess(["worker", "--connect", endpoint, "--threads", "1", "--name", "fast"])
        #expect(coordinator.waitForOutput("worker fast joined", timeout: 60), "\(coordinator.output)")
        let slow = try SSGDProcess(
            ["worker", "--connect", endpoint, "--threads", "1", "--name", "slow"],
            environment: ["SSGD_TEST_UNIT_DELAY_MS": "300"], executable: .faults)
        #expect(coordinator.wait(timeout: 120) == 0, "\(coordinator.output)")
        #expect(fast.wait(timeout: 30) == 0 && slow.wait(timeout: 30) == 0)
        return (coordinator.output, SSGDProcess.parametersHash(runDirectory: run) == expected)
    }

    /// The cut moves at step 3, after three results from each — or at step 4 when the fast
    /// worker, meeting the slow one, took every unit of the first step, so the slow one had a
    /// result fewer (a worker granted nothing is not measured).
    @Test func aSlowerWorkerGetsFewerUnitsAndTheBitsStayTheSame() throws {
        let (output, sameBits) = try Self.runWithASlowWorker(steps: 5)
        let cut = "units per worker fast 5, slow 1 (cut by measured speed"
        #expect(output.contains("step 3: " + cut) || output.contains("step 4: " + cut), "\(output)")
        #expect(sameBits, "a cut by measured speed changed the result")
    }

    /// Two steps — too few for the cut to move: the two workers meet within each step, so from
    /// the first step the fast one takes the units the slow one has not claimed yet (5 or all 6;
    /// the slow one claims at most its first before it stalls), and the progress lines say so.
    /// With `--equal-shards` each computes its 3.
    @Test(arguments: [false, true])
    func workersMeetWithinTheFirstStep(equalShards: Bool) throws {
        let (output, sameBits) = try Self.runWithASlowWorker(steps: 2, flags: equalShards ? ["--equal-shards"] : [])
        let steps = output.split(separator: "\n").filter { $0.hasPrefix("step ") && $0.contains(" epoch ") }
        try #require(!steps.isEmpty, "\(output)")
        if equalShards {
            #expect(!output.contains("meet within each step"), "\(output)")
            #expect(steps.allSatisfy { !$0.contains("| units ") }, "equal shards: \(steps)")
        } else {
            #expect(output.contains("step 0: fast and slow meet within each step"), "\(output)")
            #expect(steps.allSatisfy { $0.contains("| units fast 5, slow 1") || $0.contains("| units fast 6, slow 0") }, "\(steps)")
        }
        #expect(sameBits, "meeting within the step changed the result")
    }
}
