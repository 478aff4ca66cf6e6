import Foundation
import Testing
import TestSupport

/// Aggregators (issue 11 item 2), with real processes: gradients pre-reduced in aligned blocks of
/// the unit tree below the coordinator end with the same parameters as `train`, for any number
/// of workers and aggregators, nested aggregators, and killed workers and aggregators; and the
/// coordinator's link carries one result per aggregator, not one per worker.
@Suite(.serialized) struct AggregatorTests {
    static let tunables = FaultToleranceTests.tunables

    static func reference(_ config: String, steps: String = "7") throws -> String {
        let run = Fixtures.temporaryDirectory("ssgd-agg-train") + "/run"
        let result = try SSGDProcess.run(["train", "--config", config, "--run-dir", run, "--threads", "1", "--max-steps", steps])
        #expect(result.status == 0, "\(result.output)")
        return try #require(SSGDProcess.parametersHash(runDirectory: run))
    }

    @Test(arguments: ["mlp", "densenet"])
    func launchThroughAggregatorsMatchesTrainBitForBit(model: String) throws {
        let config = ClusterFixtures.write(ClusterFixtures.config(model: model, method: "spectral"))
        let expected = try Self.reference(config)
        for (workers, aggregators) in [(2, 1), (3, 2), (4, 1)] {
            let run = Fixtures.temporaryDirectory("ssgd-agg-launch") + "/run"
            let launched = try SSGDProcess.run([
                "launch", "--config", config, "--run-dir", run, "--threads", "1", "--max-steps", "7",
                "--workers", String(workers), "--aggregators", String(aggregators),
            ])
            let label = "\(model): \(workers) workers under \(aggregators) aggregator(s)"
            #expect(launched.status == 0, "\(label): \(launched.output)")
            #expect(launched.output.contains("under \(aggregators) aggregator(s)"), "\(launched.output)")
            #expect(SSGDProcess.parametersHash(runDirectory: run) == expected, "\(label) differs from train")
            let pids = SSGDProcess.workerPIDs(in: launched.output)
            #expect(pids.count == workers + aggregators)
            #expect(pids.allSatisfy { !SSGDProcess.isAlive($0) }, "\(label): a process outlived launch")
        }
    }

    /// coordinator ← { aggregator "upper" ← aggregator "lower" ← 2 workers, and 1 direct worker }:
    /// a tree of mixed depth, with the units of one shard added on two levels.
    @Test func nestedAggregatorsBesideADirectWorkerMatchTrain() throws {
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "densenet", method: "spectral", extra: "max_steps: 7"))
        let expected = try Self.reference(config)
        let (root, upper, lower) = (ClusterFixtures.ipcEndpoint(), ClusterFixtures.ipcEndpoint(), ClusterFixtures.ipcEndpoint())
        let run = Fixtures.temporaryDirectory("ssgd-agg-nested") + "/run"
        let coordinator = try SSGDProcess(["coordinator", "--config", config, "--run-dir", run, "--bind", root, "--workers", "2", "--threads", "1"])
        let upperAggregator = try SSGDProcess(["aggregator", "--connect", root, "--bind", upper, "--workers", "1", "--name", "upper"])
        let lowerAggregator = try SSGDProcess(["aggregator", "--connect", upper, "--bind", lower, "--workers", "2", "--name", "lower"])
        let workers = try [lower, lower, root].enumerated().map { k, parent in
            try SSGDProcess(["worker", "--connect", parent, "--threads", "1", "--name", "w\(k)"])
        }
        #expect(coordinator.wait(timeout: 180) == 0, "\(coordinator.output)")
        for process in [upperAggregator, lowerAggregator] + workers {
            #expect(process.wait(timeout: 30) == 0, "\(process.output)")
        }
        #expect(SSGDProcess.parametersHash(runDirectory: run) == expected, "nested aggregators differ from train")
    }

    /// The coordinator's traffic per step: with one aggregator over 4 workers it receives one
    /// result and sends the parameters once — a third of the star's 4 parameter copies and
    /// 5 gradient blocks (6 units over 4 workers), measured on a model whose parameters dominate.
    @Test func oneAggregatorCutsTheCoordinatorsTrafficToOneWorkersShare() throws {
        let text = ClusterFixtures.config(model: "mlp", method: "vanilla", extra: "max_steps: 4")
            .replacingOccurrences(of: "hidden: [24, 16]", with: "hidden: [512, 512]")
        let config = ClusterFixtures.write(text)
        func megabytesPerStep(_ aggregators: Int) throws -> Double {
            let run = Fixtures.temporaryDirectory("ssgd-agg-traffic") + "/run"
            let launched = try SSGDProcess.run([
                "launch", "--config", config, "--run-dir", run, "--threads", "1", "--workers", "4", "--aggregators", String(aggregators),
            ])
            #expect(launched.status == 0, "\(launched.output)")
            let lines = launched.output.split(separator: "\n").filter { $0.hasPrefix("step ") && $0.contains("MB moved per step") }
            let last = try #require(lines.last, "no step line with traffic in \(launched.output)")
            let traffic = try #require(last.split(separator: "|").first { $0.contains("MB moved per step") })
            let field = try #require(traffic.split(separator: " ").first)
            return try #require(Double(field))
        }
        let star = try megabytesPerStep(0)
        let aggregated = try megabytesPerStep(1)
        // P ≈ 0.28 M floats = 1.1 MB: the star moves ≈ 9 P, one aggregator ≈ 3 P (parameters,
        // blocks [0, 4) and [4, 6) of the 6 units).
        #expect(star > 8, "star moved \(star) MB per step")
        #expect(aggregated < star / 2, "with an aggregator the coordinator moved \(aggregated) MB per step, the star \(star) MB")
    }

    /// A worker below an aggregator killed mid-step: the aggregator re-issues its part to its
    /// other worker; the coordinator never notices, and the result is unchanged.
    @Test func aWorkerKilledBelowAnAggregatorIsReplacedThereAndTheResultIsUnchanged() throws {
        let config = FaultToleranceTests.configPath()
        let expected = try FaultToleranceTests.reference(config)
        let (root, group) = (ClusterFixtures.ipcEndpoint(), ClusterFixtures.ipcEndpoint())
        let run = Fixtures.temporaryDirectory("ssgd-agg-kill-worker") + "/run"
        let coordinator = try SSGDProcess(["coordinator", "--config", config, "--run-dir", run, "--bind", root, "--workers", "1", "--threads", "1"])
        let aggregator = try SSGDProcess(["aggregator", "--connect", root, "--bind", group, "--workers", "2", "--name", "group"])
        let victim = try SSGDProcess(["worker", "--connect", group, "--threads", "1", "--name", "victim"],
                                     environment: ["SSGD_TEST_WORKER_STALL_AT_STEP": "6"], executable: .faults)
        let survivor = try SSGDProcess(["worker", "--connect", group, "--threads", "1", "--name", "survivor"])
        #expect(victim.waitForOutput("stalling at step 6", timeout: 90), "\(victim.output)")
        kill(victim.processID, SIGKILL)
        #expect(coordinator.wait(timeout: 120) == 0, "\(coordinator.output)")
        #expect(aggregator.wait(timeout: 30) == 0, "\(aggregator.output)")
        #expect(survivor.wait(timeout: 30) == 0, "\(survivor.output)")
        #expect(aggregator.output.contains("re-issued to survivor"), "\(aggregator.output)")
        #expect(!coordinator.output.contains("declared dead"), "\(coordinator.output)")
        #expect(SSGDProcess.parametersHash(runDirectory: run) == expected)
    }

    /// An aggregator killed mid-step: the coordinator re-issues its shard to the other aggregator;
    /// restarted at the same endpoint, it takes its worker back and rejoins; the result is unchanged
    /// and every process ends cleanly.
    @Test func aKilledAggregatorsShardGoesToAnotherAndTheRestartedOneRejoins() throws {
        let config = FaultToleranceTests.configPath()
        let expected = try FaultToleranceTests.reference(config)
        let (root, first, second) = (ClusterFixtures.ipcEndpoint(), ClusterFixtures.ipcEndpoint(), ClusterFixtures.ipcEndpoint())
        let run = Fixtures.temporaryDirectory("ssgd-agg-kill-aggregator") + "/run"
        // Slow steps leave the restarted aggregator time to rejoin before the run ends.
        let slow = ["SSGD_TEST_WORKER_DELAY_MS": "500"]
        let coordinator = try SSGDProcess(["coordinator", "--config", config, "--run-dir", run, "--bind", root, "--workers", "2", "--threads", "1"])
        let victim = try SSGDProcess(["aggregator", "--connect", root, "--bind", first, "--workers", "1", "--name", "victim"],
                                     environment: ["SSGD_TEST_WORKER_STALL_AT_STEP": "6", "SSGD_TEST_WORKER_NAME": "victim"],
                                     executable: .faults)
        let other = try SSGDProcess(["aggregator", "--connect", root, "--bind", second, "--workers", "1", "--name", "other"])
        let orphan = try SSGDProcess(["worker", "--connect", first, "--threads", "1", "--name", "orphan"], environment: slow, executable: .faults)
        let helper = try SSGDProcess(["worker", "--connect", second, "--threads", "1", "--name", "helper"], environment: slow, executable: .faults)
        #expect(victim.waitForOutput("stalling at step 6", timeout: 90), "\(victim.output)")
        kill(victim.processID, SIGKILL)
        #expect(coordinator.waitForOutput("re-issued to other", timeout: 30), "\(coordinator.output)")
        let restarted = try SSGDProcess(["aggregator", "--connect", root, "--bind", first, "--workers", "1", "--name", "victim"])
        #expect(coordinator.wait(timeout: 120) == 0, "\(coordinator.output)")
        for process in [restarted, other, orphan, helper] {
            #expect(process.wait(timeout: 30) == 0, "\(process.output)")
        }
        #expect(orphan.output.contains("rejoined"), "\(orphan.output)")
        #expect(coordinator.output.components(separatedBy: "worker victim joined").count == 3, "\(coordinator.output)")
        #expect(SSGDProcess.parametersHash(runDirectory: run) == expected)
    }
}
