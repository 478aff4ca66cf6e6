import Foundation
import Runs
import Training

// Shared fixtures: temporary folders and small, fast configs on synthetic data.

public enum Fixtures {
    /// A new empty folder under the system temporary directory.
    public static func temporaryDirectory(_ label: String = "ssgd-test") -> String {
        let path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A small MLP on learnable synthetic data: 8 steps per epoch of 64 (4 units of 16).
    public static func syntheticConfig(method: Method = .vanilla, epochs: Int = 2) -> TrainingConfig {
        var config = TrainingConfig()
        config.name = "test"
        config.model = .mlp
        config.hidden = [32, 32]
        config.dataset = .synthetic
        config.syntheticShape = [1, 6, 6]
        config.syntheticClasses = 4
        config.syntheticTrainSamples = 512
        config.syntheticTestSamples = 128
        config.syntheticNoise = 1.0
        config.method = method
        config.batchSize = 64
        config.ghostBatch = 16
        config.epochs = epochs
        config.lr = 0.05
        config.seed = 9
        config.checkpointEverySteps = 0
        config.evalEveryEpochs = 0
        config.progressSeconds = 1000
        return config
    }

    /// A trainer over a fresh run directory, output silenced.
    public static func trainer(_ config: TrainingConfig, runDirectory: String? = nil, resume: Bool = false) throws -> Trainer {
        let path = runDirectory ?? temporaryDirectory("ssgd-run")
        let run = RunDirectory(path: path)
        try FileManager.default.createDirectory(atPath: run.checkpointsPath, withIntermediateDirectories: true)
        let prepared = PreparedRun(config: config, run: run, resuming: resume)
        let trainer = try TrainingSession.localTrainer(prepared)
        trainer.output = { _ in }
        return trainer
    }
}
