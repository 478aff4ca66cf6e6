import Foundation
import Runs
import TestSupport
import Testing
import Training

@Suite struct ResumeTests {
    /// N steps straight vs N/2, checkpoint, a new trainer resumed from disk, N/2 more.
    func straightAndResumed(_ config: TrainingConfig, steps: Int) throws -> (String, String) {
        var straightConfig = config
        straightConfig.maxSteps = steps
        let straight = try Fixtures.trainer(straightConfig)
        while straight.step < steps { _ = try straight.trainStep() }

        let directory = Fixtures.temporaryDirectory()
        var firstHalf = config
        firstHalf.maxSteps = steps / 2
        let first = try Fixtures.trainer(firstHalf, runDirectory: directory)
        while first.step < steps / 2 { _ = try first.trainStep() }
        try first.writeCheckpoint()
        let second = try Fixtures.trainer(config, runDirectory: directory, resume: true)
        #expect(second.step == steps / 2)
        while second.step < steps { _ = try second.trainStep() }
        return (straight.parametersSHA256, second.parametersSHA256)
    }

    @Test(arguments: [Method.vanilla, .decay, .adversarial, .spectral])
    func resumedRunIsBitIdenticalToAStraightRun(method: Method) throws {
        // 12 steps cross an epoch boundary (8 steps per epoch) and the LR drop at 50%.
        var config = Fixtures.syntheticConfig(method: method, epochs: 3)
        config.lr = 0.1
        let (straight, resumed) = try straightAndResumed(config, steps: 12)
        #expect(straight == resumed)
    }

    @Test func corruptNewestCheckpointIsRefusedAndThePreviousOneUsed() throws {
        let config = Fixtures.syntheticConfig()
        let directory = Fixtures.temporaryDirectory()
        let trainer = try Fixtures.trainer(config, runDirectory: directory)
        _ = try trainer.trainStep()
        try trainer.writeCheckpoint()
        let goodHash = trainer.parametersSHA256
        _ = try trainer.trainStep()
        try trainer.writeCheckpoint()
        let run = RunDirectory(path: directory)
        let newest = Checkpoint.list(directory: run.checkpointsPath)[0]
        #expect(newest.hasSuffix(Checkpoint.fileName(step: 2)))
        // Flip one byte in the middle of the parameters.
        var bytes = [UInt8](FileManager.default.contents(atPath: newest)!)
        bytes[bytes.count / 2] ^= 0x40
        _ = FileManager.default.createFile(atPath: newest, contents: Data(bytes))
        var lines = [String]()
        let restored = try TrainingSession.localTrainer(PreparedRun(config: config, run: run, resuming: true))
        restored.output = { lines.append($0) }
        #expect(restored.step == 1)
        #expect(restored.parametersSHA256 == goodHash)
        #expect(throws: CheckpointError.self) {
            try Checkpoint.read(path: newest, configHash: config.trajectoryHash, parameterCount: restored.network.parameterCount,
                                stateCount: 0, methodStateCount: 0)
        }
    }

    @Test func checkpointFromAnotherConfigIsRefusedWithTheReason() throws {
        let config = Fixtures.syntheticConfig()
        let directory = Fixtures.temporaryDirectory()
        let trainer = try Fixtures.trainer(config, runDirectory: directory)
        try trainer.writeCheckpoint()
        var changed = config
        changed.lr = 0.5
        do {
            _ = try Fixtures.trainer(changed, runDirectory: directory, resume: true)
            Issue.record("a checkpoint of another config was accepted")
        } catch let error as CheckpointError {
            #expect(error.description.contains("another training config"))
        }
    }

    @Test func unwritableCheckpointFolderIsAClearErrorAndKeepsThePreviousCheckpoint() throws {
        let config = Fixtures.syntheticConfig()
        let directory = Fixtures.temporaryDirectory()
        let trainer = try Fixtures.trainer(config, runDirectory: directory)
        try trainer.writeCheckpoint()
        let run = RunDirectory(path: directory)
        let before = Checkpoint.list(directory: run.checkpointsPath)
        _ = try trainer.trainStep()
        // Root ignores folder permissions, so make the folder a file instead: no one can write into it.
        let moved = run.checkpointsPath + ".saved"
        try FileManager.default.moveItem(atPath: run.checkpointsPath, toPath: moved)
        _ = FileManager.default.createFile(atPath: run.checkpointsPath, contents: Data("not a folder".utf8))
        do {
            try trainer.writeCheckpoint()
            Issue.record("a checkpoint was written into a file")
        } catch let error as FileWriteError {
            #expect(error.description.contains("cannot write"))
        }
        try FileManager.default.removeItem(atPath: run.checkpointsPath)
        try FileManager.default.moveItem(atPath: moved, toPath: run.checkpointsPath)
        #expect(Checkpoint.list(directory: run.checkpointsPath) == before)
    }
}
