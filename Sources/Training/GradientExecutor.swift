import Data
import Engine

// The seam between the trainer and where gradients are computed (DESIGN §2). The trainer
// owns parameters, optimiser and regularisers; an executor turns (parameters, step task) into
// the step's reduced gradient SUM and statistics. `LocalExecutor` computes in this process;
// the cluster executor farms units out to worker processes. Both reduce in the unit tree.

public struct StepTask: Sendable {
    public var step: Int
    public var epoch: Int
    /// The global batch's sample indices (batchSize of them), unit u owning
    /// [u·unitSize, (u+1)·unitSize).
    public var indices: [Int32]

    public init(step: Int, epoch: Int, indices: [Int32]) {
        self.step = step
        self.epoch = epoch
        self.indices = indices
    }
}

public struct StepStatistics: Sendable {
    public var lossSum: Double = 0
    public var correct = 0
    public var samples = 0
    /// Mean over units (in unit order) of each BN channel's batch mean, then batch variance.
    public var batchStatistics: [Float] = []
    /// Wall time of the slowest worker's compute, of moving data, of the reduction.
    public var computeSeconds = 0.0
    public var transferSeconds = 0.0
    public var reduceSeconds = 0.0
    public var liveWorkers = 1
    /// Bytes sent and received for this step (0 in process).
    public var bytesMoved = 0
    /// Units each worker computed, by name, when they were not cut equally (workers cut by
    /// measured speed, or meeting within the step); empty otherwise and in process.
    public var unevenUnits: [(worker: String, units: Int)] = []

    public init() {}

    /// Fold per-unit outcomes (in unit order) into step totals.
    public mutating func accumulate(_ outcomes: UnitOutcomes) {
        for u in 0..<outcomes.lossSums.count {
            lossSum += outcomes.lossSums[u]
            correct += outcomes.correct[u]
            samples += outcomes.samples[u]
        }
    }

    /// Average per-unit BN statistics (units × width, unit order) into `batchStatistics`.
    public mutating func averageBatchStatistics(_ perUnit: [Float], units: Int, width: Int) {
        guard width > 0, units > 0 else { return }
        var mean = [Float](repeating: 0, count: width)
        for u in 0..<units {
            for i in 0..<width { mean[i] += perUnit[u * width + i] }
        }
        let inverse = 1 / Float(units)
        batchStatistics = mean.map { $0 * inverse }
    }
}

public struct EvaluationResult: Sendable, Equatable {
    public var lossSum: Double
    public var correct: Int
    public var samples: Int
    public var loss: Double { samples > 0 ? lossSum / Double(samples) : 0 }
    public var accuracy: Double { samples > 0 ? Double(correct) / Double(samples) : 0 }

    public init(lossSum: Double, correct: Int, samples: Int) {
        self.lossSum = lossSum
        self.correct = correct
        self.samples = samples
    }

    /// Sum per-chunk results in chunk order.
    public init(chunkLossSums: [Double], chunkCorrect: [Int], samples: Int) {
        self.init(lossSum: chunkLossSums.reduce(0, +), correct: chunkCorrect.reduce(0, +), samples: samples)
    }
}

public protocol GradientExecutor: AnyObject {
    /// The tree-reduced sum over the step's units of ∇θ(summed loss), written to `gradientSum`.
    func computeStep(_ task: StepTask, parameters: FloatBuffer, gradientSum: FloatBuffer) throws -> StepStatistics
    /// Loss and accuracy on samples 0..<sampleCount of a split, in inference mode.
    func evaluate(split: Split, sampleCount: Int, parameters: FloatBuffer, state: FloatBuffer) throws -> EvaluationResult
    /// Processes computing gradients (1 in process).
    var liveWorkers: Int { get }
    /// The OpenBLAS kernels (core names) of the worker processes whose results counted, sorted
    /// and distinct; nil when this process computes everything (its kernel is
    /// `BLASThreads.coreName`).
    var workerKernels: [String]? { get }
    func shutdown()
}

/// Computes everything in this process on one network.
public final class LocalExecutor: GradientExecutor {
    public let runner: LaneRunner
    private let units: Int
    private let unitSize: Int
    /// Block sums when the units do not form one power-of-two block (allocated once).
    private var blockPool: [FloatBuffer] = []

    public init(runner: LaneRunner, unitsPerStep: Int) {
        self.runner = runner
        self.units = unitsPerStep
        self.unitSize = runner.unitSize
    }

    public var liveWorkers: Int { 1 }
    public var workerKernels: [String]? { nil }
    public func shutdown() {}

    public func computeStep(_ task: StepTask, parameters: FloatBuffer, gradientSum: FloatBuffer) throws -> StepStatistics {
        let network = runner.network
        if parameters !== network.parameters { network.parameters.copy(from: parameters) }
        let started = MonotonicClock.now()
        var sums = [UnitBlock: UnsafeMutablePointer<Float>]()
        var used = 0
        let outcomes = try task.indices.withUnsafeBufferPointer { indices in
            try runner.train(step: task.step, epoch: task.epoch, firstUnit: 0, unitCount: units, indices: indices) { block, sum in
                if units == block.count && block.first == 0 {
                    gradientSum.pointer.update(from: sum, count: gradientSum.count)
                } else {
                    if used == blockPool.count { blockPool.append(FloatBuffer(count: gradientSum.count)) }
                    blockPool[used].pointer.update(from: sum, count: gradientSum.count)
                    sums[block] = blockPool[used].pointer
                    used += 1
                }
            }
        }
        let computed = MonotonicClock.now()
        if !sums.isEmpty {
            try UnitTree.combine(units: units, sums: sums, length: gradientSum.count, into: gradientSum.pointer)
        }
        var statistics = StepStatistics()
        statistics.accumulate(outcomes)
        statistics.averageBatchStatistics(outcomes.batchStatistics, units: units, width: 2 * network.normalizationChannels)
        statistics.computeSeconds = computed - started
        statistics.reduceSeconds = MonotonicClock.now() - computed
        return statistics
    }

    public func evaluate(split: Split, sampleCount: Int, parameters: FloatBuffer, state: FloatBuffer) throws -> EvaluationResult {
        let network = runner.network
        if parameters !== network.parameters { network.parameters.copy(from: parameters) }
        if state !== network.state { network.state.copy(from: state) }
        let indices = (0..<Int32(sampleCount)).map { $0 }
        let (losses, correct) = try indices.withUnsafeBufferPointer {
            try runner.evaluate(split: split, indices: $0, shouldStop: { StopRequest.requested })
        }
        return EvaluationResult(chunkLossSums: losses, chunkCorrect: correct, samples: sampleCount)
    }
}
