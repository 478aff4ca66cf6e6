import Foundation
import Testing
import TestSupport

/// Workers and coordinators killed (SIGKILL), stopped (SIGSTOP) and replaced mid-run, with
/// real processes: the run finishes with parameters bit-identical to an uninterrupted run.
@Suite(.serialized) struct FaultToleranceTests {
    static let tunables: String = """
        heartbeat_interval: 200ms
        worker_timeout: 1500ms
        coordinator_timeout: 3s
        wait_for_workers: 30s
        max_worker_restarts: 2
        """

    /// 4 epochs of 5 steps with a checkpoint every 4 steps.
    static func configPath(method: String = "spectral") -> String {
        ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: method, epochs: 4, extra: tunables))
    }

    static func reference(_ config: String) throws -> String {
        let directory = Fixtures.temporaryDirectory("ssgd-reference") + "/run"
        let result = try SSGDProcess.run(["train", "--config", config, "--run-dir", directory, "--threads", "1"])
        #expect(result.status == 0, "\(result.output)")
        return try #require(SSGDProcess.parametersHash(runDirectory: directory))
    }

    func coordinator(_ config: String, _ endpoint: String, _ run: String, workers: Int, resume: Bool = false) throws -> SSGDProcess {
        let source = resume ? ["--resume", run] : ["--config", config, "--run-dir", run]
        return try SSGDProcess(["coordinator"] + source + ["--bind", endpoint, "--workers", String(workers), "--threads", "1"])
    }

    /// A worker; with `faults` (SSGD_TEST_* variables) the fault-injection build of it.
    func worker(_ endpoint: String, _ name: String, faults: [String: String] = [:]) throws -> SSGDProcess {
        try SSGDProcess(["worker", "--connect", endpoint, "--threads", "1", "--name", name], environment: faults,
                        executable: faults.isEmpty ? .ssgd : .faults)
    }

    @Test func workerKilledMidStepIsReplacedByTheOthersAndTheResultIsUnchanged() throws {
        let config = Self.configPath()
        let expected = try Self.reference(config)
        let endpoint = ClusterFixtures.ipcEndpoint()
        let run = Fixtures.temporaryDirectory("ssgd-kill") + "/run"
        let coordinator = try coordinator(config, endpoint, run, workers: 2)
        // It stalls inside a unit it claimed: the units it was granted are computed again by the
        // survivor, which also takes every unit the victim did not claim.
        let victim = try worker(endpoint, "victim", faults: ["SSGD_TEST_WORKER_STALL_IN_STEP": "6"])
        let survivor = try worker(endpoint, "survivor")
        #expect(victim.waitForOutput("of step 6 (test hook", timeout: 90), "\(victim.output)")
        let killedAt = Date()
        kill(victim.processID, SIGKILL)
        #expect(coordinator.waitForOutput("declared dead", timeout: 30))
        let detection = Date().timeIntervalSince(killedAt)
        #expect(detection < 5, "detected after \(detection) s")
        #expect(coordinator.wait(timeout: 120) == 0, "\(coordinator.output)")
        #expect(coordinator.output.contains("re-issued to survivor"))
        #expect(survivor.wait(timeout: 30) == 0)
        #expect(SSGDProcess.parametersHash(runDirectory: run) == expected)
    }

    /// A worker that hangs mid-step while its heartbeat thread runs (never silent, so never
    /// declared dead by worker_timeout) misses the step deadline: its shard goes to the other
    /// worker and the result is unchanged.
    @Test func aWorkerHungWhileHeartbeatingMissesTheStepDeadlineAndTheResultIsUnchanged() throws {
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "spectral", epochs: 4, extra: Self.tunables + """

            step_deadline_floor: 2s
            """))
        let expected = try Self.reference(config)
        let endpoint = ClusterFixtures.ipcEndpoint()
        let run = Fixtures.temporaryDirectory("ssgd-hung") + "/run"
        let coordinator = try coordinator(config, endpoint, run, workers: 2)
        let hung = try worker(endpoint, "hung", faults: ["SSGD_TEST_WORKER_STALL_IN_STEP": "6"])
        defer { hung.wait(timeout: 0) }  // it never comes back by itself
        let other = try worker(endpoint, "other")
        #expect(coordinator.wait(timeout: 120) == 0, "\(coordinator.output)")
        #expect(hung.output.contains("of step 6 (test hook SSGD_TEST_WORKER_STALL_IN_STEP)"))
        #expect(coordinator.output.contains("worker hung declared dead: shard"), "\(coordinator.output)")
        #expect(coordinator.output.contains("step deadline"))
        #expect(coordinator.output.contains("re-issued to other (its worker missed the step deadline)"))
        #expect(!coordinator.output.contains("silent for"))
        #expect(other.wait(timeout: 30) == 0)
        #expect(SSGDProcess.parametersHash(runDirectory: run) == expected)
    }

    @Test func aReplacementWorkerJoinsAndTheResultIsUnchanged() throws {
        let config = Self.configPath(method: "adversarial")
        let expected = try Self.reference(config)
        let endpoint = ClusterFixtures.ipcEndpoint()
        let run = Fixtures.temporaryDirectory("ssgd-replace") + "/run"
        let coordinator = try coordinator(config, endpoint, run, workers: 1)
        let victim = try worker(endpoint, "victim", faults: ["SSGD_TEST_WORKER_STALL_AT_STEP": "3"])
        #expect(victim.waitForOutput("stalling at step 3", timeout: 90))
        kill(victim.processID, SIGKILL)
        #expect(coordinator.waitForOutput("all workers lost", timeout: 30), "\(coordinator.output)")
        let replacement = try worker(endpoint, "replacement")
        #expect(coordinator.wait(timeout: 120) == 0, "\(coordinator.output)")
        #expect(coordinator.output.contains("worker replacement joined"))
        #expect(replacement.wait(timeout: 30) == 0)
        #expect(SSGDProcess.parametersHash(runDirectory: run) == expected)
    }

    @Test func aStoppedWorkersLateResultIsIgnoredAndItRejoins() throws {
        let config = Self.configPath()
        let expected = try Self.reference(config)
        let endpoint = ClusterFixtures.ipcEndpoint()
        let run = Fixtures.temporaryDirectory("ssgd-sigstop") + "/run"
        let coordinator = try coordinator(config, endpoint, run, workers: 2)
        let slow = ["SSGD_TEST_WORKER_DELAY_MS": "100"]
        let sleeper = try worker(endpoint, "sleeper", faults: slow)
        let other = try worker(endpoint, "other", faults: slow)
        #expect(coordinator.waitForOutput("step ", timeout: 90))
        kill(sleeper.processID, SIGSTOP)
        #expect(coordinator.waitForOutput("worker sleeper declared dead", timeout: 30))
        Thread.sleep(forTimeInterval: 0.5)
        kill(sleeper.processID, SIGCONT)
        #expect(coordinator.wait(timeout: 120) == 0, "\(coordinator.output)")
        _ = sleeper.wait(timeout: 30)
        _ = other.wait(timeout: 30)
        // Nothing counted twice: the same bytes as an uninterrupted run.
        #expect(SSGDProcess.parametersHash(runDirectory: run) == expected)
        // It came back: the coordinator asked it to handshake again, and it joined.
        #expect(sleeper.output.contains("joining again"), "\(sleeper.output)")
        #expect(coordinator.output.split(separator: "\n").filter { $0.contains("worker sleeper joined") }.count >= 2, "it joins, and again after each time it was declared dead (a heartbeat gap or the step deadline)")
    }

    @Test func killedCoordinatorResumesAndConnectedWorkersRejoin() throws {
        let config = Self.configPath()
        let expected = try Self.reference(config)
        let endpoint = ClusterFixtures.ipcEndpoint()
        let run = Fixtures.temporaryDirectory("ssgd-coordinator-kill") + "/run"
        let first = try coordinator(config, endpoint, run, workers: 2)
        let slow = ["SSGD_TEST_WORKER_DELAY_MS": "100"]
        let a = try worker(endpoint, "a", faults: slow)
        let b = try worker(endpoint, "b", faults: slow)
        #expect(first.waitForOutput("eval epoch 2.00", timeout: 120), "\(first.output)")
        kill(first.processID, SIGKILL)
        _ = first.wait(timeout: 10)
        Thread.sleep(forTimeInterval: 0.5)
        let second = try coordinator(config, endpoint, run, workers: 2, resume: true)
        #expect(second.wait(timeout: 120) == 0, "\(second.output)")
        #expect(second.output.contains("resumed from"))
        #expect(!second.output.contains("resumed from \(run)/checkpoints/step-000000020"))
        #expect(a.output.contains("joining again"))
        #expect(a.wait(timeout: 30) == 0)
        #expect(b.wait(timeout: 30) == 0)
        #expect(SSGDProcess.parametersHash(runDirectory: run) == expected)
    }

    @Test func launchRestartsAKilledWorkerAndTheResultIsUnchanged() throws {
        let config = Self.configPath()
        let expected = try Self.reference(config)
        let run = Fixtures.temporaryDirectory("ssgd-launch-kill") + "/run"
        let launch = try SSGDProcess(["launch", "--config", config, "--run-dir", run, "--workers", "2", "--threads", "1"],
                                     environment: ["SSGD_TEST_WORKER_STALL_AT_STEP": "4", "SSGD_TEST_WORKER_NAME": "worker-1"],
                                     executable: .faults)
        #expect(launch.waitForOutput("stalling at step 4", timeout: 90), "\(launch.output)")
        let pids = SSGDProcess.workerPIDs(in: launch.output)
        #expect(pids.count == 2)
        kill(pids[1], SIGKILL)
        #expect(launch.wait(timeout: 120) == 0, "\(launch.output)")
        #expect(launch.output.contains("restarting it"))
        #expect(launch.output.contains("restarted worker 1 as pid"))
        #expect(SSGDProcess.parametersHash(runDirectory: run) == expected)
        // No worker outlives the launch, restarted ones included.
        let restarted = launch.output.split(separator: "\n").filter { $0.contains("restarted worker") }.compactMap { Int32($0.split(separator: " ").last ?? "") }
        #expect((pids + restarted).allSatisfy { !SSGDProcess.isAlive($0) })
    }

    /// A coordinator (4 epochs, vanilla) whose only worker is killed in step 5; and its run.
    func coordinatorLosingItsOnlyWorkerInStep5(waitForWorkers: String) throws -> (coordinator: SSGDProcess, run: String) {
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "vanilla", epochs: 4, extra: """
            heartbeat_interval: 200ms
            worker_timeout: 1s
            wait_for_workers: \(waitForWorkers)
            """))
        let endpoint = ClusterFixtures.ipcEndpoint()
        let run = Fixtures.temporaryDirectory("ssgd-alone") + "/run"
        let coordinator = try coordinator(config, endpoint, run, workers: 1)
        let only = try worker(endpoint, "only", faults: ["SSGD_TEST_WORKER_STALL_AT_STEP": "5"])
        #expect(only.waitForOutput("stalling at step 5", timeout: 90))
        kill(only.processID, SIGKILL)
        return (coordinator, run)
    }

    @Test func noWorkerLeftStopsAfterTheWaitAndKeepsTheCheckpoint() throws {
        let (coordinator, run) = try coordinatorLosingItsOnlyWorkerInStep5(waitForWorkers: "2s")
        #expect(coordinator.wait(timeout: 60) == 1, "\(coordinator.output)")
        #expect(coordinator.output.contains("all workers lost"))
        #expect(coordinator.output.contains("wait_for_workers"))
        #expect(coordinator.output.contains("checkpoint written at step 5"))
        let resumed = try SSGDProcess.run(["train", "--resume", run, "--max-steps", "6", "--threads", "1"])
        #expect(resumed.output.contains("resumed from"), "\(resumed.output)")
        #expect(resumed.status == 0)
    }

    /// SIGTERM while the coordinator waits for its first workers: it stops at once (not after
    /// wait_for_workers), says why, and exits 130.
    @Test func aStopSignalWhileWaitingForTheFirstWorkersStopsAtOnce() throws {
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "vanilla", extra: "wait_for_workers: 10m"))
        let run = Fixtures.temporaryDirectory("ssgd-stop-waiting") + "/run"
        let coordinator = try coordinator(config, ClusterFixtures.ipcEndpoint(), run, workers: 2)
        #expect(coordinator.waitForOutput("waiting for 2 more worker(s)", timeout: 60), "\(coordinator.output)")
        kill(coordinator.processID, SIGTERM)
        // The bound only ends a hang: wait_for_workers is 10 minutes.
        #expect(coordinator.wait(timeout: 60) == 130, "\(coordinator.output)")
        #expect(coordinator.output.contains("stopped on request while waiting for workers (0 of 2 joined)"))
        #expect(!coordinator.output.contains("error"))
    }

    /// A second signal while the first is being handled exits at once and says so.
    @Test func aSecondStopSignalExitsAtOnceAndSaysSo() throws {
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "vanilla", extra: "wait_for_workers: 10m"))
        let coordinator = try coordinator(config, ClusterFixtures.ipcEndpoint(), Fixtures.temporaryDirectory("ssgd-stop-twice") + "/run", workers: 1)
        #expect(coordinator.waitForOutput("waiting for", timeout: 60), "\(coordinator.output)")
        kill(coordinator.processID, SIGINT)
        kill(coordinator.processID, SIGTERM)  // another signal, so the two are not merged into one
        let status = coordinator.wait(timeout: 60)
        #expect(status == 130 || status == 143, "\(coordinator.output)")
        #expect(coordinator.output.contains("ssgd: second stop signal: exiting now"), "\(coordinator.output)")
    }

    /// Ctrl-C after every worker is lost mid-run: the wait ends at once, the completed steps
    /// are checkpointed, the resume command is printed, exit 130; the run resumes from there.
    @Test func aStopSignalAfterAllWorkersAreLostCheckpointsAndExits130() throws {
        let (coordinator, run) = try coordinatorLosingItsOnlyWorkerInStep5(waitForWorkers: "10m")
        #expect(coordinator.waitForOutput("all workers lost", timeout: 30), "\(coordinator.output)")
        kill(coordinator.processID, SIGINT)
        #expect(coordinator.wait(timeout: 60) == 130, "\(coordinator.output)")
        #expect(coordinator.output.contains("stopped on request while waiting for workers (0 of 1 joined)"))
        #expect(coordinator.output.contains("checkpoint written at step 5; continue with: ssgd coordinator"))
        #expect(coordinator.output.contains("--resume \(run)"))
        let resumed = try SSGDProcess.run(["train", "--resume", run, "--max-steps", "6", "--threads", "1"])
        #expect(resumed.output.contains("step-000000005.ckpt"), "\(resumed.output)")
        #expect(resumed.status == 0)
    }

    @Test func injectedNaNStopsWithTheStepAndTheLastCheckpointLoads() throws {
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "spectral", epochs: 4))
        let run = Fixtures.temporaryDirectory("ssgd-nan") + "/run"
        let result = try SSGDProcess.run(["launch", "--config", config, "--run-dir", run, "--workers", "2", "--threads", "1"],
                                         environment: ["SSGD_TEST_NAN_AT_STEP": "6"], executable: .faults)
        #expect(result.status == 1)
        #expect(result.output.contains("loss is nan at step 6"), "\(result.output)")
        let resumed = try SSGDProcess.run(["train", "--resume", run, "--max-steps", "5", "--threads", "1"])
        #expect(resumed.output.contains("resumed from"), "\(resumed.output)")
        #expect(resumed.output.contains("step-000000004.ckpt"))
    }

    @Test func statusReportsTheRunningCoordinator() throws {
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "vanilla", epochs: 400, extra: Self.tunables))
        let endpoint = ClusterFixtures.ipcEndpoint()
        let run = Fixtures.temporaryDirectory("ssgd-status") + "/run"
        let coordinator = try coordinator(config, endpoint, run, workers: 1)
        let only = try worker(endpoint, "only")
        #expect(coordinator.waitForOutput("step ", timeout: 90))
        let status = try SSGDProcess.run(["status", "--coordinator", endpoint], timeout: 30)
        #expect(status.status == 0, "\(status.output)")
        #expect(status.output.contains("live workers (1): only"))
        #expect(status.output.contains("units per worker in the last step: only 6"), "\(status.output)")
        #expect(status.output.contains("state training"))
        kill(coordinator.processID, SIGINT)
        #expect(coordinator.wait(timeout: 60) == 130)
        #expect(only.wait(timeout: 30) == 0)
    }
}
