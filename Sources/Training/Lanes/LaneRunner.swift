import Data
import Engine
import Foundation

// Lanes (DESIGN §3): `--threads N` is N single-threaded lanes (OpenBLAS at one thread). A step's
// work is a fixed decomposition — units of ghost_batch, each cut into chunks of chunk_size —
// and lanes only decide who computes which piece:
//  - units are shared out over G = max(1, N / k) lane groups (k = chunks per unit): the groups
//    form pairs (and one single group when G is odd), each team gets a contiguous unit range,
//    and the two groups of a pair take its units from either end until they meet
//    (MeetingCursor), so the faster one takes more and neither idles at the end of the step.
//    Each group sums its units in the unit tree's aligned blocks (TreeAccumulator), each team's
//    blocks are added into the tree's blocks of its range, and those, in unit order, are what
//    this runner emits. Combining aligned blocks in the tree gives the same bytes however the
//    range was cut (UnitTree), so neither G nor where a pair met changes a bit;
//  - a group runs a unit's k chunks on k threads (ShardRunner), at most N computing at once
//    (LaneTokens).
// Evaluation shares its unit-sized chunks out over the groups the same way (a chunk's sums do
// not depend on who computed it, so there is nothing to merge).

public final class LaneRunner {
    public let lanes: Int
    public let groups: [ShardRunner]
    private let drivers: LanePool?

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

    /// The groups in teams: pairs (0, 1), (2, 3), … and the last group alone when G is odd,
    /// each team with its contiguous share of `count` units (a pair two shares, a single one).
    static func teams(_ count: Int, groups: Int) -> [(units: Range<Int>, groups: Range<Int>)] {
        let members = stride(from: 0, to: groups, by: 2).map { $0..<min($0 + 2, groups) }
        var shares = 0
        return members.map { team in
            let lower = count * shares / groups
            shares += team.count
            return (lower..<(count * shares / groups), team)
        }
    }

    /// For `count` items numbered from `first`: the teams, and each group's cursor (its team's)
    /// and the end it takes from.
    private func meetings(_ count: Int, first: Int) -> (
        teams: [(units: Range<Int>, groups: Range<Int>)], cursors: [MeetingCursor], ends: [MeetingCursor.End]
    ) {
        let teams = LaneRunner.teams(count, groups: groups.count)
        var cursors = [MeetingCursor]()
        var ends = [MeetingCursor.End]()
        for (units, members) in teams {
            let cursor = MeetingCursor((first + units.lowerBound)..<(first + units.upperBound))
            for group in members {
                cursors.append(cursor)
                ends.append(group == members.lowerBound ? .left : .right)
            }
        }
        return (teams, cursors, ends)
    }

    /// As ShardRunner.train: units [firstUnit, firstUnit + unitCount), blocks emitted in unit order.
    public func train(
        step: Int, epoch: Int, firstUnit: Int, unitCount: Int, indices: UnsafeBufferPointer<Int32>,
        emit: (UnitBlock, UnsafeMutablePointer<Float>) throws -> Void
    ) throws -> UnitOutcomes {
        guard let drivers, unitCount > 1 else {
            return try groups[0].train(step: step, epoch: epoch, firstUnit: firstUnit, unitCount: unitCount, indices: indices, emit: emit)
        }
        precondition(indices.count == unitCount * unitSize, "shard has \(indices.count) indices for \(unitCount) units of \(unitSize)")
        // The two groups of a team take its units from either end until they meet.
        let (teams, cursors, ends) = meetings(unitCount, first: firstUnit)
        var results = [(blocks: [(UnitBlock, UnsafeMutablePointer<Float>)], outcomes: UnitOutcomes)](
            repeating: ([], UnitOutcomes()), count: groups.count)
        try results.withUnsafeMutableBufferPointer { results in
            try drivers.run(count: groups.count) { group in
                results[group] = try groups[group].train(
                    step: step, epoch: epoch, taking: cursors[group], from: ends[group], firstUnit: firstUnit, indices: indices)
            }
        }
        // Each team's blocks added into the tree's blocks of its whole range — the additions the
        // reduction would make next, in its order — so where its groups met does not show.
        var merged = UnitOutcomes()
        for (units, members) in teams {
            var sums = [UnitBlock: UnsafeMutablePointer<Float>]()
            for group in members {
                merged.append(results[group].outcomes)
                for (block, sum) in results[group].blocks { sums[block] = sum }
            }
            for (block, sum) in try UnitTree.blockSums(
                first: firstUnit + units.lowerBound, count: units.count, sums: sums, length: network.parameterCount) {
                try emit(block, sum)
            }
        }
        return merged
    }

    /// As ShardRunner.evaluate, the unit-sized evaluation chunks shared out over the groups as
    /// the units of a step are: the two groups of a pair take them from either end, as many at a
    /// time as a group has replicas. A chunk's sums do not depend on who computed it.
    public func evaluate(
        split: Split, indices: UnsafeBufferPointer<Int32>, shouldStop: () -> Bool
    ) throws -> (lossSums: [Double], correct: [Int]) {
        let chunks = (indices.count + unitSize - 1) / unitSize
        guard let drivers, chunks > 1 else { return try groups[0].evaluate(split: split, indices: indices, shouldStop: shouldStop) }
        let (_, cursors, ends) = meetings(chunks, first: 0)
        var lossSums = [Double](repeating: 0, count: chunks)
        var correct = [Int](repeating: 0, count: chunks)
        let unitSize = self.unitSize
        try lossSums.withUnsafeMutableBufferPointer { lossSums in
            try correct.withUnsafeMutableBufferPointer { correct in
                try drivers.run(count: groups.count) { group in
                    while let taken = cursors[group].take(from: ends[group], upTo: groups[group].chunkCount) {
                        let slice = UnsafeBufferPointer(
                            rebasing: indices[(taken.lowerBound * unitSize)..<min(taken.upperBound * unitSize, indices.count)])
                        let result = try groups[group].evaluate(split: split, indices: slice, shouldStop: shouldStop)
                        for (offset, chunk) in taken.enumerated() {
                            lossSums[chunk] = result.lossSums[offset]
                            correct[chunk] = result.correct[offset]
                        }
                    }
                }
            }
        }
        return (lossSums, correct)
    }

    public func evaluate(split: Split, indices: UnsafeBufferPointer<Int32>) -> (lossSums: [Double], correct: [Int]) {
        // Never stopped, so never throws.
        (try? evaluate(split: split, indices: indices, shouldStop: { false })) ?? ([], [])
    }
}
