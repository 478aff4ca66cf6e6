import Foundation
import Training

// The run folder as the trainer's store: checkpoints as verified files under checkpoints/,
// evaluation lines in metrics.jsonl, the summary written atomically.

extension RunDirectory: RunStore {
    public func saveCheckpoint(_ state: TrainingState, configHash: String, seed: UInt64, keep: Int) throws {
        let path = (checkpointsPath as NSString).appendingPathComponent(Checkpoint.fileName(step: state.step))
        try Checkpoint.write(state, configHash: configHash, seed: seed, to: path)
        for old in Checkpoint.list(directory: checkpointsPath).dropFirst(keep) {
            try? FileManager.default.removeItem(atPath: old)
        }
    }

    /// Newest first; a corrupt file is skipped with its reason, a file of another run stops the search.
    public func latestCheckpoint(configHash: String, sizes: TrainingStateSizes) throws -> RestoredState {
        var skipped = [String]()
        for path in Checkpoint.list(directory: checkpointsPath) {
            do {
                let state = try Checkpoint.read(
                    path: path, configHash: configHash, parameterCount: sizes.parameters, stateCount: sizes.state,
                    methodStateCount: sizes.methodState)
                return RestoredState(state: state, path: path, skipped: skipped)
            } catch let error as CheckpointError {
                if case .mismatch = error { throw error }
                skipped.append(error.description)
            }
        }
        throw CheckpointError.noneFound(directory: checkpointsPath, skipped: skipped)
    }

    public func writeSummary(_ text: String) throws {
        try AtomicFileWriter.write(text, to: summaryPath)
    }
}
