import Foundation

#if canImport(Glibc)
import Glibc
#endif

// What the benchmark reads about its own process: CPU time (so a step's cost can be told apart
// from time spent waiting for a core on a shared machine), peak resident memory, and the load
// average to print beside every figure.

public enum ProcessMeasurements {
    /// CPU seconds used by this process so far, all threads (CLOCK_PROCESS_CPUTIME_ID).
    public static func cpuSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// Peak resident set size of this process in bytes: VmHWM from /proc/self/status, or
    /// getrusage's ru_maxrss (KiB on Linux) where /proc is not there.
    public static func peakResidentBytes() -> Int {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let kib = kibibytes(field: "VmHWM", in: status) {
            return kib * 1024
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024
    }

    /// The value of a "Name:   123 kB" line of a /proc status file, in KiB.
    public static func kibibytes(field: String, in status: String) -> Int? {
        for line in status.split(separator: "\n") where line.hasPrefix(field + ":") {
            let number = line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces)
                .split(separator: " ").first
            return number.flatMap { Int($0) }
        }
        return nil
    }

    /// The 1-minute load average, from /proc/loadavg (nil where it cannot be read).
    public static func loadAverage() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return nil }
        return text.split(separator: " ").first.flatMap { Double($0) }
    }
}
