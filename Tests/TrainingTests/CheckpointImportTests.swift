import Engine
import Foundation
import Runs
import TestSupport
import Testing
import Training

/// export → import → resume: a new run starts from another run's weights, bit for bit.
@Suite struct CheckpointImportTests {
    @Test func importedWeightsStartANewRunThatTrainsFromThem() throws {
        // A trained source run (DenseNet with BN, so running statistics travel too).
        let source = Fixtures.temporaryDirectory("ssgd-import-source")
        var config = Fixtures.syntheticConfig(method: .spectral)
        config.model = .densenet
        config.depth = 7
        config.growth = 2
        config.syntheticShape = [3, 8, 8]
        try AtomicFileWriter.write(config.yaml(), to: RunDirectory(path: source).configPath)
        let trainer = try Fixtures.trainer(config, runDirectory: source)
        for _ in 0..<3 { _ = try trainer.trainStep() }
        try trainer.writeCheckpoint()
        let weights = source + "/weights.safetensors"
        let exported = try SSGDProcess.run(["export", source, "--format", "safetensors", "--output", weights])
        #expect(exported.status == 0, "\(exported.output)")

        // A new run from those weights.
        let configPath = source + "/config.yaml"
        let target = Fixtures.temporaryDirectory("ssgd-import-target") + "/run"
        let imported = try SSGDProcess.run(["import", weights, "--config", configPath, "--run-dir", target])
        #expect(imported.status == 0, "\(imported.output)")
        #expect(imported.output.contains("train from it with: ssgd train --resume \(target)"))
        let start = try Checkpoint.read(
            path: target + "/checkpoints/" + Checkpoint.fileName(step: 0), configHash: config.trajectoryHash,
            parameterCount: trainer.network.parameterCount, stateCount: trainer.network.state.count,
            methodStateCount: trainer.method.state.count)
        #expect(start.step == 0)
        #expect(start.parameters.toArray().map(\.bitPattern) == trainer.network.parameters.toArray().map(\.bitPattern))
        #expect(start.normalizationState.toArray() == trainer.network.state.toArray())
        #expect(start.momentum.toArray().allSatisfy { $0 == 0 })

        let resumed = try SSGDProcess.run(["train", "--resume", target, "--max-steps", "1", "--threads", "1"])
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(resumed.output.contains("step-000000000.ckpt at step 0"))

        // A file that lacks a tensor is refused, naming it, and no checkpoint is written.
        let mlpConfig = Fixtures.temporaryDirectory("ssgd-import-mlp") + "/mlp.yaml"
        try AtomicFileWriter.write(Fixtures.syntheticConfig().yaml(), to: mlpConfig)
        let wrongModel = Fixtures.temporaryDirectory("ssgd-import-wrong") + "/run"
        let refused = try SSGDProcess.run(["import", weights, "--config", mlpConfig, "--run-dir", wrongModel])
        #expect(refused.status == 1)
        #expect(refused.output.contains("0.weight"), "\(refused.output)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: wrongModel + "/checkpoints")) ?? []).isEmpty)
    }
}
