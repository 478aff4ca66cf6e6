import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// SIGINT/SIGTERM ask the training loop to stop after the current step, write a checkpoint and
// say how to resume (a wait for workers ends at once). A second signal exits at once, saying so.

public enum StopRequest {
    /// Signals seen so far; a lock-free atomic, so two signals at once (on two threads, or one
    /// interrupting the other's handler) cannot both count as the first.
    private static let signals = Atomic<Int>(0)

    public static var requested: Bool { signals.load(ordering: .relaxed) != 0 }

    public static func request() { signals.store(1, ordering: .relaxed) }

    public static func installHandlers() {
        _ = requested  // initialise `signals` here, not first inside a handler
        let handler: @convention(c) (Int32) -> Void = { signalNumber in
            if StopRequest.signals.add(1, ordering: .sequentiallyConsistent).oldValue != 0 {
                // Only async-signal-safe calls here: a constant string, write, _exit.
                let text: StaticString = "ssgd: second stop signal: exiting now, without a checkpoint of the current step\n"
                _ = write(2, text.utf8Start, text.utf8CodeUnitCount)
                _exit(128 + signalNumber)
            }
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
        // A parent may have spawned us with these signals blocked (posix_spawn keeps the mask).
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGINT)
        sigaddset(&unblock, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
    }
}

/// Thrown where long work (an evaluation) notices a stop request between its chunks; the
/// trainer then checkpoints (the step before it is complete) and stops.
public struct StopRequestedError: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "stopped on request" }
}
