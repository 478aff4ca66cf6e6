#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// SIGINT/SIGTERM ask the training loop to stop after the current step, write a checkpoint and
// say how to resume (a wait for workers ends at once). A second signal exits at once, saying so.

public enum StopRequest {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    public static var requested: Bool { flag != 0 }

    public static func request() { flag = 1 }

    public static func installHandlers() {
        let handler: @convention(c) (Int32) -> Void = { signalNumber in
            if StopRequest.flag != 0 {
                // Only async-signal-safe calls here: a constant string, write, _exit.
                let text: StaticString = "ssgd: second stop signal: exiting now, without a checkpoint of the current step\n"
                _ = write(2, text.utf8Start, text.utf8CodeUnitCount)
                _exit(128 + signalNumber)
            }
            StopRequest.flag = 1
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
