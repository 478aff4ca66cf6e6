import Data
import Engine
import Foundation

// The compute at the bottom of every executor: runs a contiguous range of a step's work units
// on one network replica and produces the gradient sum of each aligned block of the unit tree
// (UnitTree), plus per-unit loss, accuracy and batch-norm statistics. The in-process executor
// and the remote worker both call it, so a step computes the same bytes in every mode.

/// Per-unit outcomes of a shard, in unit order.
public struct UnitOutcomes: Sendable {
    public var lossSums: [Double] = []
    public var correct: [Int] = []
    public var samples: [Int] = []
    /// unitCount × (2 · normalizationChannels): each unit's BN batch means then variances.
    public var batchStatistics: [Float] = []

    public init() {}
}

public final class ShardRunner {
    /// Sees each training unit's input (unitSize × sampleSize floats, writable) just before its
    /// forward pass, with the step and unit index. For fault-injection tests only.
    public typealias InputHook = @Sendable (_ step: Int, _ unit: Int, _ input: UnsafeMutableBufferPointer<Float>) -> Void

    public let network: Network
    public let data: DatasetPair
    public let unitSize: Int
    /// The method's per-unit loss (plain, or e.g. adversarial).
    public let objective: UnitObjective
    public let augmenter: Augmenter
    public let seed: UInt64

    private let sampleSize: Int
    private let input: FloatBuffer  // (unitSize, sampleSize)
    private var labels: [Int32]  // (unitSize)
    private var levels: [FloatBuffer] = []  // tree partial sums, one per level, parameterCount each
    /// nil except in fault-injection tests.
    public var inputHook: InputHook?

    public init(network: Network, data: DatasetPair, config: TrainingConfig) {
        self.network = network
        self.data = data
        self.unitSize = config.ghostBatch
        objective = config.method.implementation.makeObjective(config: config, unitSize: config.ghostBatch, sampleSize: data.shape.count)
        self.augmenter = Augmenter(kind: config.augment, padding: config.cropPadding, seed: config.seed)
        self.seed = config.seed
        sampleSize = data.shape.count
        input = FloatBuffer(count: unitSize * sampleSize)
        labels = [Int32](repeating: 0, count: unitSize)
        network.reserve(maxBatch: unitSize)
    }

    private func ensureLevels(_ count: Int) {
        while levels.count < count { levels.append(FloatBuffer(count: network.parameterCount)) }
    }

    /// Train units [firstUnit, firstUnit + unitCount) of a step. `indices` holds the step's
    /// sample indices for these units only (unitCount × unitSize). `emit` receives each
    /// aligned block's gradient sum (valid during the call) in unit order.
    public func train(
        step: Int, epoch: Int, firstUnit: Int, unitCount: Int, indices: UnsafeBufferPointer<Int32>,
        emit: (UnitBlock, UnsafeMutablePointer<Float>) throws -> Void
    ) throws -> UnitOutcomes {
        precondition(indices.count == unitCount * unitSize, "shard has \(indices.count) indices for \(unitCount) units of \(unitSize)")
        var outcomes = UnitOutcomes()
        outcomes.lossSums.reserveCapacity(unitCount)
        let statsPerUnit = 2 * network.normalizationChannels
        outcomes.batchStatistics.reserveCapacity(unitCount * statsPerUnit)
        for block in UnitTree.blocks(first: firstUnit, count: unitCount) {
            ensureLevels(UnitTree.depth(units: block.count) + 1)
            try sumBlock(
                block, level: 0, step: step, epoch: epoch, indices: indices, firstUnit: firstUnit,
                outcomes: &outcomes)
            try emit(block, levels[0].pointer)
        }
        return outcomes
    }

    private func sumBlock(
        _ block: UnitBlock, level: Int, step: Int, epoch: Int, indices: UnsafeBufferPointer<Int32>,
        firstUnit: Int, outcomes: inout UnitOutcomes
    ) throws {
        let destination = levels[level]
        if block.count == 1 {
            let local = block.first - firstUnit
            let slice = UnsafeBufferPointer(rebasing: indices[(local * unitSize)..<((local + 1) * unitSize)])
            runUnit(step: step, epoch: epoch, unit: block.first, indices: slice, outcomes: &outcomes)
            destination.copy(from: network.gradients)
            return
        }
        let half = block.count / 2
        try sumBlock(UnitBlock(first: block.first, count: half), level: level, step: step, epoch: epoch, indices: indices, firstUnit: firstUnit, outcomes: &outcomes)
        try sumBlock(UnitBlock(first: block.first + half, count: half), level: level + 1, step: step, epoch: epoch, indices: indices, firstUnit: firstUnit, outcomes: &outcomes)
        UnitTree.addInPlace(destination.pointer, levels[level + 1].pointer, network.parameterCount)
    }

    /// One work unit: forward, loss, backward into `network.gradients` (zeroed first).
    private func runUnit(
        step: Int, epoch: Int, unit: Int, indices: UnsafeBufferPointer<Int32>, outcomes: inout UnitOutcomes
    ) {
        let n = indices.count
        let train = data.train
        for (j, index) in indices.enumerated() {
            augmenter.copy(
                train.sample(Int(index)), to: input.pointer + j * sampleSize, shape: train.shape,
                epoch: epoch, index: index)
            labels[j] = train.labels[Int(index)]
        }
        inputHook?(step, unit, UnsafeMutableBufferPointer(start: input.pointer, count: n * sampleSize))
        network.gradients.zero()
        let context = ForwardContext(mode: .training, seed: seed, step: UInt64(step), unit: UInt64(unit))
        let (lossSum, correct) = labels.withUnsafeBufferPointer { y in
            let unit = UnitInput(input: input.pointer, labels: y.baseAddress!, count: n, sampleSize: sampleSize, context: context)
            return objective.run(unit, network: network) {
                outcomes.batchStatistics.append(contentsOf: network.batchStatistics.buffer)
            }
        }
        outcomes.lossSums.append(lossSum)
        outcomes.correct.append(correct)
        outcomes.samples.append(n)
    }

    /// Inference over the listed samples of a split in consecutive chunks of `unitSize` (the
    /// last may be shorter): per-chunk loss sums and correct counts, in chunk order. Chunks are
    /// fixed by position in the global list, so any split of the list over workers at chunk
    /// boundaries gives the same chunks and the same sums.
    public func evaluate(split: Split, indices: UnsafeBufferPointer<Int32>) -> (lossSums: [Double], correct: [Int]) {
        // Never stopped, so never throws.
        (try? evaluate(split: split, indices: indices, shouldStop: { false })) ?? ([], [])
    }

    /// As above, asking `shouldStop` between chunks; throws StopRequestedError when it says yes.
    public func evaluate(
        split: Split, indices: UnsafeBufferPointer<Int32>, shouldStop: () -> Bool
    ) throws -> (lossSums: [Double], correct: [Int]) {
        let dataset = data.dataset(split)
        var lossSums = [Double]()
        var corrects = [Int]()
        var chunkStart = 0
        while chunkStart < indices.count {
            if shouldStop() { throw StopRequestedError() }
            let n = min(unitSize, indices.count - chunkStart)
            for j in 0..<n {
                let index = Int(indices[chunkStart + j])
                (input.pointer + j * sampleSize).update(from: dataset.sample(index), count: sampleSize)
                labels[j] = dataset.labels[index]
            }
            let (loss, correct) = labels.withUnsafeBufferPointer { y in
                let logits = network.forward(input.pointer, batch: n, context: .inference)
                return network.loss.forward(logits: logits, labels: y.baseAddress!, batch: n)
            }
            lossSums.append(loss)
            corrects.append(correct)
            chunkStart += n
        }
        return (lossSums, corrects)
    }
}
