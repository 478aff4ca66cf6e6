import Data
import Engine
import Foundation
import Training

// A run's checkpoint as a PyTorch-readable safetensors file: the run's config.yaml builds the
// model (no data needed), a checkpoint fills it, Safetensors writes it under PyTorch's names.

public struct RestoredCheckpoint {
    public let config: TrainingConfig
    public let network: Network
    public let step: Int
    /// The checkpoint file that was read.
    public let path: String
    /// Newer checkpoints that were skipped, with the reason.
    public let skipped: [String]
}

public enum CheckpointExport {
    /// The run's network with the parameters and BN statistics of `checkpoint`, or of the
    /// newest checkpoint that verifies when `checkpoint` is nil.
    public static func restore(run: RunDirectory, checkpoint: String? = nil) throws -> RestoredCheckpoint {
        guard FileManager.default.fileExists(atPath: run.configPath) else {
            throw RunDirectoryError("\(run.path) is not a run directory (no config.yaml); pass the folder a training run printed")
        }
        let config = try TrainingConfig.load(path: run.configPath)
        let (shape, classes) = DatasetLoader.inputShapeAndClasses(config)
        let network = try ModelFactory.make(config, inputShape: shape, classes: classes)
        let methodStateCount = config.makeMethod(matrices: network.weightMatrices).state.count
        func read(_ path: String) throws -> TrainingState {
            try Checkpoint.read(
                path: path, configHash: config.trajectoryHash, parameterCount: network.parameterCount,
                stateCount: network.state.count, methodStateCount: methodStateCount)
        }
        var skipped = [String]()
        var found: (state: TrainingState, path: String)?
        if let checkpoint {
            found = (try read(checkpoint), checkpoint)
        } else {
            for path in Checkpoint.list(directory: run.checkpointsPath) {
                do {
                    found = (try read(path), path)
                    break
                } catch let error as CheckpointError {
                    if !error.isSkippable { throw error }
                    skipped.append(error.description)
                }
            }
        }
        guard let found else { throw CheckpointError.noneFound(directory: run.checkpointsPath) }
        network.parameters.copy(from: found.state.parameters)
        network.state.copy(from: found.state.normalizationState)
        return RestoredCheckpoint(config: config, network: network, step: found.state.step, path: found.path, skipped: skipped)
    }

    /// Metadata written with an export: `format` "pt" (the key PyTorch tooling looks for),
    /// the config hash, the step and the model.
    public static func metadata(_ restored: RestoredCheckpoint) -> [String: String] {
        [
            "format": "pt", "config_hash": restored.config.trajectoryHash, "step": String(restored.step),
            "model": restored.config.model.rawValue, "producer": "ssgd",
        ]
    }

    /// Write the restored network to `output` as safetensors.
    public static func writeSafetensors(_ restored: RestoredCheckpoint, to output: String) throws {
        let file = SafetensorsFile(tensors: Safetensors.tensors(of: restored.network), metadata: metadata(restored))
        try Safetensors.write(file, to: output)
    }
}
