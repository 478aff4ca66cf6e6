import Foundation
import Testing
import TestSupport

/// `launch` stops every worker when it finishes, when it is interrupted, and when a worker fails.
@Suite(.serialized) struct LaunchSupervisionTests {
    @Test func ctrlCCheckpointsStopsAllWorkersAndTheRunResumes() throws {
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "spectral", epochs: 400))
        let directory = Fixtures.temporaryDirectory("ssgd-sigint") + "/run"
        let launch = try SSGDProcess(["launch", "--config", config, "--run-dir", directory, "--workers", "2", "--threads", "1"])
        #expect(launch.waitForOutput("step ", timeout: 90))
        Thread.sleep(forTimeInterval: 0.5)
        kill(launch.processID, SIGINT)
        let status = launch.wait(timeout: 60)
        #expect(status == 130, "\(launch.output)")
        #expect(launch.output.contains("continue with"))
        let pids = SSGDProcess.workerPIDs(in: launch.output)
        #expect(pids.count == 2)
        #expect(pids.allSatisfy { !SSGDProcess.isAlive($0) })
        // The checkpoint written on the way out continues the run.
        let checkpoints = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/checkpoints")) ?? []
        #expect(checkpoints.contains { $0.hasSuffix(".ckpt") })
        let resumed = try SSGDProcess.run(["launch", "--resume", directory, "--workers", "1", "--threads", "1", "--max-steps", "1"], timeout: 90)
        #expect(resumed.output.contains("resumed from"), "\(resumed.output)")
    }

    @Test func aWorkerExitingStopsEverythingWithTheReason() throws {
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "vanilla", epochs: 50))
        let directory = Fixtures.temporaryDirectory("ssgd-fail") + "/run"
        let result = try SSGDProcess.run(
            ["launch", "--config", config, "--run-dir", directory, "--workers", "3", "--threads", "1"],
            environment: ["SSGD_TEST_WORKER_EXIT_AT_STEP": "3", "SSGD_TEST_WORKER_NAME": "worker-1"], timeout: 90,
            executable: .faults)
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("worker 1 exited with status 3"), "\(result.output)")
        let pids = SSGDProcess.workerPIDs(in: result.output)
        #expect(pids.count == 3)
        #expect(pids.allSatisfy { !SSGDProcess.isAlive($0) })
    }

    /// Fault injection lives in the test binary only: the shipped one does not even name it.
    @Test func theShippedBinaryHasNoFaultHooks() throws {
        let shipped = try #require(FileManager.default.contents(atPath: SSGDProcess.Executable.ssgd.path))
        let faults = try #require(FileManager.default.contents(atPath: SSGDProcess.Executable.faults.path))
        let marker = Data("SSGD_TEST_".utf8)
        #expect(shipped.range(of: marker) == nil)
        #expect(faults.range(of: marker) != nil)
    }
}
