import Data
import Engine
import Foundation

// Lanes (DESIGN §3): `--threads N` is N single-threaded lanes (OpenBLAS at one thread). A step's
// work is a fixed decomposition — units of ghost_batch, each cut into chunks of chunk_size —
// and lanes only decide who computes which piece:
//  - units are shared out over G = max(1, N / k) lane groups (k = chunks per unit) as
//    contiguous unit ranges; each group's ShardRunner sums its range in the unit tree's
//    aligned blocks, and the blocks of all groups, in unit order, are what this runner emits.
//    Combining aligned blocks in the tree gives the same bytes however the range was cut
//    (UnitTree), so G never changes a bit;
//  - a group runs a unit's k chunks on k threads (ShardRunner), at most N computing at once
//    (LaneTokens).
// Evaluation shares its unit-sized chunks out over the groups the same way.

public final class LaneRunner {
    public let lanes: Int
    public let groups: [ShardRunner]
    private let drivers: LanePool?
    private var blockPool: [FloatBuffer] = []

    /// Replica 0 of group 0 is `network`; every other replica shares its parameters.
    public init(network: Network, data: DatasetPair, config: TrainingConfig, lanes: Int) throws {
        precondition(lanes >= 1, "at least one lane")
        self.lanes = lanes
        let tokens = LaneTokens(count: lanes)
        let groupCount = max(1, lanes / config.chunksPerUnit)
        var groups = [try ShardRunner(network: network, data: data, config: config, tokens: tokens)]
        for _ in 1..<groupCount {
            let replica = try ModelFactory.make(config, inputShape: data.shape, classes: data.classes, sharingWith: network)
            groups.append(try ShardRunner(network: replica, data: data, config: config, tokens: tokens))
        }
        self.groups = groups
        drivers = groupCount > 1 ? LanePool(threads: groupCount, name: "ssgd-lane") : nil
    }

    public var network: Network { groups[0].network }
    public var data: DatasetPair { groups[0].data }
    public var unitSize: Int { groups[0].unitSize }

    /// Fault-injection tests only (see ShardRunner.InputHook).
    public var inputHook: ShardRunner.InputHook? {
        get { groups[0].inputHook }
        set { for group in groups { group.inputHook = newValue } }
    }

    /// `count` items cut into `parts` contiguous ranges, the first ones one longer.
    static func ranges(_ count: Int, parts: Int) -> [Range<Int>] {
        (0..<parts).map { part in (count * part / parts)..<(count * (part + 1) / parts) }.filter { !$0.isEmpty }
    }

    /// As ShardRunner.train: units [firstUnit, firstUnit + unitCount), blocks emitted in unit order.
    public func train(
        step: Int, epoch: Int, firstUnit: Int, unitCount: Int, indices: UnsafeBufferPointer<Int32>,
        emit: (UnitBlock, UnsafeMutablePointer<Float>) throws -> Void
    ) throws -> UnitOutcomes {
        guard let drivers, unitCount > 1 else {
            return try groups[0].train(step: step, epoch: epoch, firstUnit: firstUnit, unitCount: unitCount, indices: indices, emit: emit)
        }
        let parts = LaneRunner.ranges(unitCount, parts: groups.count)
        let unitSize = self.unitSize
        let parameterCount = network.parameterCount
        // Each group's blocks, copied out of its tree buffers into pooled buffers.
        var blocks = [[(UnitBlock, Int)]](repeating: [], count: parts.count)
        var outcomes = [UnitOutcomes](repeating: UnitOutcomes(), count: parts.count)
        let maxBlocks = parts.map { UnitTree.blocks(first: firstUnit + $0.lowerBound, count: $0.count).count }
        var poolStart = [Int]()
        var total = 0
        for count in maxBlocks {
            poolStart.append(total)
            total += count
        }
        while blockPool.count < total { blockPool.append(FloatBuffer(count: parameterCount)) }
        let pool = blockPool
        try blocks.withUnsafeMutableBufferPointer { blocks in
            try outcomes.withUnsafeMutableBufferPointer { outcomes in
                try drivers.run(count: parts.count) { part in
                    let range = parts[part]
                    let slice = UnsafeBufferPointer(rebasing: indices[(range.lowerBound * unitSize)..<(range.upperBound * unitSize)])
                    var used = 0
                    outcomes[part] = try groups[part].train(
                        step: step, epoch: epoch, firstUnit: firstUnit + range.lowerBound, unitCount: range.count, indices: slice
                    ) { block, sum in
                        let buffer = poolStart[part] + used
                        pool[buffer].pointer.update(from: sum, count: parameterCount)
                        blocks[part].append((block, buffer))
                        used += 1
                    }
                }
            }
        }
        var merged = UnitOutcomes()
        for part in 0..<parts.count {
            merged.append(outcomes[part])
            for (block, buffer) in blocks[part] { try emit(block, pool[buffer].pointer) }
        }
        return merged
    }

    /// As ShardRunner.evaluate, the unit-sized evaluation chunks shared out over the groups.
    public func evaluate(
        split: Split, indices: UnsafeBufferPointer<Int32>, shouldStop: () -> Bool
    ) throws -> (lossSums: [Double], correct: [Int]) {
        let chunks = (indices.count + unitSize - 1) / unitSize
        guard let drivers, chunks > 1 else { return try groups[0].evaluate(split: split, indices: indices, shouldStop: shouldStop) }
        let parts = LaneRunner.ranges(chunks, parts: groups.count)
        var results = [(lossSums: [Double], correct: [Int])](repeating: ([], []), count: parts.count)
        let unitSize = self.unitSize
        try results.withUnsafeMutableBufferPointer { results in
            try drivers.run(count: parts.count) { part in
                let range = parts[part]
                let slice = UnsafeBufferPointer(
                    rebasing: indices[(range.lowerBound * unitSize)..<min(range.upperBound * unitSize, indices.count)])
                results[part] = try groups[part].evaluate(split: split, indices: slice, shouldStop: shouldStop)
            }
        }
        return (results.flatMap(\.lossSums), results.flatMap(\.correct))
    }

    public func evaluate(split: Split, indices: UnsafeBufferPointer<Int32>) -> (lossSums: [Double], correct: [Int]) {
        // Never stopped, so never throws.
        (try? evaluate(split: split, indices: indices, shouldStop: { false })) ?? ([], [])
    }
}
