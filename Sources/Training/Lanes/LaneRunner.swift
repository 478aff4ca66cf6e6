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
// Evaluation shares its unit-sized chunks out over the groups the same way.

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

    /// `count` items cut into `parts` contiguous ranges, the first ones one longer.
    static func ranges(_ count: Int, parts: Int) -> [Range<Int>] {
        (0..<parts).map { part in (count * part / parts)..<(count * (part + 1) / parts) }.filter { !$0.isEmpty }
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
        let teams = LaneRunner.teams(unitCount, groups: groups.count)
        var cursors = [MeetingCursor]()
        var team = [Int](repeating: 0, count: groups.count)
        for (index, (units, members)) in teams.enumerated() {
            cursors.append(MeetingCursor((firstUnit + units.lowerBound)..<(firstUnit + units.upperBound)))
            for group in members { team[group] = index }
        }
        var results = [(blocks: [(UnitBlock, UnsafeMutablePointer<Float>)], outcomes: UnitOutcomes)](
            repeating: ([], UnitOutcomes()), count: groups.count)
        try results.withUnsafeMutableBufferPointer { results in
            try drivers.run(count: groups.count) { group in
                let members = teams[team[group]].groups
                results[group] = try groups[group].train(
                    step: step, epoch: epoch, taking: cursors[team[group]], from: group == members.lowerBound ? .left : .right,
                    firstUnit: firstUnit, indices: indices)
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
            for block in UnitTree.blocks(first: firstUnit + units.lowerBound, count: units.count) {
                try emit(block, try UnitTree.nodeSum(block, sums: sums, length: network.parameterCount))
            }
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
