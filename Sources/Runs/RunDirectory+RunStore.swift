import Foundation
import Training

// The run folder as the trainer's store: checkpoints as verified files under checkpoints/,
// evaluation lines in metrics.jsonl, the summary written atomically.

extension RunDirectory: RunStore {
    public func saveCheckpoint(_ state: TrainingState, identity: RunIdentity, keep: Int) throws {
        let path = (checkpointsPath as NSString).appendingPathComponent(Checkpoint.fileName(step: state.step))
        try Checkpoint.write(
            state, configHash: identity.configHash, seed: identity.seed, dataFingerprint: identity.dataFingerprint, to: path)
        for old in Checkpoint.list(directory: checkpointsPath).dropFirst(keep) {
            try? FileManager.default.removeItem(atPath: old)
        }
    }

    /// Newest first; a corrupt file is skipped with its reason, a file of another run or of
    /// other data stops the search.
    public func latestCheckpoint(identity: RunIdentity, sizes: TrainingStateSizes) throws -> RestoredState? {
        let files = Checkpoint.list(directory: checkpointsPath)
        if files.isEmpty { return nil }
        var skipped = [String]()
        for path in files {
            do {
                let state = try Checkpoint.read(
                    path: path, configHash: identity.configHash, parameterCount: sizes.parameters, stateCount: sizes.state,
                    methodStateCount: sizes.methodState, dataFingerprint: identity.dataFingerprint)
                return RestoredState(state: state, path: path, skipped: skipped)
            } catch let error as CheckpointError {
                if !error.isSkippable { throw error }
                skipped.append(error.description)
            }
        }
        throw CheckpointError.noneFound(directory: checkpointsPath, skipped: skipped)
    }

    public func discardMetrics(afterStep step: Int) throws {
        let records = metricsRecords()
        let kept = records.filter { ($0.step ?? Int.max) <= step }  // a torn line (kill mid-write) goes too
        guard kept.count != records.count else { return }
        try AtomicFileWriter.write(kept.map { $0.line + "\n" }.joined(), to: metricsPath)
    }

    public func lastEvaluatedStep() -> Int? {
        metricsRecords().compactMap(\.step).last
    }

    /// metrics.jsonl's lines with the step each records (nil: not a readable record).
    private func metricsRecords() -> [(line: Substring, step: Int?)] {
        guard let data = FileManager.default.contents(atPath: metricsPath) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).map { line in
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return (line, object?["step"] as? Int)
        }
    }

    public func writeSummary(_ text: String) throws {
        try AtomicFileWriter.write(text, to: summaryPath)
    }

    public func readSummary() -> String? {
        FileManager.default.contents(atPath: summaryPath).map { String(decoding: $0, as: UTF8.self) }
    }
}

extension CheckpointError {
    /// Corrupt files are skipped in favour of older ones; a checkpoint of another run or of
    /// other data means the user pointed at the wrong thing, which must not be papered over.
    public var isSkippable: Bool {
        if case .corrupt = self { return true }
        return false
    }
}
