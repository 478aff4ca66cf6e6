import Foundation
import Study

#if canImport(Glibc)
import Glibc
#endif

/// A server a test runs for a while (munged, slurmctld, slurmd), started as ChildProcess.start
/// does (stdin from /dev/null, output to a log file, no other descriptor inherited, SIGTERM at
/// its default and unblocked), not with Foundation's Process.
///
/// Why not Process: it learns that a child exited when the child's end of a socket pair is
/// closed, so a daemon that closes the descriptors it inherited (slurmctld does) looks exited,
/// and Process's one manager thread then blocks in waitpid on it: no other Process of the test
/// is seen to end again. And a child started from a Swift concurrency thread inherits that
/// thread's signal mask, with SIGTERM blocked.
public final class Daemon {
    public let name: String
    private let child: ChildProcess
    private var ended: ChildProcess.Ending?

    public init(_ executable: String, _ arguments: [String], environment: [String: String], log: String) throws {
        name = URL(fileURLWithPath: executable).lastPathComponent
        child = try ChildProcess.start(executable: executable, arguments: arguments, environment: environment, log: log)
    }

    /// Whether it still runs (reaps it once it has ended; never blocks).
    public var isRunning: Bool {
        if ended == nil { ended = child.poll() }
        return ended == nil
    }

    /// How it ended ("exited with status N", "was killed by signal N"), or "is running".
    public var ending: String { isRunning ? "is running" : ended?.description ?? "" }

    /// SIGTERM, up to `grace` seconds to exit, then SIGKILL; reaped in the end.
    public func stop(grace: Double) {
        guard isRunning else { return }
        child.send(SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while isRunning && Date() < deadline { usleep(50_000) }
        if isRunning {
            child.send(SIGKILL)
            while isRunning { usleep(10_000) }
        }
    }
}
