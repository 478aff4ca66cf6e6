import Data
import Engine
import Training
import Wire

// What a worker process does with the shards its coordinator sends (DESIGN §4): compute them
// on its own lanes (LaneShardBackend, `ssgd worker`), or hand them on to workers of its own and
// return their reduction (AggregatingShardBackend, `ssgd aggregator`). Either way the result is
// what one worker computing the whole shard would return — the unit tree's blocks of the shard's
// range, per-unit losses and statistics — so the parent cannot tell them apart and its
// reduction keeps its bytes. The Worker does the handshake, heartbeats and checks; a backend
// only computes.

public protocol ShardBackend: AnyObject {
    /// Lanes this process offers (reported in HELLO; informational).
    var lanes: Int { get }
    /// Whether it can take a train task's units from one end as they are granted (TaskEnd).
    var canMeet: Bool { get }
    /// The result of a train task (already checked against the model and data). A task with
    /// an end gets its units through `claims`.
    func train(_ task: TaskMessage, step: UInt64, claims: UnitClaims?) throws -> ResultMessage
    /// The result of an evaluate task (already checked against the model and data).
    func evaluate(_ task: TaskMessage, step: UInt64) throws -> ResultMessage
    /// Called between tasks, often: keep anything this backend serves alive.
    func idle() throws
    /// The worker is leaving (SHUTDOWN from its coordinator, or an error).
    func shutdown(reason: String)
}

/// Computes shards on this process's lanes.
public final class LaneShardBackend: ShardBackend {
    let runner: LaneRunner
    /// (P) floats each: the gradient blocks of results, never written while a transport reads them.
    private let blockBuffers: SendBufferPool

    public init(runner: LaneRunner) {
        self.runner = runner
        blockBuffers = SendBufferPool(count: runner.network.parameterCount)
    }

    public var lanes: Int { runner.lanes }
    /// One lane group takes units one after another from its end; several would each need a
    /// contiguous run of their own.
    public var canMeet: Bool { runner.groups.count == 1 }

    public func train(_ task: TaskMessage, step: UInt64, claims: UnitClaims?) throws -> ResultMessage {
        let started = MonotonicClock.now()
        let network = runner.network
        blockBuffers.reclaim()
        task.parameters.copy(into: network.parameters.pointer)
        var blocks = [GradientBlock]()
        func emit(_ block: UnitBlock, _ sum: UnsafeMutablePointer<Float>) {
            let send = blockBuffers.take()
            send.buffer.pointer.update(from: sum, count: network.parameterCount)
            blocks.append(GradientBlock(firstUnit: UInt32(block.first), unitCount: UInt32(block.count), gradient: send.floats()))
        }
        let range = Int(task.firstUnit)..<(Int(task.firstUnit) + Int(task.unitCount))
        var computed = range
        let outcomes = try task.sampleIndices.withUnsafeBufferPointer { indices in
            guard task.end != .whole else {
                return try runner.train(step: Int(step), epoch: Int(task.epoch), firstUnit: range.lowerBound,
                                        unitCount: range.count, indices: indices, emit: emit)
            }
            guard let claims, canMeet else {
                throw WorkerTaskError(description: "a task that meets another needs a worker with one lane group")
            }
            let units = ClaimedUnits(range: range, end: task.end == .left ? .left : .right, claims: claims)
            let (taken, outcomes) = try runner.groups[0].train(
                step: Int(step), epoch: Int(task.epoch), taking: units, from: units.end, firstUnit: range.lowerBound, indices: indices)
            for (block, sum) in taken { emit(block, sum) }
            computed = units.units
            return outcomes
        }
        return ResultMessage(
            taskKind: .train, firstUnit: UInt32(computed.lowerBound), unitCount: UInt32(computed.count), lossSums: outcomes.lossSums,
            correctCounts: outcomes.correct.map { UInt32($0) }, sampleCounts: outcomes.samples.map { UInt32($0) },
            gradientBlocks: blocks, statisticsPerUnit: UInt32(2 * network.normalizationChannels),
            batchStatistics: WireFloats(outcomes.batchStatistics), computeSeconds: MonotonicClock.now() - started)
    }

    public func evaluate(_ task: TaskMessage, step: UInt64) throws -> ResultMessage {
        let started = MonotonicClock.now()
        let network = runner.network
        task.parameters.withUnsafeBytes { raw in
            UnsafeMutableRawPointer(network.parameters.pointer).copyMemory(from: raw.baseAddress!, byteCount: network.parameterCount * 4)
            UnsafeMutableRawPointer(network.state.pointer).copyMemory(from: raw.baseAddress! + network.parameterCount * 4, byteCount: network.state.count * 4)
        }
        let split: Split = task.split == .train ? .train : .test
        let (losses, correct) = task.sampleIndices.withUnsafeBufferPointer { runner.evaluate(split: split, indices: $0) }
        return ResultMessage(
            taskKind: .evaluate, firstUnit: task.firstUnit, unitCount: UInt32(losses.count), lossSums: losses,
            correctCounts: correct.map { UInt32($0) },
            sampleCounts: (0..<losses.count).map { UInt32(min(runner.unitSize, task.sampleIndices.count - $0 * runner.unitSize)) },
            gradientBlocks: [], statisticsPerUnit: 0, batchStatistics: .empty, computeSeconds: MonotonicClock.now() - started)
    }

    public func idle() throws {}
    public func shutdown(reason: String) {}
}
