import Data
import Engine
import Foundation

// The resolved description of one training run. Parsed once from YAML (unknown keys are
// rejected), checked by `validate()` before any work, and written back in canonical form to the
// run directory. Every key is documented in docs/configuration.md.

public enum ModelKind: String, Sendable, CaseIterable { case mlp, vgg16, nin, densenet }

/// How 3×3, stride-1 convolutions compute (config key `conv_algorithm`): F(2×2, 3×3) Winograd
/// where it applies (Conv2d), or im2col / row shifts everywhere (the arithmetic of versions
/// before Winograd, for continuing their runs bit for bit).
public enum ConvolutionAlgorithm: String, Sendable, CaseIterable { case winograd, im2col }

public struct TrainingConfig: Sendable, Equatable {
    // Run identity
    public var name = "run"
    // Model
    public var model = ModelKind.mlp
    public var hidden = [1024, 1024]
    public var depth = 40
    public var growth = 12
    /// VGG only: divide every width by this (1 = the paper's network; larger for fast tests).
    public var widthDivisor = 1
    public var dropout: Double = 0
    public var convAlgorithm = ConvolutionAlgorithm.winograd
    /// How weight matrices and biases start (config key `init`).
    public var initScheme = InitScheme.kaimingNormal
    // Data
    public var dataset = DatasetKind.fashionMNIST
    public var dataPath = "/usr/share/datasets/fashion-mnist"
    public var augment = Augmentation.none
    public var cropPadding = 4
    public var syntheticTrainSamples = 4096
    public var syntheticTestSamples = 1024
    public var syntheticClasses = 10
    public var syntheticShape = [1, 28, 28]
    public var syntheticNoise: Double = 1.0
    // Method
    public var method = Method.vanilla
    /// nil: the method's default (decay 1e-4, spectral 0.01).
    public var lambda: Double?
    public var adversarialAlpha: Double = 0.5
    public var adversarialEpsilon: Double = 1.0
    // Optimisation
    public var batchSize = 4096
    public var ghostBatch = 128
    /// Samples per chunk of a unit (0: automatic, see `effectiveChunkSize`).
    public var chunkSize = 0
    public var epochs = 10
    public var lr: Double = 0.1
    public var momentum: Double = 0.9
    /// BatchNorm running statistics: running ← (1 − m)·running + m·batch statistic (PyTorch's 0.1).
    public var bnMomentum: Double = 0.1
    public var seed: UInt64 = 1
    // Run control (not part of the config hash: they do not change the trajectory)
    public var evalEveryEpochs = 1
    public var trainEvalSamples = 0
    /// Evaluate on the first N test samples (0: all of them).
    public var testEvalSamples = 0
    public var checkpointEverySteps = 50
    public var keepCheckpoints = 3
    public var threads = 0
    public var maxSteps = 0
    public var progressSeconds: Double = 5
    // Cluster tunables (seconds; YAML takes "500ms", "5s", "2m")
    public var heartbeatInterval: Double = 1
    public var workerTimeout: Double = 5
    public var coordinatorTimeout: Double = 30
    public var waitForWorkers: Double = 120
    public var maxWorkerRestarts = 3
    /// A shard is overdue after max(floor, factor × median per-unit compute time × its units)
    /// (Cluster's StepDeadline: doubled per miss, none before any measurement).
    public var stepDeadlineFactor: Double = 10
    public var stepDeadlineFloor: Double = 60

    public init() {}

    public var effectiveLambda: Double { lambda ?? method.implementation.defaultLambda }

    public var unitsPerStep: Int { batchSize / ghostBatch }

    /// Samples per chunk of a unit. Automatic (chunk_size 0): a step of a single unit is cut in
    /// two chunks, if each keeps at least 32 samples — so the paper's small batch (one unit of
    /// 64) is 2 chunks of 32 that two lanes share, one unit of 128 is 2 chunks of 64, and a step
    /// of 2 or more units is not cut (its units already go to different lanes). Every chunk
    /// costs a replica (gradients, workspaces), a full-size weight gradient and an addition, and
    /// makes thinner GEMMs: 8 chunks of 8 ran the MLP at 0.42× PyTorch and cost VGG-16 1.3 GB,
    /// 4 chunks of 32 took 31 ms of CPU per MLP step of 128 where 2 of 64 took 22
    /// (docs/performance.md). More cores than pieces: set chunk_size. A function of the config only.
    public static let automaticChunkMinimum = 32
    /// Pieces (units × chunks) the automatic chunk size aims for.
    public static let automaticPieces = 2

    public var effectiveChunkSize: Int {
        if chunkSize > 0 { return chunkSize }
        if linearBlocks > 1 { return ghostBatch }
        var size = ghostBatch
        while unitsPerStep * (ghostBatch / size) < TrainingConfig.automaticPieces && size % 2 == 0
            && size / 2 >= TrainingConfig.automaticChunkMinimum {
            size /= 2
        }
        return size
    }

    /// Chunks per unit.
    public var chunksPerUnit: Int { ghostBatch / effectiveChunkSize }

    /// Fixed pieces each of the MLP's GEMMs is split into (Linear.splitGEMMs), in place of
    /// chunks: with automatic chunking, a step of fewer than `automaticPieces` MLP units is
    /// shared by the lanes this way. Without batch normalisation nothing ties a unit's samples
    /// together, so splitting the products' outputs keeps GEMMs at the unit's full depth and
    /// needs no per-chunk gradient arena nor their sum (docs/performance.md). 1: not split.
    public var linearBlocks: Int {
        chunkSize == 0 && model == .mlp && unitsPerStep < TrainingConfig.automaticPieces ? TrainingConfig.automaticPieces : 1
    }

    /// Lanes in this process: `threads`, or every core when it is 0.
    public var lanes: Int { threads > 0 ? threads : max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Largest layer width (a BLAS dimension is an Int32; squares must not overflow Int).
    public static let maxWidth = 1 << 24
    /// The wire protocol carries at most 2^24 sample indices per task.
    public static let maxBatchSize = 1 << 24
    /// The wire protocol's largest unit.
    public static let maxGhostBatch = 1 << 16

    /// The part of the config the data layer reads.
    public var dataSpec: DataSpec {
        var spec = DataSpec(dataset: dataset, dataPath: dataPath)
        spec.syntheticTrainSamples = syntheticTrainSamples
        spec.syntheticTestSamples = syntheticTestSamples
        spec.syntheticClasses = syntheticClasses
        spec.syntheticShape = syntheticShape
        spec.syntheticNoise = syntheticNoise
        spec.seed = seed
        return spec
    }
}

public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var key: String?
    public var message: String
    public init(key: String?, _ message: String) {
        self.key = key
        self.message = message
    }
    public var description: String {
        if let key { return "config key '\(key)': \(message)" }
        return "config: \(message)"
    }
}

extension TrainingConfig {
    /// Checks that need no data: ranges, divisibility, method parameters.
    public func validate() throws {
        func require(_ condition: Bool, _ key: String, _ message: String) throws {
            if !condition { throw ConfigError(key: key, message) }
        }
        try require(!name.isEmpty, "name", "must not be empty")
        try require(
            !name.contains("/") && !name.hasPrefix("."), "name",
            "names the run's folder under runs/, so it must not contain '/' or start with '.', got '\(name)'")
        try require(batchSize > 0, "batch_size", "must be > 0, got \(batchSize)")
        try require(ghostBatch > 0, "ghost_batch", "must be > 0, got \(ghostBatch)")
        try require(
            batchSize % ghostBatch == 0, "batch_size",
            "must be a multiple of ghost_batch (\(ghostBatch)), got \(batchSize)")
        try require(epochs > 0, "epochs", "must be > 0, got \(epochs)")
        try require(lr > 0 && lr.isFinite, "lr", "must be a positive number, got \(lr)")
        try require(momentum >= 0 && momentum < 1, "momentum", "must be in [0, 1), got \(momentum)")
        try require(bnMomentum >= 0 && bnMomentum <= 1, "bn_momentum", "must be in [0, 1], got \(bnMomentum)")
        if let lambda { try require(lambda >= 0 && lambda.isFinite, "lambda", "must be ≥ 0, got \(lambda)") }
        try require(
            adversarialAlpha >= 0 && adversarialAlpha <= 1, "adversarial_alpha",
            "must be in [0, 1], got \(adversarialAlpha)")
        try require(
            adversarialEpsilon >= 0 && adversarialEpsilon.isFinite, "adversarial_epsilon",
            "must be ≥ 0, got \(adversarialEpsilon)")
        try require(dropout >= 0 && dropout < 1, "dropout", "must be in [0, 1), got \(dropout)")
        try require(hidden.allSatisfy { $0 > 0 }, "hidden", "widths must be > 0, got \(hidden)")
        try require(
            hidden.allSatisfy { $0 <= TrainingConfig.maxWidth }, "hidden",
            "widths must be ≤ \(TrainingConfig.maxWidth) (a BLAS dimension is 32-bit), got \(hidden)")
        try require(batchSize <= TrainingConfig.maxBatchSize, "batch_size", "must be ≤ \(TrainingConfig.maxBatchSize), got \(batchSize)")
        try require(ghostBatch <= TrainingConfig.maxGhostBatch, "ghost_batch", "must be ≤ \(TrainingConfig.maxGhostBatch), got \(ghostBatch)")
        try require(chunkSize >= 0, "chunk_size", "must be ≥ 0 (0: automatic), got \(chunkSize)")
        try require(
            chunkSize == 0 || (chunkSize <= ghostBatch && ghostBatch % chunkSize == 0), "chunk_size",
            "must divide ghost_batch (\(ghostBatch)), got \(chunkSize)")
        try require(depth >= 7 && (depth - 4) % 3 == 0, "depth", "DenseNet depth must be 3n+4 (e.g. 22, 40), got \(depth)")
        try require(depth <= 1000, "depth", "must be ≤ 1000, got \(depth)")
        try require(growth > 0, "growth", "must be > 0, got \(growth)")
        try require(growth <= 4096, "growth", "must be ≤ 4096, got \(growth)")
        try require(
            widthDivisor >= 1 && 64 % widthDivisor == 0, "width_divisor",
            "must divide 64 (1, 2, 4, 8, …), got \(widthDivisor)")
        try require(cropPadding >= 0, "crop_padding", "must be ≥ 0, got \(cropPadding)")
        try require(syntheticTrainSamples > 0, "synthetic_train_samples", "must be > 0")
        try require(syntheticTestSamples > 0, "synthetic_test_samples", "must be > 0")
        try require(syntheticClasses >= 2, "synthetic_classes", "must be ≥ 2")
        try require(
            syntheticShape.count == 1 || syntheticShape.count == 3, "synthetic_shape",
            "must be [features] or [channels, height, width], got \(syntheticShape)")
        try require(syntheticShape.allSatisfy { $0 > 0 }, "synthetic_shape", "sizes must be > 0")
        let sampleValues = syntheticShape.reduce(1.0) { $0 * Double($1) }
        try require(
            sampleValues <= Double(Int32.max), "synthetic_shape",
            "a sample of \(syntheticShape) has \(String(format: "%.0f", sampleValues)) values; at most \(Int32.max) (a BLAS dimension is 32-bit)")
        try require(
            syntheticTrainSamples <= Int(Int32.max) && syntheticTestSamples <= Int(Int32.max), "synthetic_train_samples",
            "synthetic_train_samples and synthetic_test_samples must be ≤ \(Int32.max) (sample indices are 32-bit)")
        try require(evalEveryEpochs >= 0, "eval_every_epochs", "must be ≥ 0 (0: only at the end)")
        try require(trainEvalSamples >= 0, "train_eval_samples", "must be ≥ 0 (0: all)")
        try require(testEvalSamples >= 0, "test_eval_samples", "must be ≥ 0 (0: all)")
        try require(checkpointEverySteps >= 0, "checkpoint_every_steps", "must be ≥ 0 (0: only at the end)")
        try require(keepCheckpoints >= 1, "keep_checkpoints", "must be ≥ 1")
        try require(threads >= 0, "threads", "must be ≥ 0 (0: all cores)")
        try require(maxSteps >= 0, "max_steps", "must be ≥ 0 (0: no limit)")
        try require(progressSeconds > 0, "progress_seconds", "must be > 0")
        try require(heartbeatInterval > 0, "heartbeat_interval", "must be > 0")
        try require(
            workerTimeout > heartbeatInterval, "worker_timeout",
            "must be longer than heartbeat_interval (\(heartbeatInterval) s), got \(workerTimeout) s")
        try require(
            coordinatorTimeout > heartbeatInterval, "coordinator_timeout",
            "must be longer than heartbeat_interval (\(heartbeatInterval) s), got \(coordinatorTimeout) s")
        try require(waitForWorkers > 0, "wait_for_workers", "must be > 0")
        try require(maxWorkerRestarts >= 0, "max_worker_restarts", "must be ≥ 0")
        try require(stepDeadlineFactor >= 1, "step_deadline_factor", "must be ≥ 1 (a worker is allowed this many times the median unit time)")
        try require(stepDeadlineFloor > 0, "step_deadline_floor", "must be > 0")
    }
}
