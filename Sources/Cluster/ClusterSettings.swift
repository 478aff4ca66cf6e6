// Named tunables of the coordinator, with units in their names.

public struct ClusterSettings: Sendable {
    /// ZeroMQ endpoint the coordinator binds, e.g. tcp://0.0.0.0:5555 or ipc:///tmp/ssgd.sock.
    public var bind: String
    /// Workers that must have joined before step 0.
    public var minimumWorkers: Int
    /// How long to wait for `minimumWorkers` (and, mid-run, for any worker) before giving up.
    public var waitForWorkersSeconds: Double
    /// How long one step's or evaluation's results may take before the run stops with an error.
    public var resultTimeoutSeconds: Double
    /// Heartbeat interval announced to workers.
    public var heartbeatIntervalMilliseconds: UInt32

    public init(
        bind: String, minimumWorkers: Int = 1, waitForWorkersSeconds: Double = 120,
        resultTimeoutSeconds: Double = 1800, heartbeatIntervalMilliseconds: UInt32 = 1000
    ) {
        self.bind = bind
        self.minimumWorkers = minimumWorkers
        self.waitForWorkersSeconds = waitForWorkersSeconds
        self.resultTimeoutSeconds = resultTimeoutSeconds
        self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
    }
}

public struct ClusterError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
