#if canImport(Glibc)
import Glibc
#endif
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

    /// Create the folder for a new run and lock it (RunLock). A folder that already holds a run
    /// is refused — unless that run never wrote a checkpoint or a summary (it failed before its
    /// first checkpoint), in which case it is reused from scratch and `true` is returned.
    @discardableResult
    public func createForNewRun() throws -> Bool {
        let manager = FileManager.default
        do {
            try manager.createDirectory(atPath: checkpointsPath, withIntermediateDirectories: true)
        } catch {
            throw RunDirectoryError("cannot create run directory \(path): \(RunDirectory.reason(error))")
        }
        try RunLock.acquire(self)
        guard manager.fileExists(atPath: configPath) else { return false }
        if !Checkpoint.list(directory: checkpointsPath).isEmpty || manager.fileExists(atPath: summaryPath) {
            throw RunDirectoryError(
                "run directory \(path) already holds a run; continue it with --resume \(path), or pick another --run-dir")
        }
        try? manager.removeItem(atPath: metricsPath)
        return true
    }

    /// The POSIX reason behind a Foundation file error ("Permission denied"), not its
    /// "NSCocoaErrorDomain error 512" wrapper.
    public static func reason(_ error: Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? Error {
            let posix = underlying as NSError
            if posix.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(posix.code))) }
        }
        if nsError.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(nsError.code))) }
        return nsError.localizedFailureReason ?? nsError.localizedDescription
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
