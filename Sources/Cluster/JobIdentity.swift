import Data
import Engine
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

/// How large a job's messages may be (for the transports' frame-size limit): a step's units
/// and samples, or an evaluation of all of the larger split in one task.
extension WireJobSizes {
    public init(config: TrainingConfig, network: Network, data: DatasetPair) {
        let samples = max(config.batchSize, data.train.count, data.test.count)
        self.init(
            parameterCount: network.parameterCount, stateCount: network.state.count,
            statisticsPerUnit: 2 * network.normalizationChannels,
            unitsPerTask: (samples + config.ghostBatch - 1) / config.ghostBatch, samplesPerTask: samples)
    }
}
