import Foundation

// Runs the real `ssgd` binary built next to the test bundle (or $SSGD_BINARY), capturing its
// output, for integration tests with real processes. Tests that inject faults (SSGD_TEST_*
// variables) run `ssgd-faults` instead (Tests/FaultInjection; or $SSGD_FAULTS_BINARY): the
// same commands with the test hooks installed.

public final class SSGDProcess: @unchecked Sendable {
    public enum Executable: Sendable {
        /// The shipped command line.
        case ssgd
        /// The same with fault hooks read from SSGD_TEST_* variables.
        case faults

        var name: String { self == .ssgd ? "ssgd" : "ssgd-faults" }
        var override: String { self == .ssgd ? "SSGD_BINARY" : "SSGD_FAULTS_BINARY" }

        public var path: String {
            if let path = ProcessInfo.processInfo.environment[override] { return path }
            let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            var folder = testBinary.deletingLastPathComponent()
            // The test bundle may be a folder (…/ssgdPackageTests.xctest/…) or a file beside ssgd.
            while !folder.path.isEmpty && folder.path != "/" {
                let candidate = folder.appendingPathComponent(name).path
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
                folder = folder.deletingLastPathComponent()
            }
            return ".build/debug/\(name)"
        }
    }

    public let process = Process()
    private let lock = NSLock()
    private var collected = Data()

    public static var binary: String { Executable.ssgd.path }

    /// `ssgd ARGUMENTS`, or `PREFIX… ssgd ARGUMENTS` (e.g. `ip netns exec NS`).
    public init(
        _ arguments: [String], environment: [String: String] = [:], prefix: [String] = [], executable: Executable = .ssgd
    ) throws {
        let binary = executable.path
        if let launcher = prefix.first {
            process.executableURL = URL(fileURLWithPath: launcher)
            process.arguments = Array(prefix.dropFirst()) + [binary] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
        }
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let chunk = handle.availableData
            if chunk.isEmpty {
                handle.readabilityHandler = nil
                return
            }
            self?.append(chunk)
        }
        try process.run()
    }

    private func append(_ data: Data) {
        lock.lock()
        collected.append(data)
        lock.unlock()
    }

    public var output: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: collected, as: UTF8.self)
    }

    public var processID: Int32 { process.processIdentifier }

    /// Wait for exit; kills the process and returns nil after `timeout` seconds.
    @discardableResult
    public func wait(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        Thread.sleep(forTimeInterval: 0.05)  // let the reader drain the pipe
        return process.terminationStatus
    }

    /// Wait until the output contains `text` (true) or `timeout` passes (false).
    public func waitForOutput(_ text: String, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if output.contains(text) { return true }
            if !process.isRunning { return output.contains(text) }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    /// Run to completion and return (status, output).
    public static func run(
        _ arguments: [String], environment: [String: String] = [:], prefix: [String] = [], timeout: Double = 120,
        executable: Executable = .ssgd
    ) throws -> (status: Int32?, output: String) {
        let running = try SSGDProcess(arguments, environment: environment, prefix: prefix, executable: executable)
        let status = running.wait(timeout: timeout)
        return (status, running.output)
    }

    /// Whether a process with this pid still exists (zombies of ours count as gone).
    public static func isAlive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        let status = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return !status.contains(") Z ")
    }

    /// The worker pids a `launch` printed.
    public static func workerPIDs(in output: String) -> [Int32] {
        guard let line = output.split(separator: "\n").first(where: { $0.contains("launch: worker pids") }) else { return [] }
        return line.split(separator: " ").compactMap { Int32($0) }
    }

    /// A run directory's summary.json as a JSON object (nil if absent or not an object).
    public static func summary(runDirectory: String) -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: runDirectory + "/summary.json") else { return nil }
        return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    }

    /// parameters_sha256 from a run directory's summary.json.
    public static func parametersHash(runDirectory: String) -> String? {
        summary(runDirectory: runDirectory)?["parameters_sha256"] as? String
    }
}
