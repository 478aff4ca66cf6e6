import Engine

// Sums unit gradients that arrive one by one from one end of a contiguous range into the unit
// tree's maximal aligned blocks of the units seen so far — without knowing where the range will
// end (a lane group taking units from a MeetingCursor does not). It works as a binary counter:
// two adjacent blocks of one size whose union is an aligned node are added into that node as
// soon as both are complete, so every node's sum is left + right, formed exactly as
// UnitTree.combine forms it. From the right end the new block is the left child: its sum is
// added into the right one's buffer (b + a has the bits of a + b).
//
// The newest leaf is only borrowed: it stays in the caller's gradient buffer until it merges or
// `settle()` copies it out (before that buffer is overwritten by the next unit), so a range of
// one unit, or a leaf that merges at once, is never copied.

package final class TreeAccumulator {
    private struct Entry {
        var block: UnitBlock
        var sum: UnsafeMutablePointer<Float>
        /// Index into `buffers`, or nil for a borrowed leaf.
        var owned: Int?
    }

    package let length: Int
    private var end: MeetingCursor.End = .left
    /// Blocks in the order they were formed: ascending units from the left, descending from the right.
    private var stack: [Entry] = []
    private var buffers: [FloatBuffer] = []
    private var free: [Int] = []

    package init(length: Int) { self.length = length }

    /// Buffers of `length` floats this accumulator has allocated (they are kept for the next range).
    package var bufferCount: Int { buffers.count }

    /// Starts a new range, taken from `end`.
    package func begin(from end: MeetingCursor.End) {
        self.end = end
        stack.removeAll(keepingCapacity: true)
        free.removeAll(keepingCapacity: true)
        free.append(contentsOf: buffers.indices)
    }

    /// Copies a borrowed leaf into a buffer of its own. Call before the borrowed memory changes.
    package func settle() {
        guard let last = stack.last, last.owned == nil else { return }
        let index = take()
        buffers[index].pointer.update(from: last.sum, count: length)
        stack[stack.count - 1].sum = buffers[index].pointer
        stack[stack.count - 1].owned = index
    }

    /// Adds unit `unit`'s gradient (borrowed until it merges or `settle()`): the unit next to
    /// the previous one, on the side this range grows towards.
    package func add(unit: Int, gradient: UnsafeMutablePointer<Float>) {
        let leaf = UnitBlock(first: unit, count: 1)
        if let last = stack.last {
            precondition(
                end == .left ? last.block.first + last.block.count == unit : unit + 1 == last.block.first,
                "unit \(unit) is not next to the units already summed")
            precondition(last.owned != nil, "settle() before the next unit overwrites the borrowed leaf")
        }
        if let last = stack.last, last.block.count == 1, sibling(last.block, leaf) {
            // The lone leaf is added from where it lies, not copied first.
            UnitTree.addInPlace(last.sum, gradient, length)
            stack[stack.count - 1].block = parent(last.block, leaf)
            mergeCompleted()
        } else {
            stack.append(Entry(block: leaf, sum: gradient, owned: nil))
        }
    }

    /// The blocks summed so far, in unit order, each with its sum (valid until the next `begin`
    /// or `add`).
    package var blocks: [(UnitBlock, UnsafeMutablePointer<Float>)] {
        let ordered = end == .left ? Array(stack) : stack.reversed()
        return ordered.map { ($0.block, $0.sum) }
    }

    /// Whether `a` and `b` (in either order) are the two halves of one aligned node.
    private func sibling(_ a: UnitBlock, _ b: UnitBlock) -> Bool {
        let left = a.first < b.first ? a : b
        let right = a.first < b.first ? b : a
        return left.count == right.count && left.first + left.count == right.first && left.first % (2 * left.count) == 0
    }

    private func parent(_ a: UnitBlock, _ b: UnitBlock) -> UnitBlock {
        UnitBlock(first: min(a.first, b.first), count: a.count + b.count)
    }

    /// Adds the two newest blocks into their parent while they are siblings.
    private func mergeCompleted() {
        while stack.count >= 2 {
            let newer = stack[stack.count - 1]
            let older = stack[stack.count - 2]
            guard sibling(older.block, newer.block), let freed = newer.owned else { return }
            UnitTree.addInPlace(older.sum, newer.sum, length)
            stack.removeLast()
            stack[stack.count - 1].block = parent(older.block, newer.block)
            free.append(freed)
        }
    }

    private func take() -> Int {
        if let index = free.popLast() { return index }
        buffers.append(FloatBuffer(count: length))
        return buffers.count - 1
    }
}
