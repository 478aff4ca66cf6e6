import Foundation
import Synchronization

// A fixed set of long-lived threads for lanes (DESIGN §3). `run(count:)` gives job i to thread
// i and waits for all of them, so a unit's chunks (which meet at barriers, ChunkBarrier) are
// always on distinct threads and can never wait for one another on the same thread. Threads
// only schedule: which thread runs a job never changes what the job computes.
// A pool made with `polls` (its threads and the caller each have a core, and jobs follow each
// other closely, as a split GEMM's pieces do) polls for a moment before sleeping (SpinWait).

public final class LanePool: @unchecked Sendable {
    // Unchecked Sendable: the mutable job slots are handed over under `condition`.
    private final class Shared: @unchecked Sendable {
        let condition = NSCondition()
        var job: ((Int) throws -> Void)?
        var generation = 0
        /// Jobs of the current run (threads 0..<jobCount take one) and how many are not done.
        var jobCount = 0
        var pending = 0
        var errors: [Error] = []
        var stopping = false
        /// `generation` and `pending`, published for threads that poll.
        let publishedGeneration = Atomic<Int>(0)
        let publishedPending = Atomic<Int>(0)
    }

    public let threadCount: Int
    private let shared = Shared()

    /// Whether waiting threads poll before they sleep.
    public let polls: Bool

    public init(threads: Int, name: String, polls: Bool = false) {
        precondition(threads >= 1, "a lane pool needs at least one thread")
        threadCount = threads
        self.polls = polls
        for index in 0..<threads {
            let shared = self.shared
            let thread = Thread {
                var seen = 0
                while true {
                    if polls {
                        _ = SpinWait.poll(for: SpinWait.pollSeconds) {
                            shared.publishedGeneration.load(ordering: .acquiring) != seen
                        }
                    }
                    shared.condition.lock()
                    while shared.generation == seen && !shared.stopping { shared.condition.wait() }
                    if shared.stopping {
                        shared.condition.unlock()
                        return
                    }
                    seen = shared.generation
                    // Only threads with a job take a reference to it, and drop it before
                    // reporting done: `run` checks that its non-escaping body did not escape.
                    var job = index < shared.jobCount ? shared.job : nil
                    shared.condition.unlock()
                    guard job != nil else { continue }
                    var failure: Error?
                    do { try job?(index) } catch { failure = error }
                    job = nil
                    shared.condition.lock()
                    if let failure { shared.errors.append(failure) }
                    shared.pending -= 1
                    shared.publishedPending.store(shared.pending, ordering: .releasing)
                    if shared.pending == 0 { shared.condition.broadcast() }
                    shared.condition.unlock()
                }
            }
            thread.name = "\(name)-\(index)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    deinit {
        shared.condition.lock()
        shared.stopping = true
        shared.condition.broadcast()
        shared.condition.unlock()
    }

    /// Runs `body(i)` for i in 0..<count, job i on thread i, and returns when all are done;
    /// rethrows the first error any job threw. Not reentrant: one `run` at a time.
    public func run(count: Int, _ body: (Int) throws -> Void) throws {
        precondition(count <= threadCount, "\(count) jobs for a pool of \(threadCount) threads")
        guard count > 0 else { return }
        try withoutActuallyEscaping(body) { job in
            hand(count: count, job)
            if let first = collect().first { throw first }
        }
    }

    /// Runs `body(0)` on the calling thread and `body(i)` for i in 1..<count on threads
    /// 0..<count − 1 at the same time, and returns when all are done: one hand-off fewer than
    /// `run`. `beforeWaiting` runs after the caller's own job, before it waits for the others
    /// (e.g. to give back a lane token); `afterWaiting` once they are done. Not reentrant.
    public func runSharingCaller(
        count: Int, _ body: (Int) throws -> Void, beforeWaiting: () -> Void = {}, afterWaiting: () -> Void = {}
    ) throws {
        precondition(count - 1 <= threadCount, "\(count - 1) jobs for a pool of \(threadCount) threads")
        guard count > 1 else {
            if count == 1 { try body(0) }
            return
        }
        try withoutActuallyEscaping(body) { job in
            hand(count: count - 1) { index in try job(index + 1) }
            var ownFailure: Error?
            do { try job(0) } catch { ownFailure = error }
            beforeWaiting()
            let errors = collect()
            afterWaiting()
            if let first = ownFailure ?? errors.first { throw first }
        }
    }

    /// Gives jobs 0..<count of `job` to threads 0..<count and wakes them.
    private func hand(count: Int, _ job: @escaping (Int) throws -> Void) {
        shared.condition.lock()
        shared.job = job
        shared.jobCount = count
        shared.pending = count
        shared.errors = []
        shared.generation += 1
        shared.publishedPending.store(count, ordering: .releasing)
        shared.publishedGeneration.store(shared.generation, ordering: .releasing)
        shared.condition.broadcast()
        shared.condition.unlock()
    }

    /// Waits until every handed job is done, drops the job and returns what they threw.
    private func collect() -> [Error] {
        if polls {
            let shared = self.shared
            _ = SpinWait.poll(for: SpinWait.pollSeconds) { shared.publishedPending.load(ordering: .acquiring) == 0 }
        }
        shared.condition.lock()
        while shared.pending > 0 { shared.condition.wait() }
        shared.job = nil
        let errors = shared.errors
        shared.condition.unlock()
        return errors
    }
}

/// How many lanes may compute at once in this process (`--threads`): jobs hold a token while
/// computing and give it back while they wait at a barrier.
public final class LaneTokens: @unchecked Sendable {
    private let semaphore: DispatchSemaphore
    public let count: Int

    public init(count: Int) {
        self.count = count
        semaphore = DispatchSemaphore(value: count)
    }

    public func acquire() { semaphore.wait() }
    public func release() { semaphore.signal() }

    /// `body` while holding a token.
    public func holding<T>(_ body: () throws -> T) rethrows -> T {
        acquire()
        defer { release() }
        return try body()
    }
}
