#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

// Writes a file so that a reader sees either the old complete file or the new complete file:
// write to `path.tmp`, fsync, rename over `path`, fsync the folder. A failure (disk full,
// unwritable folder) throws and leaves any previous file untouched.

public struct FileWriteError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "cannot write \(path): \(reason)" }

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

public final class AtomicFileWriter {
    public let path: String
    private let temporaryPath: String
    private var descriptor: Int32
    private var failed = false

    public init(path: String) throws {
        self.path = path
        temporaryPath = path + ".tmp"
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if descriptor < 0 {
            throw FileWriteError(path: path, reason: String(cString: strerror(errno)) + " (is the folder writable?)")
        }
    }

    deinit {
        if descriptor >= 0 {
            close(descriptor)
            unlink(temporaryPath)
        }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                failed = true
                throw FileWriteError(path: path, reason: String(cString: strerror(errno)) + " (disk full?)")
            }
            offset += written
        }
    }

    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// fsync, rename into place, fsync the folder.
    public func commit() throws {
        guard !failed else { throw FileWriteError(path: path, reason: "an earlier write failed") }
        if fsync(descriptor) != 0 {
            throw FileWriteError(path: path, reason: "fsync failed: " + String(cString: strerror(errno)))
        }
        close(descriptor)
        descriptor = -1
        if rename(temporaryPath, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw FileWriteError(path: path, reason: "rename failed: \(reason)")
        }
        let folder = (path as NSString).deletingLastPathComponent
        let folderDescriptor = open(folder.isEmpty ? "." : folder, O_RDONLY)
        if folderDescriptor >= 0 {
            fsync(folderDescriptor)
            close(folderDescriptor)
        }
    }

    /// Write a whole small file atomically.
    public static func write(_ text: String, to path: String) throws {
        let writer = try AtomicFileWriter(path: path)
        try writer.write(Array(text.utf8))
        try writer.commit()
    }
}
