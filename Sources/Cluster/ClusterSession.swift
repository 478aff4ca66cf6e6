import Engine
import Runs
import Training

// The coordinator's trainer: the same Trainer as `ssgd train`, over a ClusterExecutor.

public enum ClusterSession {
    public static func coordinatorTrainer(_ prepared: PreparedRun, settings: ClusterSettings) throws -> (Trainer, ClusterExecutor) {
        let (data, network) = try TrainingSession.loadDataAndModel(prepared.config)
        let identity = JobIdentity(config: prepared.config, dataFingerprint: data.fingerprint)
        let executor = try ClusterExecutor(config: prepared.config, identity: identity, network: network, data: data, settings: settings)
        let trainer = try Trainer(config: prepared.config, data: data, network: network, executor: executor, run: prepared.run)
        if prepared.resuming { try trainer.restoreLatestCheckpoint() } else { trainer.initializeFresh() }
        return (trainer, executor)
    }
}
