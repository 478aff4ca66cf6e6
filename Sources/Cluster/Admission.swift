import Wire

// The coordinator's answer to a HELLO (ARCHITECTURE.md, "Wire protocol"): a zero job id asks
// for the config; otherwise protocol version, data fingerprint and job id must all match this
// run's, and each refusal names the mismatch and what to do about it.

enum Admission: Equatable {
    /// Send WELCOME with the config (and no worker index): the worker loads it and says HELLO again.
    case sendConfig
    /// Admit the worker.
    case admit
    case refuse(WireErrorCode, String)

    static func decide(_ hello: HelloMessage, identity: JobIdentity) -> Admission {
        if hello.protocolVersion != WireProtocol.version {
            return .refuse(.versionMismatch, versionMismatch(hello.protocolVersion, worker: "worker \(hello.workerName)"))
        }
        if hello.jobID == .zero { return .sendConfig }
        if hello.dataFingerprint != identity.dataFingerprint {
            return .refuse(.dataMismatch, "worker \(hello.workerName) has another data set (fingerprint \(hello.dataFingerprint.short)…, coordinator \(identity.dataFingerprint.short)…): every node needs the same data files and preprocessing (check --data / data_path)")
        }
        if hello.jobID != identity.jobID {
            return .refuse(.jobMismatch, "worker \(hello.workerName) belongs to another job (job id \(hello.jobID.short)…, coordinator \(identity.jobID.short)…): it was started with a different training config")
        }
        return .admit
    }

    /// The refusal of a peer speaking another protocol version (`worker` names it).
    static func versionMismatch(_ version: UInt16, worker: String) -> String {
        "\(worker) speaks wire protocol version \(version), this coordinator speaks \(WireProtocol.version): run the same ssgd build on every node"
    }
}
