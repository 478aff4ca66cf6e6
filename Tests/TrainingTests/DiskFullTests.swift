import Foundation
import Testing
import TestSupport
import Training

/// A full disk, simulated in a child process with a file-size limit (`ulimit -f`, which binds
/// root too, with SIGXFSZ ignored so writes fail with EFBIG): the checkpoint write is a clear
/// error, the previous checkpoint still verifies and no temporary file is left behind.
@Suite struct DiskFullTests {
    @Test func fullDiskIsAClearErrorAndNeverCorruptsThePreviousCheckpoint() throws {
        let config = """
            name: diskfull
            model: mlp
            hidden: [256, 256]
            dataset: synthetic
            synthetic_shape: [1, 8, 8]
            synthetic_classes: 4
            synthetic_train_samples: 256
            synthetic_test_samples: 64
            batch_size: 64
            ghost_batch: 16
            epochs: 2
            eval_every_epochs: 0
            checkpoint_every_steps: 0
            """
        let directory = Fixtures.temporaryDirectory("ssgd-diskfull")
        let path = directory + "/config.yaml"
        _ = FileManager.default.createFile(atPath: path, contents: Data(config.utf8))
        let run = directory + "/run"
        let first = try SSGDProcess.run(["train", "--config", path, "--run-dir", run, "--max-steps", "2", "--threads", "1"])
        #expect(first.status == 0, "\(first.output)")
        let checkpoints = run + "/checkpoints"
        let before = try FileManager.default.contentsOfDirectory(atPath: checkpoints)
        #expect(before == ["step-000000002.ckpt"])
        // 4 KiB is enough for metrics lines but not for a checkpoint of ~90k parameters.
        let limited = ["/bin/bash", "-c", "trap '' XFSZ; ulimit -f 4; exec \"$0\" \"$@\""]
        let full = try SSGDProcess.run(["train", "--resume", run, "--max-steps", "4", "--threads", "1"], prefix: limited)
        #expect(full.status == 1, "\(full.output)")
        #expect(full.output.contains("cannot write"), "\(full.output)")
        #expect(full.output.contains("step-000000004.ckpt"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: checkpoints) == before)
        let again = try SSGDProcess.run(["train", "--resume", run, "--max-steps", "3", "--threads", "1"])
        #expect(again.output.contains("resumed from \(checkpoints)/step-000000002.ckpt"), "\(again.output)")
        #expect(again.status == 0)
    }
}
