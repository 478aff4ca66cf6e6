import Engine
import Training
import Wire

// Reduction (DESIGN §4): a step's results, taken in SHARD order whatever order they arrived in,
// become the step's gradient sum and statistics. Each result carries one gradient per aligned
// block of the unit tree; the blocks are combined in the fixed tree (UnitTree.combine), read
// where they lie in the received messages, so the sum has the same bytes as the in-process one
// without a copy of each block first. Per-unit losses, counts and batch-norm statistics are
// folded in unit order.

final class ShardReducer {
    /// (P) floats per gradient.
    let parameterCount: Int
    /// Batch-norm statistics per unit (2 · normalisation channels).
    let statisticsPerUnit: Int
    /// (P) buffers, one per block of the step being reduced; grown on demand, then reused.
    private var blockPool: [FloatBuffer] = []

    init(parameterCount: Int, statisticsPerUnit: Int) {
        self.parameterCount = parameterCount
        self.statisticsPerUnit = statisticsPerUnit
    }

    /// Why a decoded result cannot be used for its task: sizes that disagree with this model, or
    /// gradient blocks that are not aligned nodes of the unit tree covering the task's range
    /// in order (the reduction combines only those).
    func problem(with result: ResultMessage, for task: TaskMessage) -> String? {
        let units = Int(task.unitCount)
        if result.lossSums.count != units { return "\(result.lossSums.count) unit losses for \(units) units" }
        if let block = result.gradientBlocks.first(where: { $0.gradient.count != parameterCount }) {
            return "a gradient of \(block.gradient.count) values, the model has \(parameterCount)"
        }
        guard task.kind == .train else { return nil }
        if units == 0 {
            // A task that met another may be granted no unit: then it sends nothing to sum.
            return result.gradientBlocks.isEmpty && result.batchStatistics.count == 0 ? nil : "blocks or statistics for no units"
        }
        let expected = UnitTree.blocks(first: Int(task.firstUnit), count: units)
        let sent = result.gradientBlocks.map { UnitBlock(first: Int($0.firstUnit), count: Int($0.unitCount)) }
        // A worker with several lane groups returns finer aligned blocks (each group's range
        // in the tree's blocks): any in-order partition of the range into aligned tree nodes
        // reduces to the same bytes.
        if !UnitTree.isAlignedPartition(sent, first: Int(task.firstUnit), count: units) {
            return "gradient blocks \(Self.describe(sent)), the unit tree's blocks of units "
                + "\(task.firstUnit)..<\(Int(task.firstUnit) + units) are \(Self.describe(expected))"
        }
        if result.batchStatistics.count != units * statisticsPerUnit {
            return "\(result.batchStatistics.count) batch-norm statistics, expected \(units * statisticsPerUnit)"
        }
        return nil
    }

    private static func describe(_ blocks: [UnitBlock]) -> String {
        blocks.map { "[\($0.first), \($0.first + $0.count))" }.joined(separator: " ")
    }

    /// The tree sum of the `units` units' gradients into `gradientSum`, and the step's loss,
    /// accuracy, batch-norm statistics and slowest compute time. `results` tile the units in order.
    func reduceTraining(_ results: [ResultMessage], units: Int, into gradientSum: FloatBuffer) throws -> StepStatistics {
        var statistics = StepStatistics()
        var perUnitNormalization = [Float]()
        perUnitNormalization.reserveCapacity(units * statisticsPerUnit)
        var slowest = 0.0
        for result in results {
            var outcomes = UnitOutcomes()
            outcomes.lossSums = result.lossSums
            outcomes.correct = result.correctCounts.map(Int.init)
            outcomes.samples = result.sampleCounts.map(Int.init)
            statistics.accumulate(outcomes)
            perUnitNormalization.append(contentsOf: result.batchStatistics.toArray())
            slowest = max(slowest, result.computeSeconds)
        }
        var pooled = 0
        func pooledBuffer() -> UnsafeMutablePointer<Float> {
            if pooled == blockPool.count { blockPool.append(FloatBuffer(count: parameterCount)) }
            pooled += 1
            return blockPool[pooled - 1].pointer
        }
        try withLeaves(Array(results.lazy.flatMap(\.gradientBlocks)), copying: pooledBuffer) { leaves in
            try UnitTree.combine(units: units, leaves: leaves, length: parameterCount, scratch: pooledBuffer, into: gradientSum.pointer)
        }
        statistics.averageBatchStatistics(perUnitNormalization, units: units, width: statisticsPerUnit)
        statistics.computeSeconds = slowest
        return statistics
    }

    /// An aggregator's reduction: the sums of the unit tree's blocks of [first, first + count)
    /// from `results` (finer aligned blocks tiling that range in order), each combined as the
    /// root would combine it. The pointers are this reducer's buffers, valid until the next call.
    func reduceBlocks(_ results: [ResultMessage], first: Int, count: Int) throws -> [(block: UnitBlock, sum: UnsafeMutablePointer<Float>)] {
        try UnitTree.blockSums(first: first, count: count, sums: pooledBlocks(results), length: parameterCount)
    }

    /// Runs `body` with every block's gradient by its units, read where it lies in its message
    /// (no copy: the sums are formed out of place), or, where it cannot be read in place,
    /// copied into a buffer from `copying`. The pointers are valid only inside `body`.
    private func withLeaves<R>(
        _ blocks: [GradientBlock], from index: Int = 0, collected: [UnitBlock: UnsafePointer<Float>] = [:],
        copying: () -> UnsafeMutablePointer<Float>, _ body: ([UnitBlock: UnsafePointer<Float>]) throws -> R
    ) throws -> R {
        guard index < blocks.count else { return try body(collected) }
        let block = blocks[index]
        return try block.gradient.withFloatsInPlace { inPlace in
            var leaves = collected
            let key = UnitBlock(first: Int(block.firstUnit), count: Int(block.unitCount))
            if let inPlace {
                leaves[key] = inPlace
            } else {
                let copy = copying()
                block.gradient.copy(into: copy)
                leaves[key] = UnsafePointer(copy)
            }
            return try withLeaves(blocks, from: index + 1, collected: leaves, copying: copying, body)
        }
    }

    /// Every gradient block of `results`, copied into a pooled buffer, by its units.
    private func pooledBlocks(_ results: [ResultMessage]) -> [UnitBlock: UnsafeMutablePointer<Float>] {
        var sums = [UnitBlock: UnsafeMutablePointer<Float>]()
        var poolIndex = 0
        for block in results.lazy.flatMap(\.gradientBlocks) {
            if poolIndex == blockPool.count { blockPool.append(FloatBuffer(count: parameterCount)) }
            block.gradient.copy(into: blockPool[poolIndex].pointer)
            sums[UnitBlock(first: Int(block.firstUnit), count: Int(block.unitCount))] = blockPool[poolIndex].pointer
            poolIndex += 1
        }
        return sums
    }

    /// Per-chunk losses and correct counts of evaluation `results` (in chunk order) over `samples`.
    func reduceEvaluation(_ results: [ResultMessage], samples: Int) -> EvaluationResult {
        var losses = [Double]()
        var correct = [Int]()
        for result in results {
            losses.append(contentsOf: result.lossSums)
            correct.append(contentsOf: result.correctCounts.map(Int.init))
        }
        return EvaluationResult(chunkLossSums: losses, chunkCorrect: correct, samples: samples)
    }
}
