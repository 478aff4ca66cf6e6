import Wire

// The coordinator's answer to a HELLO (ARCHITECTURE.md, "Wire protocol"): the protocol version
// and the OpenBLAS kernel must match this coordinator's (a kernel may differ when the operator
// allows mixed kernels); then a zero job id asks for the config; otherwise data fingerprint and
// job id must match this run's. Each refusal names the mismatch and what to do about it.

enum Admission: Equatable {
    /// Send WELCOME with the config (and no worker index): the worker loads it and says HELLO again.
    case sendConfig
    /// Admit the worker.
    case admit
    case refuse(WireErrorCode, String)

    /// Which OpenBLAS kernels may compute: the coordinator's own, or any with `allowMixed`.
    struct KernelPolicy: Equatable {
        /// The coordinator's OpenBLAS core name.
        var coordinator: String
        var allowMixed: Bool
    }

    static func decide(_ hello: HelloMessage, identity: JobIdentity, kernels: KernelPolicy) -> Admission {
        if hello.protocolVersion != WireProtocol.version {
            return .refuse(.versionMismatch, versionMismatch(hello.protocolVersion, worker: "worker \(hello.workerName)"))
        }
        if hello.blasCore != kernels.coordinator && !kernels.allowMixed {
            return .refuse(.kernelMismatch, kernelMismatch(hello, coordinator: kernels.coordinator))
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

    /// The refusal of a worker whose OpenBLAS kernel is not the coordinator's.
    static func kernelMismatch(_ hello: HelloMessage, coordinator: String) -> String {
        "worker \(hello.workerName) computes with the OpenBLAS kernel \(hello.blasCore), this coordinator with \(coordinator) (kernels round differently): pin one kernel on every machine with OPENBLAS_CORETYPE=NAME in the environment of every ssgd process, or allow mixed kernels with --allow-mixed-kernels (results then depend on which worker computed what)"
    }

    /// The warning when the first worker with another kernel is admitted under `allowMixed`.
    static func mixedKernelWarning(_ hello: HelloMessage, coordinator: String) -> String {
        "warning: worker \(hello.workerName) computes with the OpenBLAS kernel \(hello.blasCore), this coordinator with \(coordinator); admitted (--allow-mixed-kernels): results now depend on which worker computed what"
    }
}
