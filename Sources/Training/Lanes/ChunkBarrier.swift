#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Engine
import Foundation
import Synchronization

// The collective of one unit's chunks (ChunkCollective): each call is a barrier. The last chunk
// to arrive sums every chunk's values in chunk order 0, 1, …, k−1 into a total, and every chunk
// copies the total back — so the sum is the same whichever thread ran which chunk, in which
// order. Totals alternate between two buffers: a chunk still copying the total of call g is
// never overwritten by call g+1's, and call g+2 cannot finish before that chunk arrives at it.
// With `pieces` (every chunk has a core of its own), a chunk that waits does not sleep at once:
// it takes pieces of the batches the others post (SharedPieces) until the last one arrives, and
// sleeps only after a stretch with nothing to take.

public final class ChunkBarrier: ChunkCollective, @unchecked Sendable {
    // Unchecked Sendable: every mutable field is used under `condition`, or is a total buffer
    // that only the last arriver writes while the others wait.
    public let participants: Int
    private let tokens: LaneTokens?
    private let condition = NSCondition()
    private var slots: [UnsafeMutablePointer<Double>?]
    private var arrived = 0
    private var generation = 0
    private var totals: [UnsafeMutablePointer<Double>] = []
    private var capacities = [0, 0]
    /// The pieces waiting chunks take (nil: they sleep), and `generation`, published for them.
    public let pieces: SharedPieces?
    private let publishedGeneration = Atomic<Int>(0)
    /// How long a waiting chunk goes on looking for pieces when there are none before it sleeps.
    public let idleSeconds: Double

    public init(participants: Int, tokens: LaneTokens?, pieces: SharedPieces? = nil, idleSeconds: Double = 0.02) {
        precondition(pieces.map { $0.participants == participants } ?? true, "pieces for another number of chunks")
        self.participants = participants
        self.tokens = tokens
        self.pieces = pieces
        self.idleSeconds = idleSeconds
        slots = Array(repeating: nil, count: participants)
        totals = [UnsafeMutablePointer<Double>.allocate(capacity: 1), UnsafeMutablePointer<Double>.allocate(capacity: 1)]
        capacities = [1, 1]
    }

    deinit { for buffer in totals { buffer.deallocate() } }

    public func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int, participant: Int) {
        condition.lock()
        let parity = generation & 1
        slots[participant] = values
        arrived += 1
        if arrived == participants {
            if capacities[parity] < count {
                totals[parity].deallocate()
                totals[parity] = UnsafeMutablePointer<Double>.allocate(capacity: count)
                capacities[parity] = count
            }
            let total = totals[parity]
            for i in 0..<count { total[i] = 0 }
            for chunk in 0..<participants {
                guard let part = slots[chunk] else { continue }
                for i in 0..<count { total[i] += part[i] }
            }
            arrived = 0
            generation += 1
            publishedGeneration.store(generation, ordering: .releasing)
            condition.broadcast()
            condition.unlock()
            values.update(from: total, count: count)
        } else {
            let mine = generation
            // A chunk that takes pieces keeps its token (it computes while it helps); one that
            // only sleeps gives it back.
            if let pieces {
                condition.unlock()
                help(pieces, participant: participant, until: mine)
                condition.lock()
            } else {
                tokens?.release()
            }
            while generation == mine { condition.wait() }
            let total = totals[parity]
            condition.unlock()
            if pieces == nil { tokens?.acquire() }
            values.update(from: total, count: count)
        }
    }

    /// Takes the others' pieces until generation `mine` is over, or until nothing was left to
    /// take for `idleSeconds`.
    private func help(_ pieces: SharedPieces, participant: Int, until mine: Int) {
        var idleSince = 0.0
        var polls = 0
        while publishedGeneration.load(ordering: .acquiring) == mine {
            if pieces.helpOnce(except: participant) {
                idleSince = 0
                polls = 0
                continue
            }
            polls += 1
            if polls < 64 { continue }
            let now = MonotonicClock.now()
            if idleSince == 0 {
                idleSince = now
            } else if now - idleSince > idleSeconds {
                return
            }
            sched_yield()
        }
    }

    /// Wait until every chunk has arrived (a barrier with nothing to sum).
    public func wait(participant: Int) {
        var nothing = 0.0
        allReduceSum(&nothing, count: 0, participant: participant)
    }
}
