import Foundation

// A run's folder: config.yaml (resolved), metrics.jsonl (one JSON object per evaluation),
// summary.json (at the end), checkpoints/ (step-NNNNNNNNN.ckpt, the last few kept).

public struct RunDirectory: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public var configPath: String { file("config.yaml") }
    public var metricsPath: String { file("metrics.jsonl") }
    public var summaryPath: String { file("summary.json") }
    public var checkpointsPath: String { file("checkpoints") }

    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// Create the folder for a new run; refuses a folder that already holds a run.
    public func createForNewRun() throws {
        let manager = FileManager.default
        if manager.fileExists(atPath: configPath) {
            throw RunDirectoryError(
                "run directory \(path) already holds a run; continue it with --resume \(path), or pick another --run-dir")
        }
        do {
            try manager.createDirectory(atPath: checkpointsPath, withIntermediateDirectories: true)
        } catch {
            throw RunDirectoryError("cannot create run directory \(path): \(error.localizedDescription)")
        }
    }

    /// A default folder name under runs/: NAME-METHOD-YYYYMMDD-HHMMSS.
    public static func defaultPath(name: String, method: String, date: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        formatter.locale = Locale(identifier: "en_US_POSIX")
        return "runs/\(name)-\(method)-\(formatter.string(from: date))"
    }

    public func appendMetrics(_ line: String) throws {
        let data = Data((line + "\n").utf8)
        if let handle = FileHandle(forWritingAtPath: metricsPath) {
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: data)
        } else if !FileManager.default.createFile(atPath: metricsPath, contents: data) {
            throw RunDirectoryError("cannot write \(metricsPath)")
        }
    }
}

public struct RunDirectoryError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
