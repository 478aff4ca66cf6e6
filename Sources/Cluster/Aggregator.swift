import Engine
import Training
import Transport
import Wire

// An aggregator (`ssgd aggregator`, DESIGN §4 "Aggregators"): a worker to its parent (the
// coordinator, or another aggregator), a coordinator to workers of its own. A shard it is sent is
// cut over its live workers exactly as the coordinator cuts a step — by measured speed
// (ShardBalance), ShardRound with step deadlines and re-issue to a live worker — and their
// gradient blocks are combined into the
// unit tree's blocks of the shard's range (ShardReducer.reduceBlocks: the additions the root would
// make, in its order), which go up as one result. The parent therefore receives what one worker
// computing the whole shard would send, and the step's bytes do not change: the tree is the same,
// only the process that adds a node moves. Per step the parent's link carries the parameters
// once and a few blocks per aggregator, not per worker: with A aggregators the root moves
// O(A · P) bytes whatever the number of workers below them.

extension ClusterExecutor {
    /// The result of a parent's shard `task` (units numbered as in the parent's step, so the
    /// tree's alignment is the parent's) computed by this executor's workers: for a train task
    /// the sums of the tree's blocks of its range, copied into `blockBuffers`; for an evaluate
    /// task its chunks' losses in order.
    func computeShard(_ task: TaskMessage, step: UInt64, blockBuffers: SendBufferPool) throws -> ResultMessage {
        let started = MonotonicClock.now()
        try housekeeping()
        let unitSize = Int(task.unitSize)
        let first = Int(task.firstUnit)
        let pieces = Int(task.unitCount)
        sendBuffers.reclaim()
        let send = sendBuffers.take()
        task.parameters.copy(into: send.buffer.pointer)
        let payload = send.floats(count: task.parameters.count)
        let indices = task.sampleIndices
        let subtasks = shardRanges(units: pieces, step: task.kind == .train ? Int(step) : nil).map { range in
            TaskMessage(
                kind: task.kind, epoch: task.epoch, firstUnit: UInt32(first + range.lowerBound), unitCount: UInt32(range.count),
                unitSize: task.unitSize, split: task.split,
                sampleIndices: Array(indices[min(range.lowerBound * unitSize, indices.count)..<min(range.upperBound * unitSize, indices.count)]),
                parameters: payload)
        }
        let results = try run(tasks: subtasks, step: Int(step), kind: task.kind)
        let lossSums = results.flatMap(\.lossSums)
        let correct = results.flatMap(\.correctCounts)
        let samples = results.flatMap(\.sampleCounts)
        switch task.kind {
        case .evaluate:
            return ResultMessage(
                taskKind: .evaluate, firstUnit: task.firstUnit, unitCount: UInt32(lossSums.count), lossSums: lossSums,
                correctCounts: correct, sampleCounts: samples, gradientBlocks: [], statisticsPerUnit: 0,
                batchStatistics: .empty, computeSeconds: MonotonicClock.now() - started)
        case .train:
            blockBuffers.reclaim()
            let blocks = try reducer.reduceBlocks(results, first: first, count: pieces).map { block, sum in
                let buffer = blockBuffers.take()
                buffer.buffer.pointer.update(from: sum, count: reducer.parameterCount)
                return GradientBlock(firstUnit: UInt32(block.first), unitCount: UInt32(block.count), gradient: buffer.floats())
            }
            let statistics = results.flatMap { $0.batchStatistics.toArray() }
            return ResultMessage(
                taskKind: .train, firstUnit: task.firstUnit, unitCount: task.unitCount, lossSums: lossSums,
                correctCounts: correct, sampleCounts: samples, gradientBlocks: blocks,
                statisticsPerUnit: UInt32(reducer.statisticsPerUnit), batchStatistics: WireFloats(statistics),
                computeSeconds: MonotonicClock.now() - started)
        }
    }

    /// Between the parent's tasks: answer heartbeats, admit newcomers, bury the silent — without
    /// waiting for workers (a shard that finds none waits in `computeShard`).
    func tend() throws {
        var stale = [(peer: PeerID, envelope: WireEnvelope)]()
        try drain(into: &stale)
        ignoredResults += stale.count
        buryTheSilent()
    }
}

/// A worker's backend that hands its shards on to workers of its own (see above).
public final class AggregatingShardBackend: ShardBackend {
    public let executor: ClusterExecutor
    /// (P) floats each: the block sums of results, never written while a transport reads them.
    private let blockBuffers: SendBufferPool

    public init(executor: ClusterExecutor, parameterCount: Int) {
        self.executor = executor
        blockBuffers = SendBufferPool(count: parameterCount)
    }

    /// The workers below (each reports its own lanes when it joins).
    public var lanes: Int { max(executor.liveWorkers, 1) }

    /// Its shards go on to workers of its own, whole.
    public var canMeet: Bool { false }

    public func train(_ task: TaskMessage, step: UInt64, claims: UnitClaims?) throws -> ResultMessage {
        try executor.computeShard(task, step: step, blockBuffers: blockBuffers)
    }

    public func evaluate(_ task: TaskMessage, step: UInt64) throws -> ResultMessage {
        try executor.computeShard(task, step: step, blockBuffers: blockBuffers)
    }

    public func idle() throws { try executor.tend() }

    public func shutdown(reason: String) { executor.shutdown(reason: reason) }
}
