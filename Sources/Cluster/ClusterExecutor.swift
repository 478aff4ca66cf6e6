import Engine
import Foundation
import Training

// The coordinator's executor (DESIGN §4–§5): a ROUTER socket that admits workers after a
// handshake, splits each step's work units into contiguous shards over the live workers, sends
// parameters (zero-copy) and sample indices, and combines the returned block sums in the fixed
// unit tree — never in arrival order — so the result equals the in-process one bit for bit.

public final class ClusterExecutor: GradientExecutor {
    struct WorkerRecord {
        var routingID: [UInt8]
        var name: String
        var index: UInt32
        var processID: UInt32
    }

    public let settings: ClusterSettings
    public let identity: JobIdentity
    public private(set) var endpoint: String
    /// Counters a status line or a test can read.
    public private(set) var droppedMessages = 0
    public private(set) var ignoredResults = 0
    /// Called often while waiting; a non-nil reason aborts the run (used by `launch` to stop
    /// when a worker process dies).
    public var abortCheck: (() -> String?)?
    public var log: (String) -> Void = Console.line

    private let config: TrainingConfig
    private let configYAML: String
    private let parameterCount: Int
    private let stateCount: Int
    private let statisticsPerUnit: Int
    private let socket: ZMQSocket
    private var workers: [WorkerRecord] = []
    private var nextWorkerIndex: UInt32 = 0
    private let tracker = ZMQSendTracker()
    private var blockPool: [FloatBuffer] = []
    private let evaluationPayload: FloatBuffer  // parameters then BN state, for evaluate tasks
    private var evaluationCounter: UInt64 = 0
    private var lastDropReport = 0.0

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
        try socket.bind(settings.bind)
        endpoint = (try? socket.lastEndpoint) ?? settings.bind
    }

    public var liveWorkers: Int { workers.count }
    public var workerNames: [String] { workers.map(\.name) }

    // MARK: - Messages in

    private func send(_ message: WireMessage, to routingID: [UInt8], step: Int = 0, shard: UInt32 = 0) throws {
        let frames = try WireProtocol.encode(WireEnvelope(jobID: identity.jobID, step: UInt64(step), shardID: shard, message: message))
        try socket.send(to: routingID, frames)
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
        switch envelope.message {
        case .hello(let hello):
            handshake(routingID, hello)
            return nil
        case .heartbeat:
            return nil
        case .error(let error):
            if let worker = workers.first(where: { $0.routingID == routingID }) {
                log("worker \(worker.name) reported an error and left: \(error.message)")
                workers.removeAll { $0.routingID == routingID }
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
            WireMessage.welcome(WelcomeMessage(workerIndex: index, heartbeatIntervalMilliseconds: self.settings.heartbeatIntervalMilliseconds, config: self.configYAML))
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
        let record = WorkerRecord(routingID: routingID, name: hello.workerName, index: nextWorkerIndex, processID: hello.processID)
        nextWorkerIndex += 1
        do {
            try send(welcome(record.index), to: routingID)
            workers.append(record)
            log("worker \(record.name) joined (\(workers.count) live)")
        } catch {
            log("warning: worker \(record.name) vanished during its handshake: \(error)")
        }
    }

    /// Block until `count` workers have joined or the wait expires.
    public func waitForWorkers(_ count: Int) throws {
        let deadline = MonotonicClock.now() + settings.waitForWorkersSeconds
        var announced = false
        while workers.count < count {
            if !announced {
                log("waiting for \(count - workers.count) more worker(s) on \(endpoint)")
                announced = true
            }
            if MonotonicClock.now() > deadline {
                throw ClusterError("only \(workers.count) of \(count) worker(s) joined within \(Int(settings.waitForWorkersSeconds)) s on \(endpoint); start workers with: ssgd worker --connect \(endpoint)")
            }
            _ = try pump(timeout: .milliseconds(100))
        }
    }

    /// Admit workers that knocked since the last step, without blocking.
    private func admitNewcomers() throws {
        while try pump(timeout: .zero) != nil {
            ignoredResults += 1
        }
    }

    // MARK: - Steps

    public func computeStep(_ task: StepTask, parameters: FloatBuffer, gradientSum: FloatBuffer) throws -> StepStatistics {
        try admitNewcomers()
        if workers.isEmpty { try waitForWorkers(1) }
        let unitSize = config.ghostBatch
        let units = task.indices.count / unitSize
        let started = MonotonicClock.now()
        let shards = ShardPlan.ranges(units: units, workers: workers.count)
        var assignment = [[UInt8]]()
        let payload = WireFloats(parameters, tracker: tracker)
        for (k, range) in shards.enumerated() {
            let worker = workers[k]
            let message = TaskMessage(
                kind: .train, epoch: UInt64(task.epoch), firstUnit: UInt32(range.lowerBound), unitCount: UInt32(range.count),
                unitSize: UInt32(unitSize), split: .train,
                sampleIndices: Array(task.indices[(range.lowerBound * unitSize)..<(range.upperBound * unitSize)]),
                parameters: payload)
            try send(.task(message), to: worker.routingID, step: task.step, shard: UInt32(k))
            assignment.append(worker.routingID)
        }
        var results = [ResultMessage?](repeating: nil, count: shards.count)
        try collect(step: task.step, kind: .train, assignment: assignment, into: &results)
        let received = MonotonicClock.now()

        // Reduce in the unit tree: blocks into pooled aligned buffers, then combine.
        var sums = [UnitBlock: UnsafeMutablePointer<Float>]()
        var poolIndex = 0
        var statistics = StepStatistics()
        var perUnitNormalization = [Float]()
        perUnitNormalization.reserveCapacity(units * statisticsPerUnit)
        var slowest = 0.0
        for case let result? in results {
            for block in result.gradientBlocks {
                guard block.gradient.count == parameterCount else {
                    throw ClusterError("a worker returned a gradient of \(block.gradient.count) values, the model has \(parameterCount): mismatched builds?")
                }
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
            perUnitNormalization.append(contentsOf: result.batchNormStatistics.toArray())
            slowest = max(slowest, result.computeSeconds)
        }
        try UnitTree.combine(units: units, sums: sums, length: parameterCount, into: gradientSum.pointer)
        statistics.averageNormalization(perUnitNormalization, units: units, width: statisticsPerUnit)
        // The parameters may change only once libzmq has let go of the zero-copy frames.
        _ = tracker.waitUntilReleased(timeout: .seconds(10))
        statistics.computeSeconds = slowest
        statistics.transferSeconds = max(0, received - started - slowest)
        statistics.reduceSeconds = MonotonicClock.now() - received
        statistics.liveWorkers = workers.count
        return statistics
    }

    /// Wait for one result per shard of `step`, matched by (step, shard, sender); anything else
    /// is late, duplicate or foreign and is ignored.
    private func collect(step: Int, kind: TaskKind, assignment: [[UInt8]], into results: inout [ResultMessage?]) throws {
        let deadline = MonotonicClock.now() + settings.resultTimeoutSeconds
        var missing = results.count
        while missing > 0 {
            if MonotonicClock.now() > deadline {
                throw ClusterError("no result for step \(step) from \(missing) worker(s) within \(Int(settings.resultTimeoutSeconds)) s")
            }
            guard let (routingID, envelope) = try pump(timeout: .milliseconds(100)) else { continue }
            guard case .result(let result) = envelope.message else { continue }
            let shard = Int(envelope.shardID)
            guard envelope.jobID == identity.jobID, Int(envelope.step) == step, shard < results.count,
                  assignment[shard] == routingID, results[shard] == nil, result.taskKind == kind
            else {
                ignoredResults += 1
                continue
            }
            results[shard] = result
            missing -= 1
        }
    }

    public func evaluate(split: Split, sampleCount: Int, parameters: FloatBuffer, state: FloatBuffer) throws -> EvaluationResult {
        try admitNewcomers()
        if workers.isEmpty { try waitForWorkers(1) }
        let unitSize = config.ghostBatch
        let chunks = (sampleCount + unitSize - 1) / unitSize
        evaluationPayload.pointer.update(from: parameters.pointer, count: parameterCount)
        (evaluationPayload.pointer + parameterCount).update(from: state.pointer, count: stateCount)
        // Evaluations are numbered in the step field's high half so they never match a train step.
        evaluationCounter += 1
        let tag = Int(UInt64(1) << 62 | evaluationCounter)
        let shards = ShardPlan.ranges(units: chunks, workers: workers.count)
        var assignment = [[UInt8]]()
        let payload = WireFloats(evaluationPayload, tracker: tracker)
        for (k, range) in shards.enumerated() {
            let first = range.lowerBound * unitSize
            let end = min(range.upperBound * unitSize, sampleCount)
            let message = TaskMessage(
                kind: .evaluate, epoch: 0, firstUnit: UInt32(range.lowerBound), unitCount: UInt32(range.count),
                unitSize: UInt32(unitSize), split: split == .train ? .train : .test,
                sampleIndices: (first..<end).map { Int32($0) }, parameters: payload)
            try send(.task(message), to: workers[k].routingID, step: tag, shard: UInt32(k))
            assignment.append(workers[k].routingID)
        }
        var results = [ResultMessage?](repeating: nil, count: shards.count)
        try collect(step: tag, kind: .evaluate, assignment: assignment, into: &results)
        _ = tracker.waitUntilReleased(timeout: .seconds(10))
        var losses = [Double]()
        var correct = [Int]()
        for case let result? in results {
            losses.append(contentsOf: result.lossSums)
            correct.append(contentsOf: result.correctCounts.map(Int.init))
        }
        return EvaluationResult(chunkLossSums: losses, chunkCorrect: correct, samples: sampleCount)
    }

    /// Tell every worker to exit, then close the socket.
    public func shutdown() {
        shutdown(reason: "training finished")
    }

    public func shutdown(reason: String) {
        for worker in workers {
            try? send(.shutdown(ShutdownMessage(reason: reason)), to: worker.routingID)
        }
        workers.removeAll()
        // Give libzmq a moment to flush the shutdown messages before the socket closes.
        Thread.sleep(forTimeInterval: 0.2)
        socket.close()
    }
}
