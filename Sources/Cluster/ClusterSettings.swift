import Training
import Transport

// Named tunables of the coordinator, with units in their names.

public struct ClusterSettings: Sendable {
    /// ZeroMQ endpoint the coordinator binds (the default transport's), e.g. tcp://0.0.0.0:5555 or ipc:///tmp/ssgd.sock.
    public var bind: String
    /// Workers that must have joined before step 0.
    public var minimumWorkers: Int
    /// How long to wait for `minimumWorkers` at the start, and for any worker when all are lost.
    public var waitForWorkersSeconds: Double
    /// Heartbeat interval announced to workers.
    public var heartbeatIntervalSeconds: Double
    /// A worker silent (no heartbeat, no result) this long is declared dead and its shard re-issued.
    public var workerTimeoutSeconds: Double
    /// A shard not back after max(stepDeadlineFloorSeconds, stepDeadlineFactor × the median
    /// per-unit compute time of recent results × the units queued on its worker) is overdue: its
    /// worker is declared dead (it may be hung while its heartbeat thread runs) and the shard
    /// re-issued (see StepDeadline).
    public var stepDeadlineFactor: Double
    public var stepDeadlineFloorSeconds: Double
    /// CURVE keys and allow-list; nil means plaintext (loopback/ipc, or --insecure).
    public var security: CurveServerSecurity?
    /// Where `ssgd status` asks (nil: no status socket).
    public var statusEndpoint: String?
    /// Admit workers whose OpenBLAS kernel differs from the coordinator's (warned once per
    /// kernel); the result then depends on which worker computed what.
    public var allowMixedKernels: Bool
    /// Cut each step's units over the workers by their measured speed (ShardBalance); false
    /// keeps the equal cut. Either way the result has the same bits.
    public var balanceShards: Bool

    public init(
        bind: String, minimumWorkers: Int = 1, waitForWorkersSeconds: Double = 120,
        heartbeatIntervalSeconds: Double = 1, workerTimeoutSeconds: Double = 5,
        stepDeadlineFactor: Double = 10, stepDeadlineFloorSeconds: Double = 60,
        security: CurveServerSecurity? = nil, statusEndpoint: String? = nil, allowMixedKernels: Bool = false,
        balanceShards: Bool = true
    ) {
        self.bind = bind
        self.minimumWorkers = minimumWorkers
        self.waitForWorkersSeconds = waitForWorkersSeconds
        self.heartbeatIntervalSeconds = heartbeatIntervalSeconds
        self.workerTimeoutSeconds = workerTimeoutSeconds
        self.stepDeadlineFactor = stepDeadlineFactor
        self.stepDeadlineFloorSeconds = stepDeadlineFloorSeconds
        self.security = security
        self.statusEndpoint = statusEndpoint
        self.allowMixedKernels = allowMixedKernels
        self.balanceShards = balanceShards
    }

    /// The run's cluster tunables from its config.
    public init(bind: String, config: TrainingConfig, minimumWorkers: Int = 1,
                security: CurveServerSecurity? = nil, statusEndpoint: String? = nil, allowMixedKernels: Bool = false,
                balanceShards: Bool = true) {
        self.init(bind: bind, minimumWorkers: minimumWorkers, waitForWorkersSeconds: config.waitForWorkers,
                  heartbeatIntervalSeconds: config.heartbeatInterval, workerTimeoutSeconds: config.workerTimeout,
                  stepDeadlineFactor: config.stepDeadlineFactor, stepDeadlineFloorSeconds: config.stepDeadlineFloor,
                  security: security, statusEndpoint: statusEndpoint, allowMixedKernels: allowMixedKernels,
                  balanceShards: balanceShards)
    }
}

public struct ClusterError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
