import CProcess
import Foundation
import Training

#if canImport(Glibc)
import Glibc
#endif

// Starts worker processes for `ssgd launch`, prefixes their output, restarts a worker killed
// by a signal (up to `maxRestarts` times each, with doubling backoff from 0.5 s), stops
// everything when one fails for good (a non-zero exit: refused, bad config or data, which a
// restart would only repeat), and makes sure none outlives the launcher: workers are told the launcher's pid
// (SSGD_LAUNCHER_PID), ask the kernel for SIGTERM when it dies (PR_SET_PDEATHSIG), and are
// terminated, then killed, when the launcher stops them.

public final class ProcessSupervisor: @unchecked Sendable {
    public struct Child {
        public let label: String
        public let process: Process
    }

    private let lock = NSLock()
    private var children: [Child] = []
    private var failure: String?
    private var stopping = false
    private var lastLines: [String: String] = [:]
    private var launches: [String: (executable: String, arguments: [String])] = [:]
    private var restarts: [String: Int] = [:]
    public let maxRestarts: Int

    public init(maxRestarts: Int = 0) { self.maxRestarts = maxRestarts }

    /// The first unexpected exit, if any ("worker 1 exited with status 1: <its last line>").
    public var failureReason: String? {
        lock.lock()
        defer { lock.unlock() }
        return failure
    }

    public var processIDs: [Int32] {
        lock.lock()
        defer { lock.unlock() }
        return children.map { $0.process.processIdentifier }
    }

    public func start(label: String, executable: String, arguments: [String]) throws {
        lock.lock()
        launches[label] = (executable, arguments)
        lock.unlock()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["SSGD_LAUNCHER_PID"] = String(getpid())
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let prefix = "[\(label)] "
        let pending = LineBuffer()
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let chunk = handle.availableData
            if chunk.isEmpty {
                handle.readabilityHandler = nil
                return
            }
            for line in pending.append(chunk) {
                Console.line(prefix + line)
                self?.remember(label: label, line: line)
            }
        }
        process.terminationHandler = { [weak self] finished in
            self?.exited(label: label, status: finished.terminationStatus, reason: finished.terminationReason)
        }
        do {
            try process.run()
        } catch {
            throw ClusterError("cannot start \(label) (\(executable)): \(error.localizedDescription)")
        }
        lock.lock()
        children.append(Child(label: label, process: process))
        lock.unlock()
    }

    private func remember(label: String, line: String) {
        lock.lock()
        lastLines[label] = line
        lock.unlock()
    }

    private func exited(label: String, status: Int32, reason: Process.TerminationReason) {
        lock.lock()
        defer { lock.unlock() }
        guard !stopping, failure == nil else { return }
        if reason == .uncaughtSignal {
            let attempt = restarts[label, default: 0] + 1
            guard attempt <= maxRestarts, let launch = launches[label] else {
                failure = "\(label) was killed by signal \(status)"
                    + (maxRestarts > 0 ? " and was already restarted \(maxRestarts) time(s) (max_worker_restarts)" : "")
                return
            }
            restarts[label] = attempt
            let delay = 0.5 * Double(1 << (attempt - 1))
            Console.line("launch: \(label) was killed by signal \(status); restarting it in \(delay) s (restart \(attempt) of \(maxRestarts))")
            DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [weak self] in
                guard let self else { return }
                self.lock.lock()
                let stopping = self.stopping
                self.lock.unlock()
                if stopping { return }
                do {
                    try self.start(label: label, executable: launch.executable, arguments: launch.arguments)
                    if let pid = self.processIDs.last { Console.line("launch: restarted \(label) as pid \(pid)") }
                } catch {
                    self.lock.lock()
                    self.failure = "\(label) could not be restarted: \(error)"
                    self.lock.unlock()
                }
            }
        } else if status != 0 {
            let last = lastLines[label].map { ": \($0)" } ?? ""
            failure = "\(label) exited with status \(status)\(last)"
        } else {
            failure = "\(label) exited before training finished"
        }
    }

    /// Wait up to `grace` seconds for every child to exit, then SIGTERM, then SIGKILL.
    public func stopAll(grace: Double) {
        lock.lock()
        stopping = true
        let running = children.map(\.process)
        lock.unlock()
        let deadline = Date().addingTimeInterval(grace)
        while running.contains(where: \.isRunning) && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        for process in running where process.isRunning { kill(process.processIdentifier, SIGTERM) }
        let killDeadline = Date().addingTimeInterval(2)
        while running.contains(where: \.isRunning) && Date() < killDeadline { Thread.sleep(forTimeInterval: 0.05) }
        for process in running where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for process in running { process.waitUntilExit() }
        // Let the pipe readers print what the children wrote last.
        Thread.sleep(forTimeInterval: 0.1)
    }

    /// In a worker: die with the launcher, and leave Ctrl-C to the launcher (which checkpoints
    /// and shuts workers down in order).
    public static func adoptLauncherIfAny() {
        guard let value = ProcessInfo.processInfo.environment["SSGD_LAUNCHER_PID"], let launcher = Int32(value) else { return }
        #if os(Linux)
        _ = ssgd_die_with_parent(SIGTERM)
        #endif
        signal(SIGINT, SIG_IGN)
        if getppid() != launcher { exit(1) }
    }

    /// This executable's path, for starting more of it.
    public static var currentExecutable: String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return CommandLine.arguments[0]
    }
}

/// Bytes from a pipe, split into whole lines (only the pipe's reader thread touches it).
final class LineBuffer: @unchecked Sendable {
    private var pending = Data()

    func append(_ chunk: Data) -> [String] {
        pending.append(chunk)
        var lines = [String]()
        while let newline = pending.firstIndex(of: 0x0A) {
            lines.append(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
            pending.removeSubrange(pending.startIndex...newline)
        }
        return lines
    }
}
