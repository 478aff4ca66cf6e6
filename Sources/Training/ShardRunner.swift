import Data
import Engine
import Foundation

// The compute at the bottom of every executor: runs a contiguous range of a step's work units
// on one lane group and produces the gradient sum of each aligned block of the unit tree
// (UnitTree), plus per-unit loss, accuracy and batch-norm statistics. The in-process executor
// and the remote worker both call it (through LaneRunner), so a step computes the same bytes in
// every mode.
//
// A unit of G = ghost_batch samples is cut into k = G / chunk_size chunks (the config fixes k,
// never the thread count). With k = 1 the unit is one forward/backward on one replica. With
// k > 1 each chunk runs on its own replica on its own thread of `chunkThreads`; batch
// normalisation meets at a ChunkBarrier for the unit's statistics, and after backward every
// chunk thread sums one fixed slice of the parameter vector over the k replicas' gradients in
// chunk order. Evaluation runs in pieces of chunk_size samples, per unit-sized evaluation
// chunk, summed in order.
// Units without batch normalisation (the MLP) are not chunked when the step is too small to
// give every lane a unit: their GEMMs are split into fixed output pieces instead
// (config.linearBlocks, Linear.splitGEMMs), which the lanes share the same way.

/// Per-unit outcomes of a shard, in unit order.
public struct UnitOutcomes: Sendable {
    public var lossSums: [Double] = []
    public var correct: [Int] = []
    public var samples: [Int] = []
    /// unitCount × (2 · normalizationChannels): each unit's BN batch means then variances.
    public var batchStatistics: [Float] = []

    public init() {}

    /// Append `other`'s units after this one's.
    public mutating func append(_ other: UnitOutcomes) {
        lossSums += other.lossSums
        correct += other.correct
        samples += other.samples
        batchStatistics += other.batchStatistics
    }

    /// Puts the units in the opposite order (`width` statistics per unit).
    mutating func reverseUnits(width: Int) {
        lossSums.reverse()
        correct.reverse()
        samples.reverse()
        guard width > 0 else { return }
        let units = batchStatistics.count / width
        batchStatistics = (0..<units).reversed().flatMap { batchStatistics[($0 * width)..<(($0 + 1) * width)] }
    }
}

/// One lane's replica: a network sharing the parameters, its input rows and its objective.
final class Replica {
    let network: Network
    let input: FloatBuffer  // (rows, sampleSize)
    var labels: [Int32]  // (rows)
    let objective: UnitObjective

    init(network: Network, rows: Int, sampleSize: Int, objective: UnitObjective) {
        self.network = network
        input = FloatBuffer(count: rows * sampleSize)
        labels = [Int32](repeating: 0, count: rows)
        self.objective = objective
        network.reserve(maxBatch: rows)
    }
}

public final class ShardRunner {
    /// Sees each training unit's input (its first chunk's rows × sampleSize floats, writable)
    /// just before its forward pass, with the step and unit index. For fault-injection tests only.
    public typealias InputHook = @Sendable (_ step: Int, _ unit: Int, _ input: UnsafeMutableBufferPointer<Float>) -> Void

    /// Replica 0's network: the one whose parameters every replica reads.
    public let network: Network
    public let data: DatasetPair
    public let unitSize: Int
    /// Samples per chunk, and chunks per unit.
    public let chunkSize: Int
    public let chunkCount: Int
    public let augmenter: Augmenter
    public let seed: UInt64
    /// nil except in fault-injection tests.
    public var inputHook: InputHook?

    private let sampleSize: Int
    private let replicas: [Replica]
    private let tokens: LaneTokens?
    private let chunkThreads: LanePool?
    private let barrier: ChunkBarrier?
    /// Where a unit's chunks share transformed Winograd kernels (nil: not chunked, or no
    /// Winograd layer).
    private let sharedKernels: SharedKernelSlots?
    /// Where a unit's chunks take each other's pieces (nil: not chunked, or not every chunk has a core).
    private let sharedPieces: SharedPieces?
    private let chunkLoss: UnsafeMutablePointer<Double>  // (k)
    private let chunkCorrect: UnsafeMutablePointer<Int>  // (k)
    private let unitStatistics: FloatBuffer  // (2·BN channels) of the unit being run
    /// The unit tree's partial sums of the units this group takes.
    private let accumulator: TreeAccumulator
    /// The units this group computed in its last `train`, in the order it took them.
    public private(set) var lastUnits: [Int] = []

    /// `network` is replica 0 (its parameters are the ones read); the other chunks' replicas are
    /// built from `config` to share them. `tokens` limits how many lanes compute at once.
    public init(network: Network, data: DatasetPair, config: TrainingConfig, tokens: LaneTokens? = nil) throws {
        self.network = network
        self.data = data
        unitSize = config.ghostBatch
        chunkSize = config.effectiveChunkSize
        chunkCount = config.ghostBatch / chunkSize
        augmenter = Augmenter(kind: config.augment, padding: config.cropPadding, seed: config.seed)
        seed = config.seed
        self.tokens = tokens
        sampleSize = data.shape.count
        var replicas = [Replica]()
        for chunk in 0..<chunkCount {
            let replicaNetwork = chunk == 0
                ? network : try ModelFactory.make(config, inputShape: data.shape, classes: data.classes, sharingWith: network)
            let objective = config.method.implementation.makeObjective(config: config, unitSize: chunkSize, sampleSize: sampleSize)
            replicas.append(Replica(network: replicaNetwork, rows: chunkSize, sampleSize: sampleSize, objective: objective))
        }
        self.replicas = replicas
        if chunkCount > 1 {
            chunkThreads = LanePool(threads: chunkCount, name: "ssgd-chunk")
            // When every chunk has a lane and a core of its own, a chunk waiting at a meeting
            // takes pieces of the others' work instead of sleeping (SharedPieces).
            let lanes = tokens?.count ?? chunkCount
            let pieces = lanes >= chunkCount && SpinWait.mayPoll(threads: lanes)
                ? SharedPieces(participants: chunkCount) : nil
            sharedPieces = pieces
            barrier = ChunkBarrier(participants: chunkCount, tokens: tokens, pieces: pieces)
            // The chunks transform each Winograd layer's kernel once between them.
            let capacity = network.winogradKernelCapacity
            sharedKernels = capacity > 0 ? SharedKernelSlots(capacity: capacity) : nil
        } else {
            chunkThreads = nil
            barrier = nil
            sharedKernels = nil
            sharedPieces = nil
        }
        let blocks = config.linearBlocks
        if blocks > 1 {
            // Threads for the pieces after the first; the jobs closure keeps them alive.
            // The pieces follow each other closely, GEMM after GEMM: with a lane and a core per
            // piece, the threads poll between them rather than sleep.
            let pool = LanePool(
                threads: blocks - 1, name: "ssgd-block",
                polls: (tokens?.count ?? 1) >= blocks && SpinWait.mayPoll(threads: blocks))
            // The caller holds a lane token (every path into the network takes one).
            let jobs: BlockJobs = { count, job in
                if tokens?.count == 1 {
                    // One lane: the pieces run in turn anyway, so on this thread, without a hand-off.
                    for index in 0..<count { job(index) }
                    return
                }
                // The caller computes piece 0 with its own token; pool threads take tokens of
                // their own for the others. The caller gives its token back while it waits, so
                // no lane ever waits for a token while holding one.
                try? pool.runSharingCaller(
                    count: count,
                    { index in
                        if index == 0 { return job(0) }
                        tokens?.acquire()
                        defer { tokens?.release() }
                        job(index)
                    },
                    beforeWaiting: { tokens?.release() }, afterWaiting: { tokens?.acquire() })
            }
            for case let linear as Linear in network.layers { linear.splitGEMMs(blocks: blocks, jobs: jobs) }
        }
        chunkLoss = .allocate(capacity: chunkCount)
        chunkCorrect = .allocate(capacity: chunkCount)
        unitStatistics = FloatBuffer(count: 2 * network.normalizationChannels)
        accumulator = TreeAccumulator(length: network.parameterCount)
    }

    deinit {
        chunkLoss.deallocate()
        chunkCorrect.deallocate()
    }

    /// Train units [firstUnit, firstUnit + unitCount) of a step. `indices` holds the step's
    /// sample indices for these units only (unitCount × unitSize). `emit` receives each
    /// aligned block's gradient sum (valid during the call) in unit order.
    public func train(
        step: Int, epoch: Int, firstUnit: Int, unitCount: Int, indices: UnsafeBufferPointer<Int32>,
        emit: (UnitBlock, UnsafeMutablePointer<Float>) throws -> Void
    ) throws -> UnitOutcomes {
        precondition(indices.count == unitCount * unitSize, "shard has \(indices.count) indices for \(unitCount) units of \(unitSize)")
        let (blocks, outcomes) = try train(
            step: step, epoch: epoch, taking: MeetingCursor(firstUnit..<(firstUnit + unitCount)), from: .left,
            firstUnit: firstUnit, indices: indices)
        for (block, sum) in blocks { try emit(block, sum) }
        return outcomes
    }

    /// Trains the units `cursor` gives at `end` until it has none left (another group may take
    /// from the other end). `indices` holds the sample indices of the cursor's whole range,
    /// unit u's at (u − firstUnit) · unitSize. Returns the unit tree's maximal aligned blocks of
    /// the units taken, with their sums (valid until this group trains again), and their
    /// outcomes, both in unit order.
    public func train(
        step: Int, epoch: Int, taking cursor: any UnitSource, from end: MeetingCursor.End, firstUnit: Int,
        indices: UnsafeBufferPointer<Int32>
    ) throws -> (blocks: [(UnitBlock, UnsafeMutablePointer<Float>)], outcomes: UnitOutcomes) {
        accumulator.begin(from: end)
        lastUnits.removeAll(keepingCapacity: true)
        var outcomes = UnitOutcomes()
        while let unit = try cursor.take(from: end) {
            // The previous unit's gradient, if it is still borrowed, leaves the buffer this one overwrites.
            accumulator.settle()
            let local = unit - firstUnit
            let slice = UnsafeBufferPointer(rebasing: indices[(local * unitSize)..<((local + 1) * unitSize)])
            accumulator.add(unit: unit, gradient: try runUnit(step: step, epoch: epoch, unit: unit, indices: slice, outcomes: &outcomes))
            lastUnits.append(unit)
        }
        if end == .right { outcomes.reverseUnits(width: 2 * network.normalizationChannels) }
        return (accumulator.blocks, outcomes)
    }

    /// One work unit: forward, loss, backward; returns its gradient (valid until the next unit).
    private func runUnit(
        step: Int, epoch: Int, unit: Int, indices: UnsafeBufferPointer<Int32>, outcomes: inout UnitOutcomes
    ) throws -> UnsafeMutablePointer<Float> {
        let parameterCount = network.parameterCount
        if let chunkThreads, let barrier {
            let k = chunkCount
            try chunkThreads.run(count: k) { chunk in
                tokens?.acquire()
                defer { tokens?.release() }
                let context = ForwardContext(
                    mode: .training, seed: seed, step: UInt64(step), unit: UInt64(unit),
                    chunk: ChunkContext(
                        collective: barrier, index: chunk, count: k, sampleOffset: chunk * chunkSize, kernels: sharedKernels,
                        pieces: sharedPieces))
                runChunk(chunk, step: step, epoch: epoch, unit: unit, indices: indices, context: context)
                // Every replica's backward is done: sum one fixed slice of the gradient over
                // the replicas, in chunk order.
                barrier.wait(participant: chunk)
                let lower = parameterCount * chunk / k
                let upper = parameterCount * (chunk + 1) / k
                // (g₀ + g₁) + g₂ + … into replica 0's gradients, which hold the unit's sum from
                // here on: no separate P-float buffer, no copy pass.
                let sum = replicas[0].network.gradients.pointer + lower
                for other in 1..<k {
                    UnitTree.addInPlace(sum, replicas[other].network.gradients.pointer + lower, upper - lower)
                }
            }
        } else {
            tokens?.acquire()
            defer { tokens?.release() }
            let context = ForwardContext(mode: .training, seed: seed, step: UInt64(step), unit: UInt64(unit))
            runChunk(0, step: step, epoch: epoch, unit: unit, indices: indices, context: context)
        }
        var lossSum = 0.0
        var correct = 0
        for chunk in 0..<chunkCount {
            lossSum += chunkLoss[chunk]
            correct += chunkCorrect[chunk]
        }
        outcomes.lossSums.append(lossSum)
        outcomes.correct.append(correct)
        outcomes.samples.append(indices.count)
        outcomes.batchStatistics.append(contentsOf: unitStatistics.buffer)
        // Chunked or not, replica 0's gradients (its network is `network`) hold the unit's sum.
        return network.gradients.pointer
    }

    /// Chunk `chunk` of a unit on its replica: its rows of the unit's samples, forward, loss,
    /// backward into the replica's gradients (zeroed first).
    private func runChunk(
        _ chunk: Int, step: Int, epoch: Int, unit: Int, indices: UnsafeBufferPointer<Int32>, context: ForwardContext
    ) {
        let replica = replicas[chunk]
        let train = data.train
        let first = chunk * chunkSize
        for j in 0..<chunkSize {
            let index = indices[first + j]
            augmenter.copy(
                train.sample(Int(index)), to: replica.input.pointer + j * sampleSize, shape: train.shape,
                epoch: epoch, index: index)
            replica.labels[j] = train.labels[Int(index)]
        }
        if chunk == 0 {
            inputHook?(step, unit, UnsafeMutableBufferPointer(start: replica.input.pointer, count: chunkSize * sampleSize))
        }
        replica.network.gradients.zero()
        let (lossSum, correct) = replica.labels.withUnsafeBufferPointer { y in
            let input = UnitInput(
                input: replica.input.pointer, labels: y.baseAddress!, count: chunkSize, sampleSize: sampleSize, context: context)
            return replica.objective.run(input, network: replica.network) {
                // The unit's statistics (every chunk holds the same after the collective).
                if chunk == 0 { unitStatistics.copy(from: replica.network.batchStatistics) }
            }
        }
        chunkLoss[chunk] = lossSum
        chunkCorrect[chunk] = correct
    }

    /// Inference over the listed samples of a split in consecutive chunks of `unitSize` (the
    /// last may be shorter): per-chunk loss sums and correct counts, in chunk order. Chunks are
    /// fixed by position in the global list, so any split of the list over workers at chunk
    /// boundaries gives the same chunks and the same sums.
    public func evaluate(split: Split, indices: UnsafeBufferPointer<Int32>) -> (lossSums: [Double], correct: [Int]) {
        // Never stopped, so never throws.
        (try? evaluate(split: split, indices: indices, shouldStop: { false })) ?? ([], [])
    }

    /// As above, asking `shouldStop` between pieces; throws StopRequestedError when it says
    /// yes. The evaluation chunks are shared out over the replicas in contiguous runs.
    public func evaluate(
        split: Split, indices: UnsafeBufferPointer<Int32>, shouldStop: () -> Bool
    ) throws -> (lossSums: [Double], correct: [Int]) {
        let chunks = (indices.count + unitSize - 1) / unitSize
        var lossSums = [Double](repeating: 0, count: chunks)
        var corrects = [Int](repeating: 0, count: chunks)
        let lanes = min(replicas.count, max(chunks, 1))
        try lossSums.withUnsafeMutableBufferPointer { losses in
            try corrects.withUnsafeMutableBufferPointer { counts in
                func body(_ lane: Int) throws {
                    let range = chunks * lane / lanes..<chunks * (lane + 1) / lanes
                    self.tokens?.acquire()
                    defer { self.tokens?.release() }
                    try self.evaluateChunks(
                        range, replica: self.replicas[lane], split: split, indices: indices, losses: losses, counts: counts,
                        shouldStop: shouldStop)
                }
                if lanes > 1, let chunkThreads { try chunkThreads.run(count: lanes, body) } else { try body(0) }
            }
        }
        return (lossSums, corrects)
    }

    /// Evaluation chunks `range` on one replica, each in pieces of chunk_size summed in order.
    private func evaluateChunks(
        _ range: Range<Int>, replica: Replica, split: Split, indices: UnsafeBufferPointer<Int32>,
        losses: UnsafeMutableBufferPointer<Double>, counts: UnsafeMutableBufferPointer<Int>, shouldStop: () -> Bool
    ) throws {
        let dataset = data.dataset(split)
        for chunk in range {
            let end = min((chunk + 1) * unitSize, indices.count)
            var piece = chunk * unitSize
            var loss = 0.0
            var correct = 0
            while piece < end {
                if shouldStop() { throw StopRequestedError() }
                let n = min(chunkSize, end - piece)
                for j in 0..<n {
                    let index = Int(indices[piece + j])
                    (replica.input.pointer + j * sampleSize).update(from: dataset.sample(index), count: sampleSize)
                    replica.labels[j] = dataset.labels[index]
                }
                let result = replica.labels.withUnsafeBufferPointer { y in
                    let logits = replica.network.forward(replica.input.pointer, batch: n, context: .inference)
                    return replica.network.loss.forward(logits: logits, labels: y.baseAddress!, batch: n)
                }
                loss += result.lossSum
                correct += result.correct
                piece += n
            }
            losses[chunk] = loss
            counts[chunk] = correct
        }
    }
}
