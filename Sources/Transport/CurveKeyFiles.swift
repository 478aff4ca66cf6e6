// CURVE key files on disk (DESIGN §5): what `ssgd keygen` writes and what the coordinator and
// workers read.
//
// Files (one Z85 key of 40 characters per file, a trailing newline; when reading, blank lines
// and lines starting with # are ignored):
//   NAME.key  the secret key, mode 0600 — created with that mode, never readable by others,
//             not even for a moment. A secret key file with any group/other permission bit is
//             refused ("chmod 600 FILE").
//   NAME.pub  the public key, mode 0644. Copy workers' .pub files into the coordinator's
//             allow-list and the coordinator's .pub file to every worker.
// Allow-list: a directory (every *.pub file in it, other files ignored) or a text file with one
// Z85 public key per line (# comments and blank lines allowed; `cat *.pub > allow.txt` works).
//
// API:
//   CurveKeyFiles.generate(directory:name:force:) throws -> CurveKeyFilePaths   // keygen
//   CurveKeyFiles.write(_:directory:name:force:) throws -> CurveKeyFilePaths
//   CurveKeyFiles.loadSecretKey(_ path:) throws -> ZMQCurveKeyPair              // checks mode
//   CurveKeyFiles.loadPublicKey(_ path:) throws -> String
//   CurveKeyFiles.loadAllowList(_ path:) throws -> CurveAllowList
//   CurveAllowList(keys:) / .contains(_:) / .count / .keys
// Every failure is a CurveKeyError whose description names the file and says what to do.

import CZMQ
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum CurveKeyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// keygen would overwrite this file.
    case fileExists(path: String)
    /// The key name is empty, contains "/", or starts with ".".
    case invalidName(String)
    /// A file could not be read, written or listed.
    case io(path: String, reason: String)
    /// A secret key file that group or others may access (`mode` is the permission bits).
    case insecurePermissions(path: String, mode: UInt32)
    /// The file does not hold what it should (line 0 = the file as a whole).
    case malformedKey(path: String, line: Int, reason: String)
    /// NAME.pub next to NAME.key holds another key than the one NAME.key derives.
    case keyMismatch(secretPath: String, publicPath: String)
    /// An allow-list without a single key (a coordinator would admit nobody).
    case emptyAllowList(path: String)

    public var description: String {
        switch self {
        case .fileExists(let path):
            return "\(path) already exists; pass --force to replace it (workers and coordinators "
                + "holding the old public key will then be refused)"
        case .invalidName(let name):
            return "invalid key name '\(name)': use a plain file name without '/' that does not start with '.'"
        case .io(let path, let reason):
            return "\(path): \(reason)"
        case .insecurePermissions(let path, let mode):
            return "secret key file \(path) is accessible by group or others (mode "
                + "\(String(mode, radix: 8))); protect it with: chmod 600 \(path)"
        case .malformedKey(let path, let line, let reason):
            let at = line > 0 ? "\(path):\(line)" : path
            return "\(at): \(reason) (expected a 40-character Z85 CURVE key as written by ssgd keygen)"
        case .keyMismatch(let secretPath, let publicPath):
            return "\(publicPath) does not hold the public key of \(secretPath); regenerate the pair "
                + "with ssgd keygen --force, or remove the stale .pub file"
        case .emptyAllowList(let path):
            return "allow-list \(path) holds no public keys: add the workers' .pub files (made by ssgd keygen)"
        }
    }
}

/// The worker public keys a coordinator admits (Z85 text).
public struct CurveAllowList: Equatable, Sendable {
    public let keys: Set<String>

    public init(keys: some Sequence<String>) { self.keys = Set(keys) }

    public var count: Int { keys.count }
    public func contains(_ publicKey: String) -> Bool { keys.contains(publicKey) }
}

public struct CurveKeyFilePaths: Equatable, Sendable {
    public let secretKey: String
    public let publicKey: String
}

public enum CurveKeyFiles {
    public static let secretExtension = "key"
    public static let publicExtension = "pub"
    static let secretMode: mode_t = 0o600
    static let publicMode: mode_t = 0o644

    // MARK: - Writing

    /// Generates a key pair and writes `directory/name.key` (0600) and `directory/name.pub` (0644).
    public static func generate(directory: String, name: String = "ssgd", force: Bool = false) throws
        -> CurveKeyFilePaths
    {
        try write(ZMQCurveKeyPair.generate(), directory: directory, name: name, force: force)
    }

    /// Writes a key pair. Without `force`, refuses (before writing anything) if either file
    /// exists; with `force`, replaces them atomically (write a temporary file, then rename).
    /// Creates `directory` if needed.
    public static func write(_ keyPair: ZMQCurveKeyPair, directory: String, name: String, force: Bool) throws
        -> CurveKeyFilePaths
    {
        guard !name.isEmpty, !name.contains("/"), !name.hasPrefix(".") else { throw CurveKeyError.invalidName(name) }
        let paths = CurveKeyFilePaths(
            secretKey: (directory as NSString).appendingPathComponent("\(name).\(secretExtension)"),
            publicKey: (directory as NSString).appendingPathComponent("\(name).\(publicExtension)"))
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CurveKeyError.io(path: directory, reason: "cannot create the directory: \(error.localizedDescription)")
        }
        if !force {
            for path in [paths.secretKey, paths.publicKey] where fileExists(path) {
                throw CurveKeyError.fileExists(path: path)
            }
        }
        try writeFile(paths.secretKey, contents: keyPair.secretKey + "\n", mode: secretMode, replace: force)
        try writeFile(paths.publicKey, contents: keyPair.publicKey + "\n", mode: publicMode, replace: force)
        return paths
    }

    private static func fileExists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Creates `path` with exactly `mode` (O_EXCL, so the file never exists with wider
    /// permissions). `replace`: create a temporary sibling the same way and rename it over `path`.
    private static func writeFile(_ path: String, contents: String, mode: mode_t, replace: Bool) throws {
        let target = replace ? "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" : path
        let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let code = errno
            if code == EEXIST && !replace { throw CurveKeyError.fileExists(path: path) }
            throw CurveKeyError.io(path: path, reason: "cannot create: \(String(cString: strerror(code)))")
        }
        var failure: String?
        // The umask may have narrowed `mode`; set it exactly (0644 for public keys).
        if fchmod(fd, mode) != 0 { failure = String(cString: strerror(errno)) }
        if failure == nil {
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
            do {
                try handle.write(contentsOf: Data(contents.utf8))
                try handle.synchronize()
            } catch {
                failure = error.localizedDescription
            }
        }
        close(fd)
        if failure == nil && replace && rename(target, path) != 0 { failure = String(cString: strerror(errno)) }
        if let failure {
            unlink(target)
            throw CurveKeyError.io(path: path, reason: "cannot write: \(failure)")
        }
    }

    // MARK: - Reading

    /// Reads a secret key file and derives its public key. Refuses a file that group or others
    /// may access; if NAME.pub lies next to NAME.key, it must hold the derived public key.
    public static func loadSecretKey(_ path: String) throws -> ZMQCurveKeyPair {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw CurveKeyError.io(path: path, reason: "cannot read the secret key file: \(String(cString: strerror(errno)))")
        }
        let permissions = UInt32(info.st_mode) & 0o777
        guard permissions & 0o077 == 0 else { throw CurveKeyError.insecurePermissions(path: path, mode: permissions) }
        let secretKey = try singleKey(in: path)
        let keyPair: ZMQCurveKeyPair
        do {
            keyPair = try ZMQCurveKeyPair(secretKey: secretKey)
        } catch {
            throw CurveKeyError.malformedKey(path: path, line: 0, reason: "not a usable CURVE secret key (\(error))")
        }
        if path.hasSuffix(".\(secretExtension)") {
            let publicPath = String(path.dropLast(secretExtension.count)) + publicExtension
            if fileExists(publicPath), try loadPublicKey(publicPath) != keyPair.publicKey {
                throw CurveKeyError.keyMismatch(secretPath: path, publicPath: publicPath)
            }
        }
        return keyPair
    }

    /// Reads a public key file (e.g. the coordinator's, for a worker's --curve-server-key).
    public static func loadPublicKey(_ path: String) throws -> String {
        try singleKey(in: path)
    }

    /// Reads an allow-list: a directory of *.pub files, or a text file of keys, one per line.
    /// Refuses an allow-list without keys.
    public static func loadAllowList(_ path: String) throws -> CurveAllowList {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CurveKeyError.io(path: path, reason: "no such allow-list file or directory")
        }
        var keys: [String] = []
        if isDirectory.boolValue {
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: path)
            } catch {
                throw CurveKeyError.io(path: path, reason: "cannot list the allow-list directory: \(error.localizedDescription)")
            }
            for name in names.sorted() where name.hasSuffix(".\(publicExtension)") {
                keys.append(try loadPublicKey((path as NSString).appendingPathComponent(name)))
            }
        } else {
            keys = try keyLines(in: path).map(\.key)
        }
        guard !keys.isEmpty else { throw CurveKeyError.emptyAllowList(path: path) }
        return CurveAllowList(keys: keys)
    }

    private static func singleKey(in path: String) throws -> String {
        let lines = try keyLines(in: path)
        guard let first = lines.first else {
            throw CurveKeyError.malformedKey(path: path, line: 0, reason: "the file holds no key")
        }
        guard lines.count == 1 else {
            throw CurveKeyError.malformedKey(
                path: path, line: lines[1].line, reason: "a key file holds exactly one key, found \(lines.count)")
        }
        return first.key
    }

    /// The non-blank, non-comment lines of `path`, each checked to be a Z85 key.
    private static func keyLines(in path: String) throws -> [(line: Int, key: String)] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CurveKeyError.io(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw CurveKeyError.malformedKey(path: path, line: 0, reason: "not UTF-8 text")
        }
        var keys: [(line: Int, key: String)] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard ZMQCurve.isValidKey(line) else {
                let reason =
                    line.utf8.count == ZMQCurve.keyLength
                    ? "characters outside the Z85 alphabet" : "\(line.utf8.count) characters instead of 40"
                throw CurveKeyError.malformedKey(path: path, line: index + 1, reason: reason)
            }
            keys.append((index + 1, line))
        }
        return keys
    }

    // MARK: - Z85

    /// Z85 text of a 32-byte binary key (as ZAP passes CURVE credentials), nil for other sizes.
    public static func z85(_ key: [UInt8]) -> String? {
        guard key.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: ZMQCurve.keyLength + 1)
        guard zmq_z85_encode(&text, key, key.count) != nil else { return nil }
        return ZMQCurve.string(text)
    }
}
