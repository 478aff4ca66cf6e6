import Engine

// The fixed reduction tree that makes a step's gradient independent of how many processes
// computed it (DESIGN §4). A step's U work units are the leaves of a binary tree over unit
// indices; every node is an aligned range [a, a + 2^k) and its sum is left + right, an empty
// right child (past U) contributing nothing. A process given a contiguous range of units
// splits it into maximal aligned blocks, sums each in tree order and returns one partial sum
// per block; `combine` then rebuilds the root in the same tree. 1, 2, 3 or 7 processes — or a
// shard re-issued after a failure — give the same bytes.

public struct UnitBlock: Sendable, Equatable, Hashable {
    public var first: Int
    public var count: Int  // a power of two; `first` is a multiple of it
    public init(first: Int, count: Int) {
        self.first = first
        self.count = count
    }
}

public enum UnitTree {
    /// Maximal aligned blocks covering units [first, first + count), in order.
    public static func blocks(first: Int, count: Int) -> [UnitBlock] {
        var result = [UnitBlock]()
        var start = first
        let end = first + count
        while start < end {
            var size = 1
            while start % (size * 2) == 0 && start + size * 2 <= end { size *= 2 }
            result.append(UnitBlock(first: start, count: size))
            start += size
        }
        return result
    }

    /// Depth of the tree over `units` leaves (number of levels below the root).
    public static func depth(units: Int) -> Int {
        var depth = 0
        while (1 << depth) < units { depth += 1 }
        return depth
    }

    /// Whether `blocks` are aligned nodes of the tree (a power-of-two count starting at a
    /// multiple of it) that cover [first, first + count) in order, without gaps or overlaps.
    public static func isAlignedPartition(_ blocks: [UnitBlock], first: Int, count: Int) -> Bool {
        var next = first
        for block in blocks {
            guard block.first == next, block.count > 0, block.count & (block.count - 1) == 0,
                  block.first % block.count == 0 else { return false }
            next += block.count
        }
        return next == first + count
    }

    /// Combine block sums into the root sum of the tree over `units` leaves, writing it to
    /// `output`. `sums` maps each block to its buffer; blocks must tile [0, units).
    /// Buffers of `sums` may be overwritten (they serve as scratch).
    public static func combine(
        units: Int, sums: [UnitBlock: UnsafeMutablePointer<Float>], length: Int,
        into output: UnsafeMutablePointer<Float>
    ) throws {
        let root = UnitBlock(first: 0, count: 1 << depth(units: units))
        guard let result = try node(root, units: units, sums: sums, length: length) else {
            throw ReductionError.missingUnits(root.first, units)
        }
        if result != output { output.update(from: result, count: length) }
    }

    /// The sum of aligned node `block` from `sums`, an aligned partition of units at least as
    /// fine as `block` over it, combined exactly as `combine` would inside the tree (so an
    /// aggregator's node sum, handed to the root, leaves the root's bytes unchanged). Returns
    /// one of the buffers of `sums` (they serve as scratch).
    public static func nodeSum(
        _ block: UnitBlock, sums: [UnitBlock: UnsafeMutablePointer<Float>], length: Int
    ) throws -> UnsafeMutablePointer<Float> {
        guard let result = try node(block, units: block.first + block.count, sums: sums, length: length) else {
            throw ReductionError.missingUnits(block.first, block.first + block.count)
        }
        return result
    }

    /// The maximal aligned blocks of [first, first + count), each summed by `nodeSum` from
    /// `sums`, a finer aligned partition of that range (its buffers serve as scratch).
    public static func blockSums(
        first: Int, count: Int, sums: [UnitBlock: UnsafeMutablePointer<Float>], length: Int
    ) throws -> [(block: UnitBlock, sum: UnsafeMutablePointer<Float>)] {
        try blocks(first: first, count: count).map { block in (block, try nodeSum(block, sums: sums, length: length)) }
    }

    private static func node(
        _ block: UnitBlock, units: Int, sums: [UnitBlock: UnsafeMutablePointer<Float>], length: Int
    ) throws -> UnsafeMutablePointer<Float>? {
        if block.first >= units { return nil }
        if let sum = sums[block] { return sum }
        guard block.count > 1 else { throw ReductionError.missingUnits(block.first, block.first + 1) }
        let half = block.count / 2
        guard let left = try node(UnitBlock(first: block.first, count: half), units: units, sums: sums, length: length) else {
            return nil
        }
        if let right = try node(UnitBlock(first: block.first + half, count: half), units: units, sums: sums, length: length) {
            addInPlace(left, right, length)
        }
        return left
    }

    /// `combine` for read-only leaves (e.g. gradients still in the received messages): each
    /// sum that a leaf would have served as scratch for is formed out of place, `output` for the
    /// root's leftmost chain and a buffer from `scratch` elsewhere, so no leaf is copied first.
    /// out = l + r rounds exactly as l += r, so the bytes are `combine`'s. `scratch` is called
    /// at most once per leaf, for a fresh buffer that overlaps neither `output` nor the leaves.
    public static func combine(
        units: Int, leaves: [UnitBlock: UnsafePointer<Float>], length: Int,
        scratch: () -> UnsafeMutablePointer<Float>, into output: UnsafeMutablePointer<Float>
    ) throws {
        let root = UnitBlock(first: 0, count: 1 << depth(units: units))
        guard let result = try node(root, units: units, leaves: leaves, length: length, destination: output, scratch: scratch) else {
            throw ReductionError.missingUnits(root.first, units)
        }
        if result.value != UnsafePointer(output) { output.update(from: result.value, count: length) }
    }

    /// A node's sum over read-only leaves: `value` is a leaf itself, or `writable` — the buffer
    /// the sum was formed in, `destination` when one was given.
    private static func node(
        _ block: UnitBlock, units: Int, leaves: [UnitBlock: UnsafePointer<Float>], length: Int,
        destination: UnsafeMutablePointer<Float>?, scratch: () -> UnsafeMutablePointer<Float>
    ) throws -> (value: UnsafePointer<Float>, writable: UnsafeMutablePointer<Float>?)? {
        if block.first >= units { return nil }
        if let leaf = leaves[block] { return (leaf, nil) }
        guard block.count > 1 else { throw ReductionError.missingUnits(block.first, block.first + 1) }
        let half = block.count / 2
        guard let left = try node(UnitBlock(first: block.first, count: half), units: units, leaves: leaves, length: length,
                                  destination: destination, scratch: scratch) else { return nil }
        guard let right = try node(UnitBlock(first: block.first + half, count: half), units: units, leaves: leaves,
                                   length: length, destination: nil, scratch: scratch) else { return left }
        if let writable = left.writable {
            addInPlace(writable, right.value, length)
            return left
        }
        let sum = destination ?? scratch()
        add(left.value, right.value, into: sum, length)
        return (UnsafePointer(sum), sum)
    }

    /// out = a + b elementwise (the rounding of `addInPlace`).
    @inline(__always)
    private static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { out[i] = a[i] + b[i] }
    }

    /// a += b elementwise (one rounding per element, the same on every machine of a kind).
    @inline(__always)
    public static func addInPlace(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) {
        for i in 0..<count { a[i] += b[i] }
    }
}

public enum ReductionError: Error, CustomStringConvertible {
    case missingUnits(Int, Int)
    public var description: String {
        switch self {
        case .missingUnits(let from, let to): return "reduction is missing the results of units \(from)..<\(to)"
        }
    }
}
