// Transformed Winograd kernels shared by the chunks of one unit (ChunkCollective.swift).
//
// Every chunk of a unit convolves with the same weights, so each chunk transforming the whole
// kernel set U = G g Gᵀ for itself, once in the forward pass and once more for the input
// gradient, repeats the same work k times. With these slots each chunk transforms a fixed
// share of the channel pairs into one buffer and meets the others at the collective; then all
// of them read the whole U. The transform is elementwise, so U's bits do not depend on who
// computed which pair, and the GEMMs that read it keep their shapes: the result is unchanged.
//
// Two slots, used alternately: use s (a layer's forward or input-gradient pass) writes slot
// s mod 2. A chunk can only start writing for use s + 2 after it passed the meeting of use
// s + 1, which every chunk reaches only once done reading use s's slot. Conv2d numbers its
// uses from the layer's place among the network's Winograd layers (`winogradOrdinal`): the
// forward pass of the j-th is use j and its input gradient use j + 1, so consecutive uses in
// a pass, and the last of the forward pass and the first of the backward pass, alternate.

public final class SharedKernelSlots: @unchecked Sendable {
    // Unchecked Sendable: chunks write disjoint pair ranges of a slot, then meet at the unit's
    // collective before any of them reads it (see above).
    /// Floats of each slot: the largest 16·O·C of the network's Winograd layers.
    public let capacity: Int
    private let slots: [FloatBuffer]

    public init(capacity: Int) {
        precondition(capacity > 0, "shared kernel slots need a positive capacity")
        self.capacity = capacity
        slots = [FloatBuffer(count: capacity), FloatBuffer(count: capacity)]
    }

    /// The slot of use `use` (alternating between the two).
    func slot(forUse use: Int) -> UnsafeMutablePointer<Float> { slots[use & 1].pointer }
}
