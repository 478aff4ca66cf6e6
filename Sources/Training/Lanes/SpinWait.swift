#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

// The two pieces of a split GEMM (Linear.splitGEMMs) meet at every GEMM: nine times in a
// one-unit MLP step of 7–8 ms. A thread that sleeps on a condition at such a meeting hands
// its core back, and on a virtual machine an idle vCPU takes tens of microseconds or more to be
// scheduled again when it is woken — a real share of so short a stretch. So a pool thread that
// has a core of its own first polls for a short while, yielding between polls, and only then
// sleeps. Polling never changes what is computed, only when a waiting thread notices that it may
// go on. (Chunked units meet at batch norm every ~25 ms; polling there alone bought nothing
// measurable, so a chunk waiting at a ChunkBarrier polls only to take the other chunks' GEMMs
// (SharedPieces), and sleeps after 20 ms with none to take.)

enum SpinWait {
    /// How long a lane polls before it sleeps.
    static let pollSeconds = 0.002

    /// Whether `threads` threads that may all be running at once each have a core of their own
    /// (so polling takes no core from a thread that computes).
    static func mayPoll(threads: Int) -> Bool {
        threads <= ProcessInfo.processInfo.activeProcessorCount
    }

    /// Polls `done` for up to `seconds`, yielding the core between polls; true once `done` holds.
    static func poll(for seconds: Double, _ done: () -> Bool) -> Bool {
        if done() { return true }
        let deadline = MonotonicClock.now() + seconds
        repeat {
            sched_yield()
            if done() { return true }
        } while MonotonicClock.now() < deadline
        return false
    }
}
