import Foundation
import Training

#if canImport(Glibc)
import Glibc
#endif

// A cell of an experiment runs as a child `ssgd` process (so a crash in one cell cannot take the
// runner down), started with posix_spawn: stdin from /dev/null, stdout and stderr appended to
// the cell's log file, no other descriptor inherited, its own process group (a terminal's Ctrl-C reaches the runner only, which
// forwards exactly one SIGINT — a second would make the child exit without its checkpoint), and
// SIGINT/SIGTERM at their defaults and unblocked. The child learns the runner's pid from
// SSGD_EXPERIMENT_PID and, when the runner is gone, stops as on Ctrl-C (with a checkpoint). It
// watches for that rather than asking for a parent-death signal: Linux sends that signal again
// each time a dying multi-threaded parent's exiting thread hands the child on, and a second stop
// signal means "exit now, without a checkpoint".

public struct ChildProcess: Sendable {
    public let pid: pid_t

    /// How a child ended.
    public enum Ending: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)

        public var description: String {
            switch self {
            case .exited(let status): "exited with status \(status)"
            case .signaled(let signal): "was killed by signal \(signal)"
            }
        }
    }

    public static let runnerVariable = "SSGD_EXPERIMENT_PID"

    /// A cell: `start` with this process's environment and SSGD_EXPERIMENT_PID.
    public static func spawn(executable: String, arguments: [String], log: String) throws -> ChildProcess {
        var environment = ProcessInfo.processInfo.environment
        environment[runnerVariable] = String(getpid())
        return try start(executable: executable, arguments: arguments, environment: environment, log: log)
    }

    /// Any program so (the tests' servers too): stdin from /dev/null, stdout and stderr appended
    /// to `log`, no other descriptor inherited, its own process group, SIGINT/SIGTERM at their
    /// defaults and unblocked.
    public static func start(executable: String, arguments: [String], environment: [String: String], log: String) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Every other open descriptor closed in the child (glibc ignores one closed meanwhile).
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for descriptor in open.compactMap(Int32.init) where descriptor > 2 {
            posix_spawn_file_actions_addclose(&actions, descriptor)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGTERM)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard status == 0 else {
            throw PlanError("cannot start \(executable): \(String(cString: strerror(status)))")
        }
        return ChildProcess(pid: pid)
    }

    /// How the child ended, or nil while it runs (never blocks).
    public func poll() -> Ending? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        guard result == pid else { return nil }
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
    }

    public func send(_ signal: Int32) { kill(pid, signal) }

    /// In a child of `ssgd experiment`: once the runner is gone (noticed within 0.2 s),
    /// `onRunnerGone` — by default a stop request, on which a trainer writes its checkpoint and
    /// exits; exit at once if the runner is gone already.
    public static func adoptRunnerIfAny(onRunnerGone: @escaping @Sendable () -> Void = { StopRequest.request() }) {
        guard let value = ProcessInfo.processInfo.environment[runnerVariable], let runner = Int32(value) else { return }
        if getppid() != runner { exit(1) }
        let watcher = Thread {
            while getppid() == runner { usleep(200_000) }
            onRunnerGone()
        }
        watcher.start()
    }
}
