import Data
import Engine
import Foundation
import Runs
import Training
import Transport
import Wire

// A worker process: handshake, then compute whatever shards the coordinator sends until it says
// SHUTDOWN. It holds the whole data set; only indices and parameters travel. It reaches the
// coordinator through a ClientConnector (ZeroMQ unless given another): the configuration and
// main channels on the thread that calls `run`, the heartbeat channel on WorkerHeartbeat's
// thread. No channel takes a frame larger than its messages can be (the main channel's limit
// comes from the model and data, so it is connected once they are loaded).
//
// Handshake: HELLO with a zero job id on the configuration channel asks for the config (WELCOME
// carries it as YAML); the worker loads data and model, computes its job id and data
// fingerprint and says HELLO again on the main channel; the coordinator answers WELCOME
// (joined) or ERROR (why not). A worker given --config skips the first round.

public struct WorkerOptions: Sendable {
    /// The coordinator's ZeroMQ endpoint (also named in messages about it).
    public var endpoint: String
    public var configPath: String?
    public var dataPath: String?
    public var threads: Int
    public var name: String
    public var handshakeTimeoutSeconds: Double
    public var security: CurveClientSecurity?
    /// After this long without hearing from the coordinator, give up (exit non-zero).
    public var giveUpSeconds: Double

    public init(endpoint: String, configPath: String? = nil, dataPath: String? = nil, threads: Int = 1,
                name: String = "", handshakeTimeoutSeconds: Double = 60, security: CurveClientSecurity? = nil,
                giveUpSeconds: Double = 600) {
        self.endpoint = endpoint
        self.configPath = configPath
        self.dataPath = dataPath
        self.threads = threads
        self.name = name
        self.handshakeTimeoutSeconds = handshakeTimeoutSeconds
        self.security = security
        self.giveUpSeconds = giveUpSeconds
    }
}

public struct WorkerRefused: Error, CustomStringConvertible {
    public var description: String
}

/// Test-only interference with a worker. The shipped `ssgd` never sets any; the test binary
/// `ssgd-faults` (Tests/FaultInjection) installs them from its environment.
public struct WorkerFaultHooks: Sendable {
    /// Runs as a task arrives, before any work (may sleep, stall or end the process).
    public var beforeTask: (@Sendable (_ worker: String, _ kind: TaskKind, _ step: UInt64) -> Void)?
    /// Given to the worker's ShardRunner (see ShardRunner.inputHook).
    public var shardInput: ShardRunner.InputHook?
    /// The OpenBLAS core name the worker reports in its HELLO instead of its own (to test the
    /// coordinator's kernel check on one machine).
    public var reportedBLASCore: String?

    public init(
        beforeTask: (@Sendable (_ worker: String, _ kind: TaskKind, _ step: UInt64) -> Void)? = nil,
        shardInput: ShardRunner.InputHook? = nil, reportedBLASCore: String? = nil
    ) {
        self.beforeTask = beforeTask
        self.shardInput = shardInput
        self.reportedBLASCore = reportedBLASCore
    }
}

/// What a worker's backend is made from: the job as the worker loaded it.
public struct WorkerJob {
    public let config: TrainingConfig
    public let network: Network
    public let data: DatasetPair
    public let identity: JobIdentity
}

public final class Worker {
    let options: WorkerOptions
    public var log: (String) -> Void = Console.line
    public var faultHooks = WorkerFaultHooks()
    /// How this worker computes its shards; nil: on its own lanes (LaneShardBackend).
    public var makeBackend: ((WorkerJob) throws -> any ShardBackend)?
    private let connector: any ClientConnector
    /// The main channel, connected once the model (and so the largest message) is known.
    private var transport: (any ClientTransport)?
    private var backend: (any ShardBackend)?
    /// What tasks are checked against: the model and data this worker loaded.
    private var network: Network?
    private var data: DatasetPair?
    private var identity: JobIdentity?
    /// Samples per work unit (the ghost batch).
    private var unitSize = 0
    private let name: String
    private var heartbeat: WorkerHeartbeat?
    /// Malformed messages, at most one line per interval (see RepeatedReports).
    private var reports = RepeatedReports()
    private var coordinatorTimeout = 30.0
    /// Messages that arrived while a task waited for a GRANT, handled after it.
    private var pending: [WireEnvelope] = []

    /// A worker of the ZeroMQ coordinator at `options.endpoint`.
    public convenience init(options: WorkerOptions) throws {
        let name = Worker.name(options)
        let zeroMQ = ZMQConnector(endpoint: options.endpoint, workerName: name, security: options.security)
        // On the coordinator's host, large frames go through shared memory (SharedMemoryTransport).
        try self.init(options: options, connector: SharedMemoryConnector(wrapping: zeroMQ))
    }

    /// A worker that reaches its coordinator through `connector`.
    public init(options: WorkerOptions, connector: any ClientConnector) throws {
        self.options = options
        self.connector = connector
        name = Worker.name(options)
    }

    /// The name in the coordinator's log: `options.name`, or host:pid.
    private static func name(_ options: WorkerOptions) -> String {
        options.name.isEmpty ? "\(ProcessInfo.processInfo.hostName):\(getpid())" : options.name
    }

    /// Sends on `channel`, by default the main one.
    private func send(_ message: WireMessage, step: UInt64 = 0, shard: UInt32 = 0, on channel: (any ClientTransport)? = nil) throws {
        guard let target = channel ?? transport else { throw TransportError.closed }
        try target.send(WireProtocol.encode(WireEnvelope(jobID: identity?.jobID ?? .zero, step: step, shardID: shard, message: message)))
    }

    /// The OpenBLAS kernel this worker computes with, as it tells the coordinator.
    private var blasCore: String { faultHooks.reportedBLASCore ?? BLASThreads.coreName }

    private func hello(on channel: (any ClientTransport)? = nil) throws {
        try send(.hello(HelloMessage(
            jobID: identity?.jobID ?? .zero, dataFingerprint: identity?.dataFingerprint ?? .zero,
            capabilities: backend?.canMeet == true ? [.train, .evaluate, .meet] : [.train, .evaluate],
            lanes: UInt32(clamping: max(backend?.lanes ?? options.threads, 1)), blasCore: blasCore,
            workerName: name, processID: UInt32(getpid()))), on: channel)
    }

    /// Wait for the coordinator's WELCOME (or ERROR) to a HELLO on `channel` (by default the main one).
    private func awaitWelcome(on channel: (any ClientTransport)? = nil) throws -> WelcomeMessage {
        guard let source = channel ?? transport else { throw TransportError.closed }
        let deadline = MonotonicClock.now() + options.handshakeTimeoutSeconds
        while MonotonicClock.now() < deadline {
            guard let frames = try source.receive(timeout: .milliseconds(200)) else { continue }
            let envelope: WireEnvelope
            do {
                envelope = try WireProtocol.decode(frames)
            } catch let error as WireError {
                if case .unsupportedVersion(let version) = error {
                    throw WorkerRefused(description: "the coordinator speaks wire protocol version \(version), this worker speaks \(WireProtocol.version): run the same ssgd build on every node")
                }
                dropped(error)
                continue
            }
            switch envelope.message {
            case .welcome(let welcome): return welcome
            case .error(let error): throw WorkerRefused(description: "the coordinator refused this worker: \(error.message)")
            case .shutdown(let shutdown): throw WorkerRefused(description: "the coordinator shut down: \(shutdown.reason)")
            default: continue
            }
        }
        throw WorkerRefused(description: "no answer from a coordinator at \(options.endpoint) within \(Int(options.handshakeTimeoutSeconds)) s; is it running, and is the endpoint right? \(keysHint)")
    }

    /// The first HELLO, then the coordinator's WELCOME, on `channel` (by default the main one).
    private func join(on channel: (any ClientTransport)? = nil) throws -> WelcomeMessage {
        do {
            try hello(on: channel)
            return try awaitWelcome(on: channel)
        } catch TransportError.connectionLost {
            // Before any WELCOME, a connection ended for good is a refused ZeroMQ handshake.
            throw WorkerRefused(description: "the coordinator at \(options.endpoint) closed the connection during the handshake. \(keysHint)")
        }
    }

    /// What to check when a handshake fails: the security each side runs with.
    private var keysHint: String {
        options.security == nil
            ? "If the coordinator runs with CURVE keys (its start-up line says CURVE), give this worker --curve-secret-key and --curve-server-key."
            : "With CURVE, check that this worker's public key is in the coordinator's allow-list, that --curve-server-key is the coordinator's public key, and that the coordinator runs with CURVE keys."
    }

    /// Handshake, then serve tasks until SHUTDOWN.
    public func run() throws {
        var config: TrainingConfig
        if let path = options.configPath {
            config = try TrainingConfig.load(path: path)
        } else {
            let asking = try connector.connect(.configuration, maximumFrameBytes: WireLimits.largestControlFrameBytes)
            defer { asking.close() }
            config = try TrainingConfig.parse(yaml: try join(on: asking).config)
        }
        if let dataPath = options.dataPath { config.dataPath = dataPath }
        try config.validate()
        // Lanes: each lane runs OpenBLAS single-threaded (DESIGN §3).
        BLASThreads.set(1)
        let (data, network) = try TrainingSession.loadDataAndModel(config)
        let identity = JobIdentity(config: config, dataFingerprint: data.fingerprint)
        self.identity = identity
        self.network = network
        self.data = data
        unitSize = config.ghostBatch
        let backend: any ShardBackend
        if let makeBackend {
            backend = try makeBackend(WorkerJob(config: config, network: network, data: data, identity: identity))
        } else {
            let runner = try LaneRunner(network: network, data: data, config: config, lanes: max(options.threads, 1))
            runner.inputHook = faultHooks.shardInput
            backend = LaneShardBackend(runner: runner)
        }
        self.backend = backend
        let main = try connector.connect(.main, maximumFrameBytes: WireLimits.largestFrameBytes(WireJobSizes(config: config, network: network, data: data)))
        transport = main
        let welcome = try join()
        log("worker \(name) joined as #\(welcome.workerIndex) (\(network.parameterCount) parameters, \(data.train.count) training samples, \(backend.lanes) lane(s), OpenBLAS \(blasCore))")
        coordinatorTimeout = config.coordinatorTimeout
        let heartbeat = WorkerHeartbeat(
            connector: connector, jobID: identity.jobID,
            interval: Double(welcome.heartbeatIntervalMilliseconds) / 1000)
        self.heartbeat = heartbeat
        heartbeat.start()
        defer { heartbeat.stop() }
        try serve(main)
    }

    private func dropped(_ error: WireError) {
        let coordinator = PeerID(Array(options.endpoint.utf8))
        if let line = reports.report("warning: dropped a malformed message: \(error)", topic: "dropped", from: coordinator, at: MonotonicClock.now()) {
            log(line)
        }
    }

    /// A restarted coordinator (or one that declared this worker dead) asked us to join again.
    private func rejoin() throws {
        log("worker \(name): the coordinator does not know this worker (restarted, or it declared us dead); joining again")
        // Not join(): after a WELCOME, a connection that ended is not a refused handshake.
        try hello()
        let welcome = try awaitWelcome()
        log("worker \(name) rejoined as #\(welcome.workerIndex)")
    }

    private func serve(_ transport: any ClientTransport) throws {
        var lostReported = false
        while true {
            if let heartbeat {
                if heartbeat.rejoinRequested.exchange(false, ordering: .relaxed) {
                    try rejoin()
                    heartbeat.heard()
                    lostReported = false
                }
                let silence = heartbeat.silence
                if silence > coordinatorTimeout && !lostReported {
                    log("worker \(name): no word from the coordinator at \(options.endpoint) for \(Int(silence)) s; waiting for it (reconnecting with backoff)")
                    lostReported = true
                }
                if silence > options.giveUpSeconds {
                    throw WorkerRefused(description: "the coordinator at \(options.endpoint) has been silent for \(Int(silence)) s; giving up")
                }
            }
            try backend?.idle()
            let envelope: WireEnvelope
            if !pending.isEmpty {
                envelope = pending.removeFirst()
            } else {
                guard let received = try receive(on: transport) else { continue }
                envelope = received
                if lostReported {
                    log("worker \(name): the coordinator is back")
                    lostReported = false
                }
            }
            switch envelope.message {
            case .task(let task):
                heartbeat?.busy.store(true, ordering: .relaxed)
                defer { heartbeat?.busy.store(false, ordering: .relaxed) }
                do {
                    try perform(task, step: envelope.step, shard: envelope.shardID)
                } catch let error as WorkerTaskError {
                    try? send(.error(ErrorMessage(code: .configInvalid, message: error.description)))
                    throw error
                } catch let abandoned as TaskAbandoned {
                    // Its units were never summed into a result; the coordinator re-issues what it needs.
                    log("worker \(name): \(abandoned.description)")
                }
            case .shutdown(let shutdown):
                log("worker \(name): shutting down (\(shutdown.reason))")
                backend?.shutdown(reason: shutdown.reason)
                return
            case .error(let error) where error.code == .unknownWorker:
                try rejoin()
            case .error(let error):
                throw WorkerRefused(description: "the coordinator reported: \(error.message)")
            default:
                continue
            }
        }
    }

    private func perform(_ task: TaskMessage, step: UInt64, shard: UInt32) throws {
        guard let backend, let network, let data else { return }
        faultHooks.beforeTask?(name, task.kind, step)
        let result: ResultMessage
        switch task.kind {
        case .train:
            guard task.parameters.count == network.parameterCount, Int(task.unitSize) == unitSize else {
                throw WorkerTaskError(description: "task does not fit this worker's model: \(task.parameters.count) parameters of unit size \(task.unitSize), model has \(network.parameterCount) of \(unitSize)")
            }
            let limit = data.train.count
            guard task.sampleIndices.allSatisfy({ $0 >= 0 && Int($0) < limit }) else {
                throw WorkerTaskError(description: "train task names samples outside this worker's training set of \(limit)")
            }
            guard task.end == .whole || backend.canMeet else {
                throw WorkerTaskError(description: "the coordinator sent a task that meets another, and this worker did not offer to (it has several lane groups or hands its shards on)")
            }
            result = try backend.train(task, step: step, claims: task.end == .whole ? nil : UnitClaims(
                ask: { try self.send(.claim(ClaimMessage(count: 1)), step: step, shard: shard) },
                answer: { try self.awaitGrant(step: step, shard: shard) }))
        case .evaluate:
            guard task.parameters.count == network.parameterCount + network.state.count else {
                throw WorkerTaskError(description: "evaluation task carries \(task.parameters.count) values, the model needs \(network.parameterCount + network.state.count)")
            }
            let split: Split = task.split == .train ? .train : .test
            let limit = data.dataset(split).count
            guard task.sampleIndices.allSatisfy({ $0 >= 0 && Int($0) < limit }) else {
                throw WorkerTaskError(description: "evaluation task names samples outside this worker's \(split) set of \(limit)")
            }
            result = try backend.evaluate(task, step: step)
        }
        try send(.result(result), step: step, shard: shard)
    }

    /// The next message on the main channel within 200 ms (nil: none, or one dropped as malformed).
    private func receive(on transport: any ClientTransport) throws -> WireEnvelope? {
        guard let frames = try transport.receive(timeout: .milliseconds(200)) else { return nil }
        heartbeat?.heard()
        do {
            return try WireProtocol.decode(frames)
        } catch let error as WireError {
            dropped(error)
            return nil
        }
    }

    /// Waits for the coordinator's GRANT to this worker's CLAIM for the task (step, shard): the
    /// units granted and whether to claim ahead, nil when none are left. Whatever else arrives
    /// meanwhile is kept for later; a SHUTDOWN, an ERROR or silence beyond the coordinator
    /// timeout abandons the task.
    private func awaitGrant(step: UInt64, shard: UInt32) throws -> (units: Range<Int>, claimAhead: Bool)? {
        guard let transport else { throw TransportError.closed }
        let deadline = MonotonicClock.now() + coordinatorTimeout
        while MonotonicClock.now() < deadline {
            guard let envelope = try receive(on: transport) else { continue }
            switch envelope.message {
            case .grant(let grant) where envelope.step == step && envelope.shardID == shard:
                let first = Int(grant.firstUnit)
                return grant.unitCount == 0 ? nil : (first..<(first + Int(grant.unitCount)), grant.claimAhead)
            case .grant:
                continue  // a late answer for a task this worker no longer computes
            case .shutdown, .error:
                pending.append(envelope)
                throw TaskAbandoned(description: "step \(step) shard \(shard) abandoned: the coordinator sent \(envelope.kind) while it waited for units")
            default:
                pending.append(envelope)
            }
        }
        throw TaskAbandoned(description: "step \(step) shard \(shard) abandoned: no units granted within \(Int(coordinatorTimeout)) s (coordinator_timeout)")
    }

    public func close() {
        backend?.shutdown(reason: "its parent worker stopped")
        reports.flush(at: MonotonicClock.now(), all: true).forEach(log)
        transport?.close()
    }
}

struct WorkerTaskError: Error, CustomStringConvertible {
    var description: String
}

/// A task given up without a result (the coordinator went away or moved on while it waited).
struct TaskAbandoned: Error, CustomStringConvertible {
    var description: String
}
