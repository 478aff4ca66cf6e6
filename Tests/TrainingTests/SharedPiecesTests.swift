import Engine
import Foundation
import Testing
import Training

// A chunk waiting at its unit's meeting takes pieces of the batches the other chunks post
// (SharedPieces.swift): every piece must run exactly once, a waiting chunk must really take
// some, and the result must be the same bits as when each chunk runs its own.

struct SharedPiecesTests {
    @Test func aChunkWaitingAtTheMeetingTakesPiecesOfTheOthersBatchAndEveryPieceRunsOnce() throws {
        let pieces = SharedPieces(participants: 2)
        let barrier = ChunkBarrier(participants: 2, tokens: LaneTokens(count: 2), pieces: pieces)
        let pool = LanePool(threads: 2, name: "test-pieces")
        let count = 16
        let record = PieceRecord(count: count)
        try pool.run(count: 2) { chunk in
            if chunk == 1 {
                // Nothing of its own to do: it waits at the meeting, where it can help.
                barrier.wait(participant: 1)
                return
            }
            let poster = Thread.current
            pieces.run(participant: 0, count: count) { piece in
                record.ran(piece, elsewhere: Thread.current != poster)
                guard piece == 0 else { return }
                // The poster's first piece holds it until the waiting chunk has taken one
                // (or 10 s have gone by, and the expectation below fails).
                let deadline = Date().addingTimeInterval(10)
                while record.runElsewhere == 0 && Date() < deadline { usleep(100) }
            }
            barrier.wait(participant: 0)
        }
        #expect(record.runs == Array(repeating: 1, count: count))
        #expect(record.runElsewhere >= 1, "the waiting chunk took no piece")
        #expect(pieces.piecesTaken == record.runElsewhere)
    }

    @Test func aBatchOfOnePieceOrNoneRunsOnThePostingChunk() {
        let pieces = SharedPieces(participants: 2)
        var ran: [Int] = []
        pieces.run(participant: 1, count: 0) { ran.append($0) }
        pieces.run(participant: 1, count: 1) { ran.append($0) }
        #expect(ran == [0])
        #expect(!pieces.helpOnce(except: 0))
    }

    /// The Winograd DenseNet's chunks, one of them lagging at every meeting so the other waits
    /// and takes its GEMMs: the same gradient bits as chunks that each run their own. Whether
    /// the waiting chunk gets a core in time to take a piece is up to the scheduler (the
    /// suite runs tests in parallel), so each lagging chunk gets up to 20 tries to see one taken,
    /// with the bits checked on every try.
    @Test func chunksTakingEachOthersGEMMsComputeTheSameBitsAsChunksThatDoNot() throws {
        let own = try SharedKernelSlotsTests.gradients(shared: true, late: nil)
        #expect(own[0].contains { $0 != 0 } && own[1].contains { $0 != 0 })
        for lagging in [0, 1] {
            var taken = 0
            for _ in 0..<20 where taken == 0 {
                let pieces = SharedPieces(participants: 2)
                let taking = try SharedKernelSlotsTests.gradients(shared: true, late: nil, pieces: pieces, lagging: lagging)
                #expect(taking == own, "lagging chunk \(lagging)")
                if taking != own { return }
                taken = pieces.piecesTaken
            }
            #expect(taken > 0, "lagging chunk \(lagging): the other chunk took no piece in 20 tries")
        }
    }
}

/// How often each piece ran, and how many ran on a thread other than the poster's.
private final class PieceRecord: @unchecked Sendable {
    // Unchecked Sendable: every field is used under `lock`.
    private let lock = NSLock()
    private var counts: [Int]
    private var elsewhere = 0

    init(count: Int) { counts = Array(repeating: 0, count: count) }

    func ran(_ piece: Int, elsewhere: Bool) {
        lock.lock()
        counts[piece] += 1
        if elsewhere { self.elsewhere += 1 }
        lock.unlock()
    }

    var runs: [Int] {
        lock.lock()
        defer { lock.unlock() }
        return counts
    }

    var runElsewhere: Int {
        lock.lock()
        defer { lock.unlock() }
        return elsewhere
    }
}
