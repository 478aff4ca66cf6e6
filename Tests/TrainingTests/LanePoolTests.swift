import Foundation
import Testing
import Training

// LanePool: `run` gives job i to thread i; `runSharingCaller` runs job 0 on the calling thread
// and the others on the pool at the same time, calls its hooks around the wait, and rethrows.
@Suite struct LanePoolTests {
    final class Record: @unchecked Sendable {
        let lock = NSLock()
        var threads: [Int: pthread_t] = [:]
        func note(_ index: Int) {
            lock.lock()
            threads[index] = pthread_self()
            lock.unlock()
        }
    }

    struct Failure: Error, Equatable { var index: Int }

    @Test func runSharingCallerRunsJobZeroHereAndTheRestOnThePool() throws {
        let pool = LanePool(threads: 2, name: "test-pool")
        let caller = pthread_self()
        let record = Record()
        var events: [String] = []
        try pool.runSharingCaller(count: 3, { record.note($0) },
                                  beforeWaiting: { events.append("before") }, afterWaiting: { events.append("after") })
        #expect(record.threads[0] == caller)
        let others = [record.threads[1], record.threads[2]].compactMap { $0 }
        #expect(others.count == 2 && !others.contains(caller) && others[0] != others[1])
        #expect(events == ["before", "after"])
        // Reusable, and one job runs on the caller alone.
        let again = Record()
        try pool.runSharingCaller(count: 1, { again.note($0) })
        #expect(again.threads.count == 1 && again.threads[0] == caller)
    }

    @Test func runSharingCallerRethrowsAndStillWaitsForEveryJob() {
        let pool = LanePool(threads: 1, name: "test-pool")
        let record = Record()
        #expect(throws: Failure(index: 1)) {
            try pool.runSharingCaller(count: 2, { index in
                if index == 1 {
                    Thread.sleep(forTimeInterval: 0.05)
                    record.note(index)
                    throw Failure(index: 1)
                }
                record.note(index)
            })
        }
        #expect(record.threads.count == 2)  // the pool's job finished before the call returned
    }
}

// Polling (SpinWait) only changes when a waiting lane notices it may go on: a polling pool must
// hand out and wait for jobs exactly as a sleeping one does, however the threads interleave. And
// the chunk barrier sums in chunk order whatever order the chunks arrive in.
@Suite struct LanePollingTests {
    final class Counts: @unchecked Sendable {
        let lock = NSLock()
        var perJob: [Int]
        init(_ count: Int) { perJob = Array(repeating: 0, count: count) }
        func add(_ index: Int) {
            lock.lock()
            perJob[index] += 1
            lock.unlock()
        }
    }

    @Test(arguments: [false, true])
    func manyQuickRunsEachRunEveryJobOnceAndWaitForIt(polls: Bool) throws {
        let pool = LanePool(threads: 2, name: "test-poll", polls: polls)
        #expect(pool.polls == polls)
        let counts = Counts(3)
        for round in 1...2000 {
            if round % 2 == 0 {
                try pool.run(count: 2) { counts.add($0) }
            } else {
                try pool.runSharingCaller(count: 3, { counts.add($0) })
            }
            // Every job of this round is done when the call returns.
            counts.lock.lock()
            let snapshot = counts.perJob
            counts.lock.unlock()
            #expect(snapshot[0] == round && snapshot[1] == round && snapshot[2] == (round + 1) / 2)
            if snapshot[0] != round { break }
        }
    }

    @Test func theChunkBarrierSumsInChunkOrderEveryGenerationWhateverTheArrivalOrder() throws {
        let chunks = 3
        let barrier = ChunkBarrier(participants: chunks, tokens: LaneTokens(count: chunks))
        let pool = LanePool(threads: chunks, name: "test-barrier")
        let calls = 400
        // Values whose double sum depends on the order of addition, so that only the sum in
        // chunk order 0, 1, 2 matches the one computed here.
        func value(_ chunk: Int, _ call: Int) -> Double { [1e16, 1.0, -1e16][(chunk + call) % 3] * Double(call % 7 + 1) }
        var totals = Array(repeating: Array(repeating: 0.0, count: calls), count: chunks)
        try totals.withUnsafeMutableBufferPointer { totals in
            try pool.run(count: chunks) { chunk in
                var generator = SystemRandomNumberGenerator()
                for call in 0..<calls {
                    // Now and then a chunk arrives late.
                    if Int.random(in: 0..<10, using: &generator) == 0 { usleep(UInt32.random(in: 0..<3000, using: &generator)) }
                    var values = [value(chunk, call)]
                    barrier.allReduceSum(&values, count: 1, participant: chunk)
                    totals[chunk][call] = values[0]
                }
            }
        }
        for call in 0..<calls {
            var expected = 0.0
            for chunk in 0..<chunks { expected += value(chunk, call) }
            #expect((0..<chunks).allSatisfy { totals[$0][call] == expected }, "call \(call): \((0..<chunks).map { totals[$0][call] }) against \(expected)")
        }
    }
}
