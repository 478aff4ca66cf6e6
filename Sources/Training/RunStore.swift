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

/// What a checkpoint must match to continue a run: the trajectory (config hash), the data it
/// trained on, and the seed it records.
public struct RunIdentity: Sendable, Equatable {
    public var configHash: String
    public var dataFingerprint: String
    public var seed: UInt64

    public init(configHash: String, dataFingerprint: String, seed: UInt64) {
        self.configHash = configHash
        self.dataFingerprint = dataFingerprint
        self.seed = seed
    }
}

public protocol RunStore: Sendable {
    /// Where the run lives, for messages ("continue with --resume PATH").
    var path: String { get }
    /// Keep `state` as the newest checkpoint, then drop all but the newest `keep`.
    func saveCheckpoint(_ state: TrainingState, identity: RunIdentity, keep: Int) throws
    /// The newest checkpoint that verifies against `identity` and `sizes`; nil when the run has
    /// written none yet. Throws when a checkpoint belongs to another run or other data, or
    /// when checkpoints exist but none is usable.
    func latestCheckpoint(identity: RunIdentity, sizes: TrainingStateSizes) throws -> RestoredState?
    /// One evaluation record (a JSON line).
    func appendMetrics(_ line: String) throws
    /// Drop evaluation records of steps after `step` (written after the checkpoint a resumed
    /// run continues from; the resumed run writes them again).
    func discardMetrics(afterStep step: Int) throws
    /// The run's final summary (JSON), replacing any earlier one.
    func writeSummary(_ text: String) throws
    /// The summary written at the end of the run, if any.
    func readSummary() -> String?
    /// The step of the newest evaluation record, if any.
    func lastEvaluatedStep() -> Int?
}
