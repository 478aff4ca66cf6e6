import Data
import Engine
import Foundation
import Testing
import TestSupport
import Training

/// A lane group that takes units from either end of a range (MeetingCursor) sums them with a
/// TreeAccumulator: its blocks must be the unit tree's maximal aligned blocks of the units it
/// took, each with the tree's bytes, wherever the range starts and ends and from either end.
@Suite struct TreeAccumulatorTests {
    static let length = 131
    static let leaves = TreeReference.leaves(units: 24, length: length, magnitudeStep: 991, seed: 100)

    static func treeSum(_ block: UnitBlock) -> [Float] { TreeReference.sum(block, leaves: leaves) }

    @Test(arguments: [MeetingCursor.End.left, .right])
    func everyRangeFromEitherEndGivesTheTreesBlocksAndBytes(end: MeetingCursor.End) {
        let accumulator = TreeAccumulator(length: Self.length)
        let gradient = FloatBuffer(count: Self.length)  // the caller's buffer, overwritten per unit
        for first in 0..<20 {
            for count in 1...(24 - first) {
                accumulator.begin(from: end)
                let order = end == .left ? Array(first..<(first + count)) : (first..<(first + count)).reversed()
                for unit in order {
                    accumulator.settle()
                    gradient.pointer.update(from: Self.leaves[unit], count: Self.length)
                    accumulator.add(unit: unit, gradient: gradient.pointer)
                }
                let blocks = accumulator.blocks
                #expect(blocks.map(\.0) == UnitTree.blocks(first: first, count: count), "[\(first), \(first + count)) from \(end)")
                for (block, sum) in blocks {
                    let bits = Array(UnsafeBufferPointer(start: sum, count: Self.length)).map(\.bitPattern)
                    #expect(bits == Self.treeSum(block).map(\.bitPattern), "block \(block) of [\(first), \(first + count)) from \(end)")
                }
            }
        }
        // Buffers are reused from range to range: at most two per level and the one being formed.
        #expect(accumulator.bufferCount <= 2 * UnitTree.depth(units: 24) + 1)
    }

    @Test func aLoneUnitIsNotCopiedAndALeafThatMergesAtOnceIsAddedWhereItLies() {
        let accumulator = TreeAccumulator(length: Self.length)
        let gradient = FloatBuffer(Self.leaves[5])
        accumulator.begin(from: .left)
        accumulator.add(unit: 5, gradient: gradient.pointer)
        #expect(accumulator.blocks.map(\.1) == [gradient.pointer])
        #expect(accumulator.bufferCount == 0)
        // Units 4 and 5 from the right: 5 is copied out before 4 is computed, 4 is added into it.
        accumulator.begin(from: .right)
        accumulator.add(unit: 5, gradient: gradient.pointer)
        accumulator.settle()
        gradient.pointer.update(from: Self.leaves[4], count: Self.length)
        accumulator.add(unit: 4, gradient: gradient.pointer)
        #expect(accumulator.bufferCount == 1)
        #expect(accumulator.blocks.map(\.0) == [UnitBlock(first: 4, count: 2)])
    }

    @Test func twoTakersShareARangeAndEveryUnitIsTakenOnce() {
        let cursor = MeetingCursor(3..<10)
        var taken = [Int]()
        while let left = cursor.take(from: .left) {
            taken.append(left)
            if let right = cursor.take(from: .right) { taken.append(right) }
        }
        #expect(taken == [3, 9, 4, 8, 5, 7, 6])
        #expect(cursor.take(from: .right) == nil)
        // Several at a time (a group with several replicas), never past the other end.
        let chunks = MeetingCursor(0..<5)
        #expect(chunks.take(from: .right, upTo: 2) == 3..<5)
        #expect(chunks.take(from: .left, upTo: 2) == 0..<2)
        #expect(chunks.take(from: .right, upTo: 2) == 2..<3)
        #expect(chunks.take(from: .left, upTo: 2) == nil)
    }
}

/// Two lanes take a step's units from either end and meet wherever the faster one reaches: the
/// bits are those of one lane wherever they meet.
@Suite(.serialized) struct MeetingLanesTests {
    /// A ghost-BN DenseNet step of 8 units of 16; the `slow` units wait 60 ms before their
    /// forward pass (a test hook), so a lane taking them falls behind.
    static func step(lanes: Int, slow: (@Sendable (Int) -> Bool)? = nil) throws -> (gradient: [UInt32], loss: UInt64, statistics: [UInt32], runner: LaneRunner) {
        var config = LaneTests.config(chunkSize: 16)
        config.batchSize = 128
        let data = try DatasetLoader.load(config)
        let network = try ModelFactory.make(config, inputShape: data.shape, classes: data.classes)
        network.initializeParameters(seed: 11)
        let runner = try LaneRunner(network: network, data: data, config: config, lanes: lanes)
        if let slow {
            runner.inputHook = { _, unit, _ in if slow(unit) { usleep(60_000) } }
        }
        let executor = LocalExecutor(runner: runner, unitsPerStep: config.unitsPerStep)
        let schedule = try StepSchedule(samples: data.train.count, batchSize: config.batchSize, epochs: 1, seed: config.seed)
        let task = StepTask(step: 0, epoch: 0, indices: Array(schedule.batch(step: 0, permutation: schedule.permutation(epoch: 0))))
        let gradient = FloatBuffer(count: network.parameterCount)
        let statistics = try executor.computeStep(task, parameters: network.parameters, gradientSum: gradient)
        return (gradient.toArray().map(\.bitPattern), statistics.lossSum.bitPattern, statistics.batchStatistics.map(\.bitPattern), runner)
    }

    @Test func theFasterLaneTakesMoreUnitsAndTheBitsStayTheSame() throws {
        let reference = try Self.step(lanes: 1)
        #expect(reference.runner.groups[0].lastUnits == Array(0..<8))
        // The right lane's units (from 7 down) are slow: the left lane passes the middle.
        let lagging = try Self.step(lanes: 2, slow: { $0 >= 4 })
        let left = lagging.runner.groups[0].lastUnits
        let right = lagging.runner.groups[1].lastUnits
        #expect(left.count > 4, "left lane took \(left), right lane \(right)")
        #expect(left == Array(0..<left.count) && right == Array((left.count..<8).reversed()))
        #expect(lagging.gradient == reference.gradient)
        #expect(lagging.loss == reference.loss)
        #expect(lagging.statistics == reference.statistics)
        // And the other way round: slow units on the left, the right lane passes the middle.
        let mirrored = try Self.step(lanes: 2, slow: { $0 < 4 })
        #expect(mirrored.runner.groups[1].lastUnits.count > 4, "right lane took \(mirrored.runner.groups[1].lastUnits)")
        #expect(mirrored.gradient == reference.gradient)
        #expect(mirrored.statistics == reference.statistics)
        // Evaluation: the pair takes chunks from either end; each chunk's sums are one lane's.
        let split = try DatasetLoader.load(LaneTests.config(chunkSize: 16)).train
        let samples = (0..<min(200, split.count)).map { Int32($0) }
        let whole = samples.withUnsafeBufferPointer { reference.runner.evaluate(split: .train, indices: $0) }
        for lanes in [2, 3] {
            let runner = try Self.step(lanes: lanes).runner
            let shared = samples.withUnsafeBufferPointer { runner.evaluate(split: .train, indices: $0) }
            #expect(shared.lossSums.map(\.bitPattern) == whole.lossSums.map(\.bitPattern), "\(lanes) lanes")
            #expect(shared.correct == whole.correct, "\(lanes) lanes")
        }
        // A pair and a single group (3 lanes), two pairs (4).
        for lanes in [3, 4] {
            #expect(try Self.step(lanes: lanes, slow: { $0 % 3 == 0 }).gradient == reference.gradient, "\(lanes) lanes")
        }
    }
}
