import Foundation
import Testing
import TestSupport

/// deploy/slurm/ssgd.sbatch for real: `sbatch` on a one-node Slurm cluster started by the test
/// (SlurmCluster: Debian's slurm-wlm 22.05 and munge), the coordinator in the batch step and 2
/// workers through `srun`, compared with `ssgd train` of the same config:
/// - a job ends with train's parameters_sha256, in a run directory named after the job, and
///   removes its keys;
/// - `scancel --batch --signal=TERM` mid-run stops it with a checkpoint and exit 130, without a
///   requeue; `sbatch` with SSGD_RUN_DIR resumes it from that checkpoint to the same bits;
/// - SIGUSR1 (what `--signal=B:USR1@300` sends before the time limit) makes the job requeue
///   itself, then `scontrol requeue` (Slurm sends SIGTERM to every process of the job) requeues it
///   again: each time the same job id resumes its run directory from the checkpoint written at
///   the stop, and the run ends with the same bits.
@Suite(.serialized) struct SlurmTests {
    static let script = Deploy.path("deploy/slurm/ssgd.sbatch")

    /// FOLDER/NAME.yaml: the cluster tests' small MLP, 5 steps per epoch, with few evaluations.
    static func config(_ name: String, epochs: Int, folder: String) throws -> String {
        let path = "\(folder)/\(name).yaml"
        try ClusterFixtures.config(model: "mlp", method: "spectral", epochs: epochs, evalEveryEpochs: 100, checkpointEverySteps: 25)
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// parameters_sha256 of `ssgd train --threads 1` (the job's lanes: one per worker), run in FOLDER/NAME-train.
    static func trainHash(_ config: String, folder: String) throws -> String {
        let run = folder + "/" + URL(fileURLWithPath: config).deletingPathExtension().lastPathComponent + "-train"
        let result = try SSGDProcess.run(["train", "--config", config, "--run-dir", run, "--threads", "1"])
        #expect(result.status == 0, "\(result.output)")
        return try #require(SSGDProcess.parametersHash(runDirectory: run), "ssgd train: \(result.output)")
    }

    @Test func theBatchScriptTrainsStopsResumesAndRequeues() throws {
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        try #require(cpus >= 2, "the job needs 2 CPUs (2 workers of 1 thread); this machine has \(cpus)")
        let folder = Fixtures.temporaryDirectory("ssgd-slurm")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cluster = try SlurmCluster(folder: folder + "/slurm", cpus: cpus)
        defer { cluster.stop() }
        let jobs = Jobs(cluster: cluster, folder: folder)

        // A job to the end: train's bits, the run directory named after the job, no keys left.
        let short = try Self.config("short", epochs: 40, folder: folder)  // 200 steps
        let shortHash = try Self.trainHash(short, folder: folder)
        let whole = try jobs.submit(config: short)
        let wholeEnd = try cluster.waitUntilEnded(whole)
        let wholeOutput = jobs.output(whole)
        #expect(wholeEnd["JobState"] == "COMPLETED" && wholeEnd["ExitCode"] == "0:0", "\(wholeEnd)\n\(wholeOutput)")
        #expect(wholeOutput.contains("2 workers x 1 threads"), "\(wholeOutput)")
        #expect(SSGDProcess.parametersHash(runDirectory: jobs.runDirectory(whole)) == shortHash, "\(wholeOutput)")
        #expect(FileManager.default.fileExists(atPath: "\(folder)/scratch") && !FileManager.default.fileExists(atPath: "\(folder)/scratch/ssgd-keys-\(whole)"),
                "the job made no keys in SSGD_SCRATCH, or left them there")

        // scancel --batch --signal=TERM mid-run: checkpoint, exit 130, no requeue; sbatch again
        // with SSGD_RUN_DIR resumes it.
        let long = try Self.config("long", epochs: 300, folder: folder)  // 1,500 steps
        let longHash = try Self.trainHash(long, folder: folder)
        let stopped = try jobs.submit(config: long)
        let stoppedRun = jobs.runDirectory(stopped)
        try jobs.waitForCheckpoint(job: stopped, after: 0)
        #expect(try cluster.run("scancel", ["--batch", "--signal=TERM", "\(stopped)"]).status == 0)
        let stoppedEnd = try cluster.waitUntilEnded(stopped)
        let stoppedOutput = jobs.output(stopped)
        #expect(stoppedEnd["JobState"] == "FAILED" && stoppedEnd["ExitCode"] == "130:0" && stoppedEnd["Restarts"] == "0",
                "\(stoppedEnd)\n\(stoppedOutput)")
        let stop = try #require(Jobs.stops(stoppedOutput).first, "no checkpoint at the stop:\n\(stoppedOutput)")
        #expect(stop < 1500 && SSGDProcess.summary(runDirectory: stoppedRun) == nil, "the run was not stopped mid-run:\n\(stoppedOutput)")
        let continued = try jobs.submit(config: long, runDirectory: stoppedRun)
        let continuedEnd = try cluster.waitUntilEnded(continued)
        let continuedOutput = jobs.output(continued)
        #expect(continuedEnd["JobState"] == "COMPLETED" && continuedEnd["ExitCode"] == "0:0", "\(continuedEnd)\n\(continuedOutput)")
        #expect(Jobs.resumes(continuedOutput) == [stop], "\(continuedOutput)")
        #expect(SSGDProcess.parametersHash(runDirectory: stoppedRun) == longHash, "\(continuedOutput)")

        // Requeued twice, the same job each time: by the script on SIGUSR1 (the time-limit
        // warning), then by `scontrol requeue`.
        let requeued = try jobs.submit(config: long)
        try jobs.waitForCheckpoint(job: requeued, after: 0)
        #expect(try cluster.run("scancel", ["--batch", "--signal=USR1", "\(requeued)"]).status == 0)
        var firstStop = 0
        try cluster.waitFor("job \(requeued) to run again and checkpoint", timeout: 300) {
            let output = jobs.output(requeued)
            guard output.contains("job \(requeued) (restart 1)"), let stop = Jobs.stops(output).first else {
                try jobs.requireRunning(requeued)
                return false
            }
            firstStop = stop
            return (jobs.checkpoints(requeued).max() ?? 0) > stop
        }
        let requeue = try cluster.run("scontrol", ["requeue", "\(requeued)"])
        #expect(requeue.status == 0, "\(requeue.output)")
        let requeuedEnd = try cluster.waitUntilEnded(requeued)
        let requeuedOutput = jobs.output(requeued)
        #expect(requeuedEnd["JobState"] == "COMPLETED" && requeuedEnd["ExitCode"] == "0:0" && requeuedEnd["Restarts"] == "2",
                "\(requeuedEnd)\n\(requeuedOutput)")
        #expect(requeuedOutput.contains("requeueing job \(requeued)") && requeuedOutput.contains("job \(requeued) (restart 2)"), "\(requeuedOutput)")
        // Each restart resumes from the checkpoint written at the stop before it: after
        // `scontrol requeue` too (the coordinator gets Slurm's SIGTERM only once).
        let stops = Jobs.stops(requeuedOutput)
        #expect(stops.count == 2 && stops.first == firstStop, "\(requeuedOutput)")
        #expect(Jobs.resumes(requeuedOutput) == stops, "\(requeuedOutput)")
        #expect(!requeuedOutput.contains("second stop signal"), "\(requeuedOutput)")
        #expect(SSGDProcess.parametersHash(runDirectory: jobs.runDirectory(requeued)) == longHash, "\(requeuedOutput)")
    }
}

/// The jobs of one test: submitted with the script's defaults but for the size (one node, 2
/// tasks of 1 CPU), a free coordinator port (and port + 1), run directories under FOLDER/shared, keys under
/// FOLDER/scratch, output in FOLDER/ssgd-JOBID.out (the script's --output, in --chdir).
struct Jobs {
    let cluster: SlurmCluster
    let folder: String

    func submit(config: String, runDirectory: String? = nil) throws -> Int {
        let binary = URL(fileURLWithPath: SSGDProcess.binary).path
        var export = "ALL,SSGD=\(binary),SSGD_CONFIG=\(config),SSGD_SHARED=\(folder)/shared,SSGD_SCRATCH=\(folder)/scratch"
        export += ",SSGD_PORT=\(try EndpointTests.freePort(andNext: true))"  // + 1: the status socket
        if let runDirectory { export += ",SSGD_RUN_DIR=\(runDirectory)" }
        return try cluster.submit([
            "--nodes=1", "--ntasks-per-node=2", "--cpus-per-task=1", "--time=30", "--chdir=\(folder)", "--export=\(export)",
            SlurmTests.script,
        ])
    }

    func runDirectory(_ job: Int) -> String { "\(folder)/shared/runs/ssgd-\(job)" }

    func output(_ job: Int) -> String { (try? String(contentsOfFile: "\(folder)/ssgd-\(job).out", encoding: .utf8)) ?? "" }

    /// The steps of the job's run directory's checkpoints.
    func checkpoints(_ job: Int) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runDirectory(job) + "/checkpoints")) ?? []
        return names.compactMap { name in
            guard name.hasPrefix("step-"), name.hasSuffix(".ckpt") else { return nil }
            return Int(name.dropFirst(5).dropLast(5))
        }
    }

    /// Throws (with the job's output) if the job has ended.
    func requireRunning(_ job: Int) throws {
        let fields = cluster.job(job)
        if SlurmCluster.finalStates.contains(fields["JobState"] ?? "") {
            throw SlurmError("job \(job) ended (\(fields["JobState"] ?? "?")) before it was interrupted; its output:\n\(output(job))")
        }
    }

    /// Waits (bounded) for a checkpoint of a step after `step`: the run is under way.
    func waitForCheckpoint(job: Int, after step: Int) throws {
        var polls = 0
        try cluster.waitFor("checkpoint after step \(step) of job \(job)", timeout: 300) {
            if (checkpoints(job).max() ?? 0) > step { return true }
            polls += 1
            if polls % 10 == 0 { try requireRunning(job) }
            return false
        }
    }

    /// The steps of the checkpoints a stop wrote, in order: "stopped at step N of …, checkpoint
    /// written" (the step ran to its end), or "checkpoint written at step N" (its workers were
    /// gone first: the steps before it).
    static func stops(_ output: String) -> [Int] {
        let pattern = #"stopped at step (\d+) of \d+ on request, checkpoint written|checkpoint written at step (\d+);"#
        return Deploy.groups(pattern, in: output).compactMap { Int($0[1]) ?? Int($0[2]) }
    }

    /// The steps of "resumed from …/step-N.ckpt at step N", in order.
    static func resumes(_ output: String) -> [Int] {
        Deploy.groups(#"resumed from \S+/checkpoints/step-(\d+)\.ckpt at step (\d+)"#, in: output).compactMap { match in
            Int(match[1]) == Int(match[2]) ? Int(match[2]) : nil
        }
    }
}
