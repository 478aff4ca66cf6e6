import Data
import Engine
import Foundation
import Training

// The other direction of CheckpointExport: start a new run from weights in a safetensors file
// (e.g. trained or edited in PyTorch, or exported from another ssgd run). The file must hold
// every parameter and BN running statistic of the config's model under PyTorch's names and
// shapes; the run starts at step 0 with zero momentum and the spectral vectors a fresh run
// would have, as checkpoint step-000000000.ckpt, so `--resume RUN_DIR` trains from it.

public enum CheckpointImport {
    /// Writes the step-0 checkpoint of `prepared` (a new run) from `file`; returns its path.
    @discardableResult
    public static func startRun(from file: String, prepared: PreparedRun) throws -> String {
        let config = prepared.config
        let (shape, classes) = DatasetLoader.inputShapeAndClasses(config)
        let network = try ModelFactory.make(config, inputShape: shape, classes: classes)
        try Safetensors.load(path: file, into: network)
        let method = config.makeMethod(matrices: network.weightMatrices)
        let state = TrainingState(
            step: 0, epoch: 0, parameters: network.parameters, momentum: FloatBuffer(count: network.parameterCount),
            normalizationState: network.state, methodState: method.state)
        let path = (prepared.run.checkpointsPath as NSString).appendingPathComponent(Checkpoint.fileName(step: 0))
        try Checkpoint.write(state, configHash: config.trajectoryHash, seed: config.seed, to: path)
        return path
    }
}
