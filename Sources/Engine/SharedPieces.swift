#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

// Work the chunks of one unit may take from each other (ChunkCollective.swift). The chunks of a
// unit have equal, fixed work, and they meet at every batch norm; on a shared host one vCPU
// often runs slower for a moment, and then the other chunk's lane sits idle at the meeting.
// With these boards a chunk posts a batch of independent pieces — the 16 GEMMs of a Winograd
// group, each writing its own output — and takes them itself one by one, while a chunk waiting
// at a meeting takes what is left. Every piece is the same call with the same shapes whoever
// runs it, and a batch is finished before its chunk goes on, so the bits never depend on who
// ran which piece.
//
// Each chunk has a board: one 64-bit word packs the batch's serial number, its piece count and
// the next unclaimed piece, so claiming is one compare-and-swap that also proves the batch is
// still the one posted (a batch's chunk waits until every piece it did not run is done before
// it posts the next). The serial number keeps the word's top 24 bits: a taker would have to
// stall between reading the word and its swap while 2^24 batches went by to be fooled.

public final class SharedPieces: @unchecked Sendable {
    // Unchecked Sendable: a board's body is written by its chunk before it posts the batch
    // (a releasing store of `state`) and read by a taker only after its claim succeeded (an
    // acquiring compare-and-swap of `state`); the chunk clears it only once every claimed
    // piece has been reported done.
    private final class Board: @unchecked Sendable {
        let state = Atomic<UInt64>(0)
        /// Pieces of the current batch that other chunks ran and finished.
        let takenDone = Atomic<Int>(0)
        var body: ((Int) -> Void)?
        var serial: UInt64 = 0
    }

    private static let countBits: UInt64 = 20
    private static let fieldMask: UInt64 = (1 << countBits) - 1
    /// Most pieces in one batch.
    public static let maximumPieces = Int(fieldMask)

    public let participants: Int
    private let boards: [Board]
    private let taken = Atomic<Int>(0)

    /// Pieces run by a chunk other than the one that posted them, so far.
    public var piecesTaken: Int { taken.load(ordering: .relaxed) }

    public init(participants: Int) {
        precondition(participants >= 1, "shared pieces need at least one participant")
        self.participants = participants
        boards = (0..<participants).map { _ in Board() }
    }

    /// Runs `body(i)` for i in 0..<count, some of them perhaps on other chunks' threads (those
    /// waiting in `helpOnce`), and returns when all are done. The pieces must be independent:
    /// each writes its own outputs and reads nothing another piece of the batch writes.
    public func run(participant: Int, count: Int, _ body: (Int) -> Void) {
        precondition(count <= Self.maximumPieces, "\(count) pieces in one batch (at most \(Self.maximumPieces))")
        guard count > 1 else {
            if count == 1 { body(0) }
            return
        }
        let board = boards[participant]
        withoutActuallyEscaping(body) { body in
            board.body = body
            board.takenDone.store(0, ordering: .relaxed)
            board.serial &+= 1
            board.state.store(Self.pack(serial: board.serial, count: count, next: 0), ordering: .releasing)
            var ran = 0
            while let piece = Self.claim(board) {
                body(piece)
                ran += 1
            }
            // The pieces others claimed may still be running: their outputs are this batch's.
            let taken = count - ran
            var polls = 0
            while board.takenDone.load(ordering: .acquiring) < taken {
                polls += 1
                if polls > 64 { sched_yield() }
            }
            board.body = nil
        }
    }

    /// Takes one piece of another chunk's posted batch, if any is left, runs it and returns true.
    public func helpOnce(except participant: Int) -> Bool {
        for offset in 1..<max(participants, 1) {
            let board = boards[(participant + offset) % participants]
            guard let piece = Self.claim(board) else { continue }
            Self.runTaken(board, piece)
            board.takenDone.add(1, ordering: .releasing)
            taken.add(1, ordering: .relaxed)
            return true
        }
        return false
    }

    /// Kept out of line so the reference to the body is dropped before the piece is reported
    /// done (the posting chunk then checks that its body did not escape).
    @inline(never)
    private static func runTaken(_ board: Board, _ piece: Int) {
        board.body?(piece)
    }

    private static func claim(_ board: Board) -> Int? {
        var state = board.state.load(ordering: .acquiring)
        while true {
            let next = Int(state & fieldMask)
            let count = Int((state >> countBits) & fieldMask)
            guard next < count else { return nil }
            let (exchanged, original) = board.state.compareExchange(
                expected: state, desired: state + 1, ordering: .acquiringAndReleasing)
            if exchanged { return next }
            state = original
        }
    }

    private static func pack(serial: UInt64, count: Int, next: Int) -> UInt64 {
        (serial << (2 * countBits)) | (UInt64(count) << countBits) | UInt64(next)
    }
}
