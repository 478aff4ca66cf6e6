import Data
import Training
import Wire

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
