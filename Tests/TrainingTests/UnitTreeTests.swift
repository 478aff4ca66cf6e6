import Engine
import Testing
import TestSupport
import Training

@Suite struct UnitTreeTests {
    @Test func blocksAreMaximalAndAligned() {
        #expect(UnitTree.blocks(first: 0, count: 8) == [UnitBlock(first: 0, count: 8)])
        #expect(UnitTree.blocks(first: 0, count: 6) == [UnitBlock(first: 0, count: 4), UnitBlock(first: 4, count: 2)])
        #expect(UnitTree.blocks(first: 3, count: 6) == [
            UnitBlock(first: 3, count: 1), UnitBlock(first: 4, count: 4), UnitBlock(first: 8, count: 1),
        ])
    }

    /// Leaf values chosen so float addition order matters; the root must not depend on the split.
    @Test func rootIsBitIdenticalForEverySplitIntoContiguousShards() throws {
        let units = 11, length = 257
        let leaves = TreeReference.leaves(units: units, length: length, magnitudeStep: 997)
        func blockSum(_ block: UnitBlock) -> [Float] { TreeReference.sum(block, leaves: leaves) }
        func root(splitting boundaries: [Int]) throws -> [Float] {
            var buffers = [FloatBuffer]()
            var sums = [UnitBlock: UnsafeMutablePointer<Float>]()
            for (start, end) in zip(boundaries, boundaries.dropFirst()) {
                for block in UnitTree.blocks(first: start, count: end - start) {
                    let buffer = FloatBuffer(blockSum(block))
                    buffers.append(buffer)
                    sums[block] = buffer.pointer
                }
            }
            let output = FloatBuffer(count: length)
            try UnitTree.combine(units: units, sums: sums, length: length, into: output.pointer)
            return withExtendedLifetime(buffers) { output.toArray() }
        }
        let whole = try root(splitting: [0, 11])
        #expect(try root(splitting: [0, 5, 11]) == whole)
        #expect(try root(splitting: [0, 3, 7, 11]) == whole)
        #expect(try root(splitting: Array(0...11)) == whole)
        // A running sum in arrival order differs in the last bits: the tree is what makes it stable.
        var running = leaves[0]
        for u in 1..<units { for i in 0..<length { running[i] += leaves[u][i] } }
        #expect(running != whole)
    }

    /// The reducer's combine over read-only leaves (gradients still in their messages) gives the
    /// bytes of the in-place combine for every split, and writes no leaf.
    @Test func readOnlyLeavesGiveTheInPlaceBytesAndStayUnwritten() throws {
        let length = 193
        for units in [1, 2, 5, 11, 32] {
            let leafValues: [[Float]] = (0..<units).map { u in
                let magnitude = Float(1 + 613 * (u % 4))
                return GradientCheck.gaussian(count: length, seed: UInt64(100 + u)).map { $0 * magnitude }
            }
            for boundaries in [[0, units], [0, units / 2, units], Array(0...units)] where Set(boundaries).count == boundaries.count {
                // Each shard's blocks, as a worker would send them: the tree sums of its units.
                var blockValues = [UnitBlock: [Float]]()
                for (start, end) in zip(boundaries, boundaries.dropFirst()) {
                    for block in UnitTree.blocks(first: start, count: end - start) {
                        let buffers = (block.first..<(block.first + block.count)).map { FloatBuffer(leafValues[$0]) }
                        var sums = [UnitBlock: UnsafeMutablePointer<Float>]()
                        for (k, buffer) in buffers.enumerated() { sums[UnitBlock(first: k, count: 1)] = buffer.pointer }
                        let sum = FloatBuffer(count: length)
                        try UnitTree.combine(units: block.count, sums: sums, length: length, into: sum.pointer)
                        blockValues[block] = withExtendedLifetime(buffers) { sum.toArray() }
                    }
                }
                let inPlaceBuffers = blockValues.mapValues { FloatBuffer($0) }
                let expected = FloatBuffer(count: length)
                try UnitTree.combine(units: units, sums: inPlaceBuffers.mapValues(\.pointer), length: length, into: expected.pointer)

                let leafBuffers = blockValues.mapValues { FloatBuffer($0) }
                var scratch = [FloatBuffer]()
                let output = FloatBuffer(count: length)
                try UnitTree.combine(
                    units: units, leaves: leafBuffers.mapValues { UnsafePointer($0.pointer) }, length: length,
                    scratch: { scratch.append(FloatBuffer(count: length)); return scratch.last!.pointer }, into: output.pointer)
                #expect(output.toArray().map(\.bitPattern) == expected.toArray().map(\.bitPattern), "units \(units), split \(boundaries)")
                for (block, buffer) in leafBuffers {
                    #expect(buffer.toArray() == blockValues[block], "leaf \(block) of units \(units), split \(boundaries) was written")
                }
                #expect(scratch.count <= leafBuffers.count)
            }
        }
        let leaf = FloatBuffer(count: 4), output = FloatBuffer(count: 4)
        #expect(throws: ReductionError.self) {
            try UnitTree.combine(units: 4, leaves: [UnitBlock(first: 0, count: 2): UnsafePointer(leaf.pointer)], length: 4,
                                 scratch: { output.pointer }, into: output.pointer)
        }
    }

    @Test func missingShardIsAnError() {
        let buffer = FloatBuffer(count: 4)
        #expect(throws: ReductionError.self) {
            try UnitTree.combine(units: 4, sums: [UnitBlock(first: 0, count: 2): buffer.pointer], length: 4, into: buffer.pointer)
        }
    }
}

struct UnitTreeAlignedPartitionTests {
    @Test func finerAlignedBlocksInOrderArePartitionsAndMisalignedOnesAreNot() {
        func blocks(_ pairs: [(Int, Int)]) -> [UnitBlock] { pairs.map { UnitBlock(first: $0.0, count: $0.1) } }
        #expect(UnitTree.isAlignedPartition(UnitTree.blocks(first: 0, count: 3), first: 0, count: 3))
        #expect(UnitTree.isAlignedPartition(blocks([(0, 1), (1, 1), (2, 1)]), first: 0, count: 3))  // two lane groups
        #expect(!UnitTree.isAlignedPartition(blocks([(0, 1), (1, 2)]), first: 0, count: 3))  // [1, 3) not aligned
        #expect(!UnitTree.isAlignedPartition(blocks([(0, 2)]), first: 0, count: 3))  // a gap
        #expect(!UnitTree.isAlignedPartition(blocks([(2, 1), (0, 2)]), first: 0, count: 3))  // out of order
        #expect(!UnitTree.isAlignedPartition(blocks([(0, 3)]), first: 0, count: 3))  // not a power of two
    }
}
