// In-unit chunks (DESIGN §3 "lanes"): a work unit of G samples may be cut into k fixed chunks
// that run on separate single-threaded lanes, each on its own network replica. Everything a
// layer computes per sample is local to its chunk; what a layer computes over the whole unit —
// batch normalisation's statistics and its backward sums — goes through a collective: every
// chunk hands in its partial sums, and every chunk gets back the total, summed in chunk order
// 0, 1, …, k−1 whatever order the chunks arrived in. The chunking is fixed by the config, so
// the result never depends on how many threads ran the chunks.

/// Sums partial values across the chunks of one unit, in chunk order.
public protocol ChunkCollective: AnyObject, Sendable {
    /// Chunk `participant` hands in `values` (count doubles) and gets back the total over the
    /// unit's chunks, summed in chunk order. Every chunk of the unit must make the same calls
    /// in the same order.
    func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int, participant: Int)
}

/// Where a forward pass sits inside its unit, when the unit is cut into chunks.
public struct ChunkContext: Sendable {
    public var collective: ChunkCollective
    /// This chunk's index, 0..<count.
    public var index: Int
    /// The unit's chunk count.
    public var count: Int
    /// Samples in the unit before this chunk (its rows are [sampleOffset, sampleOffset + batch)).
    public var sampleOffset: Int
    /// Where the unit's chunks share their Winograd layers' transformed kernels (nil: each
    /// chunk transforms its own, SharedKernelSlots.swift).
    public var kernels: SharedKernelSlots?
    /// Where the unit's chunks post batches of pieces the others may take while they wait at
    /// the collective (nil: each chunk runs its own, SharedPieces.swift).
    public var pieces: SharedPieces?

    public init(
        collective: ChunkCollective, index: Int, count: Int, sampleOffset: Int, kernels: SharedKernelSlots? = nil,
        pieces: SharedPieces? = nil
    ) {
        self.collective = collective
        self.index = index
        self.count = count
        self.sampleOffset = sampleOffset
        self.kernels = kernels
        self.pieces = pieces
    }

    /// `body(i)` for i in 0..<count, independent pieces: in a chunk of a unit with shared
    /// pieces, waiting chunks may take some; otherwise (no chunk) all run here, in order.
    static func runPieces(in chunk: ChunkContext?, _ count: Int, _ body: (Int) -> Void) {
        guard let chunk, chunk.count > 1, let pieces = chunk.pieces else {
            for i in 0..<count { body(i) }
            return
        }
        pieces.run(participant: chunk.index, count: count, body)
    }

    /// Waits until every chunk of the unit has arrived here (a collective with nothing to sum).
    func meet() {
        var nothing = 0.0
        collective.allReduceSum(&nothing, count: 0, participant: index)
    }
}
