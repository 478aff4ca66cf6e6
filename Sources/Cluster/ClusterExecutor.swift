import Data
import Engine
import Foundation
import Training

// The coordinator's executor (DESIGN §4–§6): a ROUTER socket that admits workers after a
// handshake, splits each step's work units into contiguous shards over the live workers, sends
// parameters (zero-copy) and sample indices, and combines the returned block sums in the fixed
// unit tree — never in arrival order — so the result equals the in-process one bit for bit.
//
// Faults: a worker silent for `workerTimeoutSeconds` (no heartbeat on its side socket, no
// message on its main one) or unreachable is declared dead and its shard is re-issued to a live
// worker with the same step and shard id; late or duplicate results are matched by
// (step, shard, sender) and ignored. With no live worker left it says so once and waits up to
// `waitForWorkersSeconds` for one to join. Heartbeats from a worker it does not know (it
// restarted, or declared that worker dead) get ERROR unknownWorker: the worker handshakes again
// and joins at the next step.

public final class ClusterExecutor: GradientExecutor {
    struct WorkerRecord {
        var routingID: [UInt8]
        var name: String
        var index: UInt32
        var lastSeen: Double
    }

    public let settings: ClusterSettings
    public let identity: JobIdentity
    public let endpoint: String
    public private(set) var droppedMessages = 0
    public private(set) var ignoredResults = 0
    public private(set) var reassignments = 0
    /// Bytes this coordinator sent and received (all frames), for the per-step traffic figure.
    public private(set) var bytesMoved = 0
    /// Called often while waiting; a non-nil reason aborts the run (`launch` uses it to stop
    /// when a worker fails for good).
    public var abortCheck: (() -> String?)?
    public var log: (String) -> Void = Console.line

    private let config: TrainingConfig
    private let configYAML: String
    private let parameterCount: Int
    private let stateCount: Int
    private let statisticsPerUnit: Int
    private let socket: ZMQSocket
    private let authenticator: ZAPAuthenticator?
    private let status: StatusServer?
    private var workers: [WorkerRecord] = []
    private var nextWorkerIndex: UInt32 = 0
    private let tracker = ZMQSendTracker()
    private var blockPool: [FloatBuffer] = []
    private let evaluationPayload: FloatBuffer  // parameters then BN state, for evaluate tasks
    private var evaluationCounter: UInt64 = 0
    private var lastDropReport = 0.0
    private var recentReassignments: [ClusterStatus.Reassignment] = []
    private var closed = false

    public init(config: TrainingConfig, identity: JobIdentity, network: Network, settings: ClusterSettings) throws {
        self.config = config
        self.configYAML = config.yaml()
        self.identity = identity
        self.settings = settings
        parameterCount = network.parameterCount
        stateCount = network.state.count
        statisticsPerUnit = 2 * network.normalizationChannels
        evaluationPayload = FloatBuffer(count: parameterCount + stateCount)
        socket = try ZMQSocket(.router)
        try socket.setRouterMandatory(true)
        try socket.setSendHighWaterMark(0)
        try socket.setReceiveHighWaterMark(0)
        if let security = settings.security {
            // The authenticator must run before the bind and stop after the close: without it
            // libzmq would let in any CURVE client that knows the server key.
            let authenticator = try ZAPAuthenticator(allowList: security.allowList, onRefusal: { refusal in
                Console.line("refused a connection: \(refusal)")
            })
            try authenticator.start()
            try secureServer(socket, keys: security.keyPair, authenticator: authenticator)
            self.authenticator = authenticator
        } else {
            authenticator = nil
        }
        do {
            try socket.bind(settings.bind)
            status = try settings.statusEndpoint.map { try StatusServer(endpoint: $0) }
        } catch {
            socket.close()
            authenticator?.stop()
            throw error
        }
        endpoint = (try? socket.lastEndpoint) ?? settings.bind
    }

    public var liveWorkers: Int { workers.count }
    public var workerNames: [String] { workers.map(\.name) }
    public var statusEndpoint: String? { status?.endpoint }

    // MARK: - Messages in

    private func send(_ message: WireMessage, to routingID: [UInt8], step: Int = 0, shard: UInt32 = 0) throws {
        let frames = try WireProtocol.encode(WireEnvelope(jobID: identity.jobID, step: UInt64(step), shardID: shard, message: message))
        try socket.send(to: routingID, frames)
        bytesMoved += frames.reduce(routingID.count) { $0 + $1.byteCount }
    }

    private func worker(for routingID: [UInt8]) -> Int? {
        if let index = workers.firstIndex(where: { $0.routingID == routingID }) { return index }
        if routingID.count > WorkerHeartbeat.suffix.count, Array(routingID.suffix(WorkerHeartbeat.suffix.count)) == WorkerHeartbeat.suffix {
            let base = Array(routingID.dropLast(WorkerHeartbeat.suffix.count))
            return workers.firstIndex { $0.routingID == base }
        }
        return nil
    }

    /// Receive and handle one message; returns results (and their sender) for the caller.
    private func pump(timeout: Duration) throws -> (routingID: [UInt8], envelope: WireEnvelope)? {
        if let reason = abortCheck?() { throw ClusterError(reason) }
        let frames: [ZMQReceivedFrame]?
        do {
            frames = try socket.receive(timeout: timeout)
        } catch let error as ZMQError where error.isInterrupted {
            return nil
        }
        guard let frames else { return nil }
        bytesMoved += frames.reduce(0) { $0 + $1.byteCount }
        let routingID: [UInt8]
        let envelope: WireEnvelope
        do {
            let split = try WireProtocol.splitRoutingID(frames)
            routingID = split.routingID
            do {
                envelope = try WireProtocol.decode(split.frames)
            } catch let error as WireError {
                if case .unsupportedVersion(let version) = error {
                    refuse(routingID, code: .versionMismatch,
                           "worker speaks wire protocol version \(version), this coordinator speaks \(WireProtocol.version): run the same ssgd build on every node")
                    return nil
                }
                throw error
            }
        } catch let error as WireError {
            drop("malformed message: \(error)")
            return nil
        }
        let known = worker(for: routingID)
        if let known { workers[known].lastSeen = MonotonicClock.now() }
        switch envelope.message {
        case .hello(let hello):
            handshake(routingID, hello)
            return nil
        case .heartbeat(let heartbeat):
            if known != nil {
                try? send(.heartbeat(HeartbeatMessage(sequence: heartbeat.sequence, busy: false)), to: routingID)
            } else if envelope.jobID == identity.jobID {
                // A worker of this job we do not know (we restarted, or declared it dead).
                try? send(.error(ErrorMessage(code: .unknownWorker, message: "unknown worker: handshake again")), to: routingID)
            } else {
                drop("heartbeat from a stranger")
            }
            return nil
        case .error(let error):
            if let known {
                log("worker \(workers[known].name) reported an error and left: \(error.message)")
                workers.remove(at: known)
            } else {
                drop("error from an unknown peer: \(error.message)")
            }
            return nil
        case .result:
            return (routingID, envelope)
        case .welcome, .task, .shutdown:
            drop("unexpected \(envelope.kind) from a worker")
            return nil
        }
    }

    private func drop(_ reason: String) {
        droppedMessages += 1
        let now = MonotonicClock.now()
        if now - lastDropReport > 5 {
            log("warning: dropped \(reason) (\(droppedMessages) dropped so far)")
            lastDropReport = now
        }
    }

    private func refuse(_ routingID: [UInt8], code: WireErrorCode, _ message: String) {
        log("refused a worker: \(message)")
        try? send(.error(ErrorMessage(code: code, message: message)), to: routingID)
    }

    /// HELLO with a zero job id asks for the config; HELLO with ids asks to join.
    private func handshake(_ routingID: [UInt8], _ hello: HelloMessage) {
        if hello.protocolVersion != WireProtocol.version {
            refuse(routingID, code: .versionMismatch,
                   "worker \(hello.workerName) speaks wire protocol version \(hello.protocolVersion), this coordinator speaks \(WireProtocol.version): run the same ssgd build on every node")
            return
        }
        let welcome = { (index: UInt32) in
            WireMessage.welcome(WelcomeMessage(
                workerIndex: index, heartbeatIntervalMilliseconds: UInt32(max(1, (self.settings.heartbeatIntervalSeconds * 1000).rounded())),
                config: self.configYAML))
        }
        if hello.jobID == .zero {
            try? send(welcome(UInt32.max), to: routingID)
            return
        }
        if hello.dataFingerprint != identity.dataFingerprint {
            refuse(routingID, code: .dataMismatch,
                   "worker \(hello.workerName) has another data set (fingerprint \(hello.dataFingerprint.short)…, coordinator \(identity.dataFingerprint.short)…): every node needs the same data files and preprocessing (check --data / data_path)")
            return
        }
        if hello.jobID != identity.jobID {
            refuse(routingID, code: .jobMismatch,
                   "worker \(hello.workerName) belongs to another job (job id \(hello.jobID.short)…, coordinator \(identity.jobID.short)…): it was started with a different training config")
            return
        }
        workers.removeAll { $0.routingID == routingID }
        let record = WorkerRecord(routingID: routingID, name: hello.workerName, index: nextWorkerIndex, lastSeen: MonotonicClock.now())
        nextWorkerIndex += 1
        do {
            try send(welcome(record.index), to: routingID)
            workers.append(record)
            log("worker \(record.name) joined (\(workers.count) live)")
        } catch {
            log("warning: worker \(record.name) vanished during its handshake: \(error)")
        }
    }

    /// Handle everything already queued (so queued heartbeats count before liveness is judged).
    private func drain(into results: inout [(routingID: [UInt8], envelope: WireEnvelope)]) throws {
        while let received = try pump(timeout: .zero) { results.append(received) }
    }

    /// Declare workers silent for longer than the timeout dead; returns their routing ids.
    @discardableResult
    private func buryTheSilent() -> [[UInt8]] {
        let now = MonotonicClock.now()
        let silent = workers.filter { now - $0.lastSeen > settings.workerTimeoutSeconds }
        for worker in silent {
            workers.removeAll { $0.routingID == worker.routingID }
            log(String(format: "worker %@ declared dead: silent for %.1f s (worker_timeout %.1f s); %d live",
                       worker.name, now - worker.lastSeen, settings.workerTimeoutSeconds, workers.count))
        }
        return silent.map(\.routingID)
    }

    private func declareDead(_ routingID: [UInt8], reason: String) {
        guard let index = workers.firstIndex(where: { $0.routingID == routingID }) else { return }
        log("worker \(workers[index].name) declared dead: \(reason); \(workers.count - 1) live")
        workers.remove(at: index)
    }

    /// Block until `count` workers have joined or the wait expires.
    public func waitForWorkers(_ count: Int) throws {
        let deadline = MonotonicClock.now() + settings.waitForWorkersSeconds
        var announced = false
        var ignored = [(routingID: [UInt8], envelope: WireEnvelope)]()
        while workers.count < count {
            if !announced {
                log("waiting for \(count - workers.count) more worker(s) on \(endpoint)")
                announced = true
            }
            if MonotonicClock.now() > deadline {
                throw ClusterError("only \(workers.count) of \(count) worker(s) joined within \(Int(settings.waitForWorkersSeconds)) s on \(endpoint) (wait_for_workers); start workers with: ssgd worker --connect \(endpoint); the last checkpoint is kept")
            }
            if let received = try pump(timeout: .milliseconds(100)) { ignored.append(received) }
            buryTheSilent()
        }
        ignoredResults += ignored.count
    }

    /// Between steps: admit newcomers, bury the silent, ignore stale results.
    private func housekeeping() throws {
        var stale = [(routingID: [UInt8], envelope: WireEnvelope)]()
        try drain(into: &stale)
        ignoredResults += stale.count
        buryTheSilent()
        if workers.isEmpty {
            log("no live workers; waiting up to \(Int(settings.waitForWorkersSeconds)) s (wait_for_workers) for one to join")
            try waitForWorkers(1)
        }
    }

    // MARK: - Sharded work

    /// Send `tasks` (one per shard) to live workers and collect one result per shard, re-issuing
    /// a shard whose worker dies. Results are matched by (step, shard, sender).
    private func run(tasks: [TaskMessage], step: Int, kind: TaskKind) throws -> [ResultMessage] {
        var assignee = [[UInt8]?](repeating: nil, count: tasks.count)
        var results = [ResultMessage?](repeating: nil, count: tasks.count)
        var missing = tasks.count

        func assign(_ shard: Int, preferring candidate: Int?, reason: String?) throws {
            while true {
                if workers.isEmpty {
                    log("all workers lost at step \(step); waiting up to \(Int(settings.waitForWorkersSeconds)) s (wait_for_workers) for one to join")
                    try waitForWorkers(1)
                }
                // Prefer the planned worker; else the live worker with the fewest open shards.
                let open = { (id: [UInt8]) in (0..<tasks.count).filter { assignee[$0] == id && results[$0] == nil }.count }
                let index = candidate.flatMap { $0 < workers.count ? $0 : nil }
                    ?? workers.indices.min { open(workers[$0].routingID) < open(workers[$1].routingID) }!
                let target = workers[index]
                do {
                    try send(.task(tasks[shard]), to: target.routingID, step: step, shard: UInt32(shard))
                    if let reason, let previous = assignee[shard] {
                        let from = String(decoding: previous.prefix { $0 != UInt8(ascii: "#") }, as: UTF8.self)
                        reassignments += 1
                        recentReassignments.append(.init(step: step, shard: shard, from: from, to: target.name, reason: reason))
                        if recentReassignments.count > 10 { recentReassignments.removeFirst() }
                        log("step \(step): shard \(shard) re-issued to \(target.name) (\(reason))")
                    }
                    assignee[shard] = target.routingID
                    return
                } catch let error as ZMQError where error.isPeerGone {
                    declareDead(target.routingID, reason: "unreachable")
                    return try assign(shard, preferring: nil, reason: reason ?? "worker unreachable")
                }
            }
        }

        for shard in tasks.indices { try assign(shard, preferring: shard, reason: nil) }
        var received = [(routingID: [UInt8], envelope: WireEnvelope)]()
        while missing > 0 {
            if let one = try pump(timeout: .milliseconds(50)) { received.append(one) }
            try drain(into: &received)
            for (routingID, envelope) in received {
                guard case .result(let result) = envelope.message else { continue }
                let shard = Int(envelope.shardID)
                guard envelope.jobID == identity.jobID, Int(envelope.step) == step, shard < tasks.count,
                      assignee[shard] == routingID, results[shard] == nil, result.taskKind == kind,
                      result.firstUnit == tasks[shard].firstUnit, result.unitCount == tasks[shard].unitCount
                else {
                    ignoredResults += 1
                    continue
                }
                if let problem = invalid(result, for: tasks[shard]) {
                    declareDead(routingID, reason: "it sent an invalid result (\(problem))")
                    continue
                }
                results[shard] = result
                missing -= 1
            }
            received.removeAll(keepingCapacity: true)
            buryTheSilent()
            for shard in tasks.indices where results[shard] == nil {
                if let owner = assignee[shard], !workers.contains(where: { $0.routingID == owner }) {
                    try assign(shard, preferring: nil, reason: "its worker died")
                }
            }
        }
        return results.compactMap { $0 }
    }

    /// Why a decoded result cannot be used for its task (sizes that disagree with this model).
    private func invalid(_ result: ResultMessage, for task: TaskMessage) -> String? {
        let units = Int(task.unitCount)
        if result.lossSums.count != units { return "\(result.lossSums.count) unit losses for \(units) units" }
        if let block = result.gradientBlocks.first(where: { $0.gradient.count != parameterCount }) {
            return "a gradient of \(block.gradient.count) values, the model has \(parameterCount)"
        }
        if task.kind == .train {
            if result.gradientBlocks.isEmpty { return "no gradient" }
            if result.batchStatistics.count != units * statisticsPerUnit {
                return "\(result.batchStatistics.count) batch-norm statistics, expected \(units * statisticsPerUnit)"
            }
        }
        return nil
    }

    public func computeStep(_ task: StepTask, parameters: FloatBuffer, gradientSum: FloatBuffer) throws -> StepStatistics {
        let started = MonotonicClock.now()
        let bytesBefore = bytesMoved
        try housekeeping()
        let unitSize = config.ghostBatch
        let units = task.indices.count / unitSize
        let payload = WireFloats(parameters, tracker: tracker)
        let tasks = ShardPlan.ranges(units: units, workers: workers.count).map { range in
            TaskMessage(
                kind: .train, epoch: UInt64(task.epoch), firstUnit: UInt32(range.lowerBound), unitCount: UInt32(range.count),
                unitSize: UInt32(unitSize), split: .train,
                sampleIndices: Array(task.indices[(range.lowerBound * unitSize)..<(range.upperBound * unitSize)]),
                parameters: payload)
        }
        let results = try run(tasks: tasks, step: task.step, kind: .train)
        let received = MonotonicClock.now()

        // Reduce in the unit tree: blocks into pooled aligned buffers, then combine.
        var sums = [UnitBlock: UnsafeMutablePointer<Float>]()
        var poolIndex = 0
        var statistics = StepStatistics()
        var perUnitNormalization = [Float]()
        perUnitNormalization.reserveCapacity(units * statisticsPerUnit)
        var slowest = 0.0
        for result in results {
            for block in result.gradientBlocks {
                if poolIndex == blockPool.count { blockPool.append(FloatBuffer(count: parameterCount)) }
                block.gradient.copy(into: blockPool[poolIndex].pointer)
                sums[UnitBlock(first: Int(block.firstUnit), count: Int(block.unitCount))] = blockPool[poolIndex].pointer
                poolIndex += 1
            }
            var outcomes = UnitOutcomes()
            outcomes.lossSums = result.lossSums
            outcomes.correct = result.correctCounts.map(Int.init)
            outcomes.samples = result.sampleCounts.map(Int.init)
            statistics.accumulate(outcomes)
            perUnitNormalization.append(contentsOf: result.batchStatistics.toArray())
            slowest = max(slowest, result.computeSeconds)
        }
        try UnitTree.combine(units: units, sums: sums, length: parameterCount, into: gradientSum.pointer)
        statistics.averageBatchStatistics(perUnitNormalization, units: units, width: statisticsPerUnit)
        // The parameters may change only once libzmq has let go of the zero-copy frames.
        _ = tracker.waitUntilReleased(timeout: .seconds(10))
        statistics.computeSeconds = slowest
        statistics.transferSeconds = max(0, received - started - slowest)
        statistics.reduceSeconds = MonotonicClock.now() - received
        statistics.liveWorkers = workers.count
        statistics.bytesMoved = bytesMoved - bytesBefore
        let wall = MonotonicClock.now() - started
        status?.update { snapshot in
            snapshot.state = "training"
            snapshot.step = task.step + 1
            snapshot.epoch = task.epoch
            snapshot.liveWorkers = workers.map(\.name)
            snapshot.lastStepSeconds = wall
            snapshot.droppedMessages = droppedMessages
            snapshot.ignoredResults = ignoredResults
            snapshot.recentReassignments = recentReassignments
        }
        return statistics
    }

    public func evaluate(split: Split, sampleCount: Int, parameters: FloatBuffer, state: FloatBuffer) throws -> EvaluationResult {
        try housekeeping()
        let unitSize = config.ghostBatch
        let chunks = (sampleCount + unitSize - 1) / unitSize
        evaluationPayload.pointer.update(from: parameters.pointer, count: parameterCount)
        (evaluationPayload.pointer + parameterCount).update(from: state.pointer, count: stateCount)
        // Evaluations are numbered with bit 62 set so they never match a training step.
        evaluationCounter += 1
        let tag = Int(UInt64(1) << 62 | evaluationCounter)
        let payload = WireFloats(evaluationPayload, tracker: tracker)
        let tasks = ShardPlan.ranges(units: chunks, workers: workers.count).map { range in
            let first = range.lowerBound * unitSize
            let end = min(range.upperBound * unitSize, sampleCount)
            return TaskMessage(
                kind: .evaluate, epoch: 0, firstUnit: UInt32(range.lowerBound), unitCount: UInt32(range.count),
                unitSize: UInt32(unitSize), split: split == .train ? .train : .test,
                sampleIndices: (first..<end).map { Int32($0) }, parameters: payload)
        }
        let results = try run(tasks: tasks, step: tag, kind: .evaluate)
        _ = tracker.waitUntilReleased(timeout: .seconds(10))
        var losses = [Double]()
        var correct = [Int]()
        for result in results {
            losses.append(contentsOf: result.lossSums)
            correct.append(contentsOf: result.correctCounts.map(Int.init))
        }
        return EvaluationResult(chunkLossSums: losses, chunkCorrect: correct, samples: sampleCount)
    }

    /// Tell every worker to exit, then close the sockets.
    public func shutdown() {
        shutdown(reason: "training finished")
    }

    public func shutdown(reason: String) {
        guard !closed else { return }
        closed = true
        for worker in workers {
            try? send(.shutdown(ShutdownMessage(reason: reason)), to: worker.routingID)
        }
        workers.removeAll()
        // Give libzmq a moment to flush the shutdown messages before the socket closes.
        Thread.sleep(forTimeInterval: 0.2)
        socket.close()
        authenticator?.stop()
        status?.stop()
    }
}
