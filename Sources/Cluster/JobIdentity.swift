import Data
import Training

// Who may join a run: a worker must compute the same job id (SHA-256 of the training config's
// trajectory hash and the data set fingerprint) and the same data fingerprint as the coordinator.

public struct JobIdentity: Sendable, Equatable {
    public let jobID: Digest32
    public let dataFingerprint: Digest32

    public init(config: TrainingConfig, dataFingerprint: String) {
        self.dataFingerprint = Digest32(hex: dataFingerprint) ?? .zero
        let digest = SHA256.hash(string: "ssgd-job|\(config.trajectoryHash)|\(dataFingerprint)")
        jobID = Digest32(bytes: digest) ?? .zero
    }
}

extension Digest32 {
    /// 64 hex digits → 32 bytes.
    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(32)
        for i in stride(from: 0, to: 64, by: 2) {
            guard let byte = UInt8(String(decoding: digits[i..<(i + 2)], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.init(bytes: bytes)
    }

    public var hex: String { SHA256.hex(bytes) }
    public var short: String { String(hex.prefix(12)) }
}

/// Contiguous, balanced ranges of work units, one per worker (fewer if there are fewer units).
public enum ShardPlan {
    public static func ranges(units: Int, workers: Int) -> [Range<Int>] {
        let shards = max(1, min(units, workers))
        return (0..<shards).map { k in (k * units / shards)..<((k + 1) * units / shards) }
    }
}
