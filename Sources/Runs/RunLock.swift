#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

// An advisory lock (flock) on a run directory for the life of the process, so two commands
// cannot train one run at once (two `train --resume` used to race and one died in "rename
// failed"). The lock file `lock` holds the owner's pid for the message; the kernel drops the
// lock when the process exits, however it exits, so a crash never leaves a stale lock.

public enum RunLock {
    /// Descriptors of the locks this process holds; never closed (closing would release).
    nonisolated(unsafe) private static var held: [String: Int32] = [:]
    private static let mutex = NSLock()

    /// Lock `run` or throw naming the process that holds it.
    public static func acquire(_ run: RunDirectory) throws {
        let path = run.file("lock")
        mutex.lock()
        defer { mutex.unlock() }
        if held[path] != nil { return }
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw RunDirectoryError("cannot open \(path): \(String(cString: strerror(errno))) (is the run directory writable?)")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            var owner = ""
            if let text = try? String(contentsOfFile: path, encoding: .utf8), let pid = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                owner = " by pid \(pid)"
            }
            close(descriptor)
            if reason == EWOULDBLOCK {
                throw RunDirectoryError("run \(run.path) is in use\(owner); wait for that process to finish or stop it (Ctrl-C writes a checkpoint), then try again")
            }
            throw RunDirectoryError("cannot lock \(path): \(String(cString: strerror(reason)))")
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(descriptor, 0)
        _ = pid.withCString { write(descriptor, $0, strlen($0)) }
        held[path] = descriptor
    }
}
