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
