import Foundation
import Runs
import Testing
import TestSupport
import Training

// What a careless user does to a run directory (issue 9 items 1, 5, 7, 8, 9 and the run-dir
// parts of 13), with the real binary in real processes.

@Suite struct RunSafetyTests {
    /// A tiny MLP config on CIFAR-100 files in `data` (8 train samples per batch of 8).
    static func config(data: String, epochs: Int = 3, extra: String = "") -> String {
        let directory = Fixtures.temporaryDirectory("ssgd-safety")
        let text = """
            name: safety
            model: mlp
            hidden: [16]
            dataset: cifar100
            data_path: \(data)
            batch_size: 8
            ghost_batch: 4
            epochs: \(epochs)
            lr: 0.01
            eval_every_epochs: 1
            checkpoint_every_steps: 1
            progress_seconds: 1000
            \(extra)
            """
        let path = directory + "/config.yaml"
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    static func cifar100(_ fineLabels: [UInt8]) -> String {
        ImageFiles.cifar100Folder(train: ImageFiles.cifar100(fineLabels.map { (0, $0) }), test: ImageFiles.cifar100([(1, 2), (1, 3)]))
    }

    static func metricsSteps(_ run: String) -> [Int] {
        let text = (try? String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["step"] as? Int
        }
    }

    @Test func resumeRefusesDataWithAnotherFingerprintAndNamesBoth() throws {
        let data = Self.cifar100([0, 1, 2, 3, 4, 5, 6, 7])
        let other = Self.cifar100([7, 6, 5, 4, 3, 2, 1, 0])
        let config = Self.config(data: data)
        let run = Fixtures.temporaryDirectory("ssgd-safety-run")
        let first = try SSGDProcess.run(["train", "--config", config, "--run-dir", run, "--max-steps", "1", "--threads", "1"])
        #expect(first.status == 0, "\(first.output)")
        // Another folder through --set.
        let moved = try SSGDProcess.run(["train", "--resume", run, "--set", "data_path=\(other)", "--threads", "1"])
        #expect(moved.status == 1, "\(moved.output)")
        #expect(moved.output.contains("was trained on data with fingerprint"), "\(moved.output)")
        #expect(moved.output.contains("ssgd import"))
        // The same folder, one file replaced in place.
        ImageFiles.write(ImageFiles.cifar100([(0, 9), (0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 6), (0, 7)]), data, "train.bin")
        let inPlace = try SSGDProcess.run(["train", "--resume", run, "--threads", "1"])
        #expect(inPlace.status == 1, "\(inPlace.output)")
        #expect(inPlace.output.contains("fingerprint"), "\(inPlace.output)")
        #expect(Self.metricsSteps(run) == [1])  // nothing appended by the refused resumes
    }

    @Test func anOversizedModelOrDataSetIsRefusedWithFiguresBeforeAnythingIsAllocated() throws {
        let config = Self.config(data: "/nonexistent")
        let run = Fixtures.temporaryDirectory("ssgd-safety-big") + "/run"
        for setting in ["hidden=[16000000,16000000]", "dataset=synthetic", "hidden=4000000000"] {
            var arguments = ["train", "--config", config, "--run-dir", run, "--set", setting]
            if setting == "dataset=synthetic" { arguments += ["--set", "synthetic_train_samples=2000000000", "--set", "synthetic_shape=[3,32,32]"] }
            let result = try SSGDProcess.run(arguments)
            #expect(result.status == 1, "\(result.output)")
            #expect(result.output.contains("ssgd: error:"), "\(result.output)")
            #expect(!result.output.contains("Fatal error") && !result.output.contains("allocate"), "\(result.output)")
            if setting != "hidden=4000000000" {
                #expect(result.output.contains("needs about") && result.output.contains("this machine has"), "\(result.output)")
            }
            #expect(!FileManager.default.fileExists(atPath: run), "a refused run must leave nothing behind")
        }
    }

    @Test func aRunThatFailedBeforeItsFirstCheckpointCanBeRestartedInPlace() throws {
        let data = Self.cifar100([0, 1, 2, 3, 4, 5, 6, 7])
        let run = Fixtures.temporaryDirectory("ssgd-safety-restart") + "/run"
        let broken = try SSGDProcess.run(["train", "--config", Self.config(data: data + "/missing"), "--run-dir", run])
        #expect(broken.status == 1, "\(broken.output)")
        #expect(FileManager.default.fileExists(atPath: run + "/config.yaml"))
        // --config with the same --run-dir reuses it.
        let again = try SSGDProcess.run(["train", "--config", Self.config(data: data), "--run-dir", run, "--max-steps", "1", "--threads", "1"])
        #expect(again.status == 0, "\(again.output)")
        #expect(again.output.contains("reusing run directory \(run)"), "\(again.output)")
        // And --resume of a run with no checkpoint starts it from step 0.
        let other = Fixtures.temporaryDirectory("ssgd-safety-restart2") + "/run"
        _ = try SSGDProcess.run(["train", "--config", Self.config(data: data + "/missing"), "--run-dir", other])
        let resumed = try SSGDProcess.run(["train", "--resume", other, "--set", "data_path=\(data)", "--max-steps", "2", "--threads", "1"])
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(resumed.output.contains("starting it from step 0"), "\(resumed.output)")
        // A run with a checkpoint is still protected.
        let refused = try SSGDProcess.run(["train", "--config", Self.config(data: data), "--run-dir", run])
        #expect(refused.status == 1 && refused.output.contains("already holds a run"), "\(refused.output)")
    }

    @Test func aSecondProcessOnTheSameRunIsRefusedNamingTheFirstsPid() throws {
        let data = Self.cifar100([0, 1, 2, 3, 4, 5, 6, 7])
        let run = Fixtures.temporaryDirectory("ssgd-safety-lock") + "/run"
        let config = Self.config(data: data, epochs: 100000)
        let first = try SSGDProcess(["train", "--config", config, "--run-dir", run, "--threads", "1"])
        defer { kill(first.processID, SIGKILL); first.wait(timeout: 10) }
        #expect(first.waitForOutput("training mlp", timeout: 60), "\(first.output)")
        let second = try SSGDProcess.run(["train", "--resume", run, "--threads", "1"], timeout: 60)
        #expect(second.status == 1, "\(second.output)")
        #expect(second.output.contains("is in use by pid \(first.processID)"), "\(second.output)")
        kill(first.processID, SIGINT)
        #expect(first.wait(timeout: 60) == 130, "\(first.output)")
        // Released with the process: now it resumes.
        let third = try SSGDProcess.run(["train", "--resume", run, "--max-steps", "1", "--threads", "1"], timeout: 60)
        #expect(!third.output.contains("in use"), "\(third.output)")
    }

    @Test func resumeDropsEvaluationsPastItsCheckpointAndAFinishedRunIsLeftAlone() throws {
        let data = Self.cifar100([0, 1, 2, 3, 4, 5, 6, 7])
        let run = Fixtures.temporaryDirectory("ssgd-safety-metrics") + "/run"
        let config = Self.config(data: data, extra: "keep_checkpoints: 10")
        let first = try SSGDProcess.run(["train", "--config", config, "--run-dir", run, "--max-steps", "2", "--threads", "1"])
        #expect(first.status == 0, "\(first.output)")
        #expect(Self.metricsSteps(run) == [1, 2])
        // A kill after the step-2 evaluation and before its checkpoint: the checkpoint is gone.
        try FileManager.default.removeItem(atPath: run + "/checkpoints/" + Checkpoint.fileName(step: 2))
        try? FileManager.default.removeItem(atPath: run + "/summary.json")
        let resumed = try SSGDProcess.run(["train", "--resume", run, "--max-steps", "0", "--threads", "1"])
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(resumed.output.contains("at step 1"), "\(resumed.output)")
        #expect(Self.metricsSteps(run) == [1, 2, 3])
        let hash = SSGDProcess.parametersHash(runDirectory: run)
        // Resuming the finished run says so, exits 0 and appends nothing.
        let again = try SSGDProcess.run(["train", "--resume", run, "--max-steps", "0", "--threads", "1"])
        #expect(again.status == 0, "\(again.output)")
        #expect(again.output.contains("already finished"), "\(again.output)")
        #expect(Self.metricsSteps(run) == [1, 2, 3])
        #expect(SSGDProcess.parametersHash(runDirectory: run) == hash)
    }

    @Test func runNamesCannotLeaveRunsAndFolderErrorsSayWhy() throws {
        let config = Self.config(data: "/nonexistent")
        let escape = try SSGDProcess.run(["train", "--config", config, "--set", "name=../../x"])
        #expect(escape.status == 1 && escape.output.contains("config key 'name'"), "\(escape.output)")
        let underAFile = try SSGDProcess.run(["train", "--config", config, "--run-dir", config + "/run"])
        #expect(underAFile.status == 1, "\(underAFile.output)")
        #expect(underAFile.output.contains("cannot create run directory \(config)/run: Not a directory"), "\(underAFile.output)")
        #expect(!underAFile.output.contains("NSCocoaErrorDomain"))
    }
}

@Suite struct StopDuringEvaluationTests {
    /// An evaluation long enough (a wide MLP over 40,000 test samples) that the signal lands in it.
    @Test func aStopSignalDuringAnEvaluationCheckpointsAtOnceAndResumeRedoesTheEvaluation() throws {
        let directory = Fixtures.temporaryDirectory("ssgd-stop-eval")
        let text = """
            name: stopeval
            model: mlp
            hidden: [4096, 4096]
            dataset: synthetic
            synthetic_shape: [1, 32, 32]
            synthetic_train_samples: 64
            synthetic_test_samples: 40000
            batch_size: 64
            ghost_batch: 64
            epochs: 2
            eval_every_epochs: 1
            train_eval_samples: 64
            checkpoint_every_steps: 0
            """
        _ = FileManager.default.createFile(atPath: directory + "/config.yaml", contents: Data(text.utf8))
        let run = directory + "/run"
        let training = try SSGDProcess(["train", "--config", directory + "/config.yaml", "--run-dir", run, "--threads", "1"])
        #expect(training.waitForOutput("evaluating at step 1", timeout: 120), "\(training.output)")
        kill(training.processID, SIGTERM)
        #expect(training.wait(timeout: 120) == 130, "\(training.output)")
        #expect(training.output.contains("stopped at step 1 of 2 on request, checkpoint written"), "\(training.output)")
        #expect(!training.output.contains("test acc"), "the evaluation must not have finished: \(training.output)")
        #expect(FileManager.default.fileExists(atPath: run + "/checkpoints/" + Checkpoint.fileName(step: 1)))
        #expect(!FileManager.default.fileExists(atPath: run + "/summary.json"))
        #expect(RunSafetyTests.metricsSteps(run) == [])
        // Resume redoes the step-1 evaluation first (on a test subset, to be quick), then goes on.
        let resumed = try SSGDProcess.run(
            ["train", "--resume", run, "--set", "test_eval_samples=256", "--threads", "1"], timeout: 300)
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(resumed.output.contains("evaluating at step 1: 256 test and 64 train samples"), "\(resumed.output)")
        #expect(RunSafetyTests.metricsSteps(run) == [1, 2])
    }
}
