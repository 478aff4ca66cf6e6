import Engine

// The seam between the training loop and where a run's state outlives the process. The
// trainer hands over what to keep (checkpoints, evaluation lines, the summary) and asks for the
// newest usable checkpoint; the file formats and the folder layout belong to the store (the
// Runs module's `RunDirectory` is the implementation ssgd ships).

/// The state a run needs to continue bit-identically: everything else is a function of `step`.
public struct TrainingState {
    public var step: Int
    public var epoch: Int
    public var parameters: FloatBuffer
    public var momentum: FloatBuffer
    public var normalizationState: FloatBuffer
    /// The method's persistent state (`TrainingMethod.state`, e.g. spectral `v` vectors).
    public var methodState: FloatBuffer

    public init(
        step: Int, epoch: Int, parameters: FloatBuffer, momentum: FloatBuffer, normalizationState: FloatBuffer,
        methodState: FloatBuffer
    ) {
        self.step = step
        self.epoch = epoch
        self.parameters = parameters
        self.momentum = momentum
        self.normalizationState = normalizationState
        self.methodState = methodState
    }
}

/// How many floats each part of a `TrainingState` holds, to check a checkpoint against a run.
public struct TrainingStateSizes: Sendable, Equatable {
    public var parameters: Int
    public var state: Int
    public var methodState: Int

    public init(parameters: Int, state: Int, methodState: Int) {
        self.parameters = parameters
        self.state = state
        self.methodState = methodState
    }
}

/// The newest checkpoint that verified, and the newer ones skipped with their reason.
public struct RestoredState {
    public var state: TrainingState
    public var path: String
    public var skipped: [String]

    public init(state: TrainingState, path: String, skipped: [String]) {
        self.state = state
        self.path = path
        self.skipped = skipped
    }
}

public protocol RunStore: Sendable {
    /// Where the run lives, for messages ("continue with --resume PATH").
    var path: String { get }
    /// Keep `state` as the newest checkpoint, then drop all but the newest `keep`.
    func saveCheckpoint(_ state: TrainingState, configHash: String, seed: UInt64, keep: Int) throws
    /// The newest checkpoint that verifies against `configHash` and `sizes`; throws when a
    /// checkpoint belongs to another run or none is usable.
    func latestCheckpoint(configHash: String, sizes: TrainingStateSizes) throws -> RestoredState
    /// One evaluation record (a JSON line).
    func appendMetrics(_ line: String) throws
    /// The run's final summary (JSON), replacing any earlier one.
    func writeSummary(_ text: String) throws
}
