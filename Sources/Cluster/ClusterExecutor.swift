import Data
import Engine
import Training
import Transport
import Wire

// The coordinator's executor (DESIGN §4–§6): admits workers after a handshake (Admission),
// splits each step's work units into contiguous shards over the live workers, sized by their
// measured speed (ShardBalance), tracks them (ShardRound),
// sends parameters (borrowed, not copied) and sample indices, and combines the returned block
// sums in the fixed unit tree — never in arrival order (ShardReducer) — so the result equals
// the in-process one bit for bit. It talks through a ServerTransport (ZeroMQ unless given
// another) and knows its workers as PeerIDs (Membership).
//
// Faults: a worker silent for `workerTimeoutSeconds` (nothing on either of its channels) or
// unreachable is declared dead and its shard is re-issued to a live worker with the same step
// and shard id; late or duplicate results are matched by (step, shard, sender) and ignored.
// With no live worker left it says so once and waits up to `waitForWorkersSeconds` for one to
// join. Heartbeats from a worker it does not know (it restarted, or declared that worker dead)
// get ERROR unknownWorker: the worker handshakes again and joins at the next step.
//
// Kernels: a worker whose OpenBLAS kernel differs from this process's is refused at HELLO
// (another kernel rounds differently), unless `settings.allowMixedKernels`; `workerKernels`
// names the kernels of the workers whose results counted.

public final class ClusterExecutor: GradientExecutor {
    public let settings: ClusterSettings
    public let identity: JobIdentity
    /// This process's OpenBLAS kernel (it computes the update; workers must match it).
    public let blasCore: String
    public var endpoint: String { transport.endpoint }
    public private(set) var droppedMessages = 0
    public internal(set) var ignoredResults = 0
    public private(set) var reassignments = 0
    /// Bytes this coordinator sent and received (all frames), for the per-step traffic figure.
    public var bytesMoved: Int { transport.trafficBytes }
    /// Called often while waiting; a non-nil reason aborts the run (`launch` uses it to stop
    /// when a worker fails for good).
    public var abortCheck: (() -> String?)?
    public var log: (String) -> Void = Console.line

    private let config: TrainingConfig
    private let configYAML: String
    private let parameterCount: Int
    private let stateCount: Int
    private let transport: any ServerTransport
    private let status: StatusServer?
    var membership = Membership()
    var stepDeadline: StepDeadline
    /// Each worker's measured speed, the last training cut (whose workers and units per
    /// worker), and the last cut logged (nil: equal).
    var balance = ShardBalance()
    private var lastCut: (peers: [PeerID], counts: [Int])?
    private var loggedCut: [String]?
    /// The units each worker computed in the last training step, and the pairs last said to meet.
    private var lastUnitsPerWorker: [ClusterStatus.WorkerUnits] = []
    private var loggedPairs: [String]?
    let reducer: ShardReducer
    /// (P + S) floats each: what a step's tasks carry (parameters; then BN state for evaluate
    /// tasks), copied from the trainer's arenas so that the trainer may update them while a
    /// transport still reads what was sent (a send to a stopped worker may never finish).
    let sendBuffers: SendBufferPool
    private var evaluationCounter: UInt64 = 0
    /// Refusals and drops, at most one line per peer per interval (an unauthenticated peer
    /// could otherwise fill the log).
    private var reports = RepeatedReports()
    private var nextReportFlush = 0.0
    private var recentReassignments: [ClusterStatus.Reassignment] = []
    private var closed = false
    /// Kernels other than ours already warned about, and the kernels of the workers whose
    /// results were accepted.
    private var warnedKernels = Set<String>()
    private var acceptedKernels = Set<String>()

    /// A coordinator on ZeroMQ, bound at `settings.bind` (CURVE with `settings.security`),
    /// taking no frame larger than the job's largest legitimate one; large frames of workers on
    /// this host go through shared memory (SharedMemoryTransport).
    public convenience init(
        config: TrainingConfig, identity: JobIdentity, network: Network, data: DatasetPair, settings: ClusterSettings
    ) throws {
        let maximumFrameBytes = WireLimits.largestFrameBytes(WireJobSizes(config: config, network: network, data: data))
        let zeroMQ = try ZMQServerTransport(
            bind: settings.bind, security: settings.security, maximumFrameBytes: maximumFrameBytes,
            onRefusal: { refusal in Console.line("refused a connection: \(refusal)") })
        // Workers on this host move parameters and gradients through shared memory.
        let transport = SharedMemoryServerTransport(wrapping: zeroMQ, maximumFrameBytes: maximumFrameBytes)
        transport.log = Console.line
        try self.init(config: config, identity: identity, network: network, settings: settings, transport: transport)
    }

    /// A coordinator on `transport` (closed by `shutdown`, also if this init fails).
    public init(
        config: TrainingConfig, identity: JobIdentity, network: Network, settings: ClusterSettings,
        transport: any ServerTransport
    ) throws {
        self.config = config
        self.configYAML = config.yaml()
        self.identity = identity
        self.settings = settings
        self.transport = transport
        blasCore = BLASThreads.coreName
        parameterCount = network.parameterCount
        stateCount = network.state.count
        stepDeadline = StepDeadline(factor: settings.stepDeadlineFactor, floorSeconds: settings.stepDeadlineFloorSeconds)
        reducer = ShardReducer(parameterCount: network.parameterCount, statisticsPerUnit: 2 * network.normalizationChannels)
        sendBuffers = SendBufferPool(count: parameterCount + stateCount)
        do {
            status = try settings.statusEndpoint.map { try StatusServer(endpoint: $0) }
        } catch {
            transport.close()
            throw error
        }
    }

    public var liveWorkers: Int { membership.count }
    public var workerNames: [String] { membership.names }
    public var statusEndpoint: String? { status?.endpoint }
    /// The OpenBLAS kernels of the workers whose results this coordinator accepted, sorted.
    public var workerKernels: [String]? { acceptedKernels.sorted() }

    // MARK: - Messages in

    private func send(_ message: WireMessage, to address: PeerAddress, step: Int = 0, shard: UInt32 = 0) throws {
        let envelope = WireEnvelope(jobID: identity.jobID, step: UInt64(step), shardID: shard, message: message)
        try transport.send(try WireProtocol.encode(envelope), to: address)
    }

    /// Receive and handle one message; returns results (and their sender) for the caller.
    private func pump(timeout: Duration) throws -> (peer: PeerID, envelope: WireEnvelope)? {
        if let reason = abortCheck?() { throw ClusterError(reason) }
        let now = MonotonicClock.now()
        if now >= nextReportFlush {
            reports.flush(at: now).forEach(log)
            nextReportFlush = now + 1
        }
        guard let delivery = try transport.receive(timeout: timeout) else { return nil }
        let from = delivery.from
        let envelope: WireEnvelope
        do {
            envelope = try WireProtocol.decode(delivery.frames)
        } catch let error as WireError {
            if case .unsupportedVersion(let version) = error {
                refuse(from, code: .versionMismatch, Admission.versionMismatch(version, worker: "worker"))
            } else {
                drop("malformed message: \(error)", from: from.peer)
            }
            return nil
        }
        let known = membership.heard(from: from.peer, at: MonotonicClock.now())
        switch envelope.message {
        case .hello(let hello):
            handshake(from, hello)
            return nil
        case .heartbeat(let heartbeat):
            if known {
                try? send(.heartbeat(HeartbeatMessage(sequence: heartbeat.sequence, busy: false)), to: from)
            } else if envelope.jobID == identity.jobID {
                // A worker of this job we do not know (we restarted, or declared it dead).
                try? send(.error(ErrorMessage(code: .unknownWorker, message: "unknown worker: handshake again")), to: from)
            } else {
                drop("heartbeat from a stranger", from: from.peer)
            }
            return nil
        case .error(let error):
            if let member = removeMember(from.peer) {
                log("worker \(member.name) reported an error and left: \(error.message)")
            } else {
                drop("error from an unknown peer: \(error.message)", from: from.peer)
            }
            return nil
        case .result, .claim:
            return (from.peer, envelope)
        case .welcome, .task, .shutdown, .grant:
            drop("unexpected \(envelope.kind) from a worker", from: from.peer)
            return nil
        }
    }

    private func drop(_ reason: String, from peer: PeerID) {
        droppedMessages += 1
        if let line = reports.report("warning: dropped \(reason)", topic: "dropped", from: peer, at: MonotonicClock.now()) {
            log("\(line) (\(droppedMessages) dropped so far)")
        }
    }

    private func refuse(_ address: PeerAddress, code: WireErrorCode, _ message: String) {
        if let line = reports.report("refused a worker: \(message)", topic: "refused", from: address.peer, at: MonotonicClock.now()) { log(line) }
        try? send(.error(ErrorMessage(code: code, message: message)), to: address)
    }

    /// HELLO with a zero job id asks for the config; HELLO with ids asks to join.
    private func handshake(_ address: PeerAddress, _ hello: HelloMessage) {
        let welcome = { (index: UInt32) in
            try self.send(.welcome(WelcomeMessage(
                workerIndex: index, heartbeatIntervalMilliseconds: UInt32(max(1, (self.settings.heartbeatIntervalSeconds * 1000).rounded())),
                config: self.configYAML)), to: address)
        }
        switch Admission.decide(hello, identity: identity, kernels: .init(coordinator: blasCore, allowMixed: settings.allowMixedKernels)) {
        case .refuse(let code, let message):
            refuse(address, code: code, message)
        case .sendConfig:
            try? welcome(UInt32.max)
        case .admit:
            do {
                _ = try membership.admit(
                    address.peer, name: hello.workerName, blasCore: hello.blasCore, lanes: Int(hello.lanes),
                    canMeet: hello.capabilities.contains(.meet), at: MonotonicClock.now(), welcome: welcome)
                // Its offer came before its HELLO, so the shared-memory decorator knows by now.
                let sharing = (transport as? SharedMemoryServerTransport)?.usesSharedMemory(with: address.peer) == true
                log("worker \(hello.workerName) joined (\(membership.count) live; \(hello.lanes) lane(s), OpenBLAS \(hello.blasCore)"
                    + (sharing ? "; parameters and gradients through shared memory)" : ")"))
                if hello.blasCore != blasCore && warnedKernels.insert(hello.blasCore).inserted {
                    log(Admission.mixedKernelWarning(hello, coordinator: blasCore))
                }
            } catch {
                log("warning: worker \(hello.workerName) vanished during its handshake: \(error)")
            }
        }
    }

    /// Handle everything already queued (so queued heartbeats count before liveness is judged).
    func drain(into results: inout [(peer: PeerID, envelope: WireEnvelope)]) throws {
        while let received = try pump(timeout: .zero) { results.append(received) }
    }

    /// Declare workers silent for longer than the timeout dead.
    func buryTheSilent() {
        let now = MonotonicClock.now()
        for member in membership.silent(timeout: settings.workerTimeoutSeconds, at: now) {
            removeMember(member.peer)
            log(String(format: "worker %@ declared dead: silent for %.1f s (worker_timeout %.1f s); %d live",
                       member.name, now - member.lastSeen, settings.workerTimeoutSeconds, membership.count))
        }
    }

    private func declareDead(_ peer: PeerID, reason: String) {
        guard let member = removeMember(peer) else { return }
        log("worker \(member.name) declared dead: \(reason); \(membership.count) live")
    }

    /// Takes `peer` out of the membership and tells the transport it may drop what it keeps
    /// for it (shared-memory segments).
    @discardableResult
    private func removeMember(_ peer: PeerID) -> Member? {
        let member = membership.remove(peer)
        if member != nil {
            transport.forget(peer)
            balance.forget(peer)
        }
        return member
    }

    /// Block until `count` workers have joined or the wait expires; a stop request (Ctrl-C,
    /// SIGTERM) ends the wait at once with StopRequestedError.
    public func waitForWorkers(_ count: Int) throws {
        let deadline = MonotonicClock.now() + settings.waitForWorkersSeconds
        var announced = false
        var ignored = 0
        while membership.count < count {
            if !announced {
                log("waiting for \(count - membership.count) more worker(s) on \(endpoint)")
                announced = true
            }
            if StopRequest.requested {
                log("stopped on request while waiting for workers (\(membership.count) of \(count) joined)")
                throw StopRequestedError()
            }
            if MonotonicClock.now() > deadline {
                throw ClusterError("only \(membership.count) of \(count) worker(s) joined within \(Int(settings.waitForWorkersSeconds)) s on \(endpoint) (wait_for_workers); start workers with: ssgd worker --connect \(endpoint); the last checkpoint is kept")
            }
            if try pump(timeout: .milliseconds(100)) != nil { ignored += 1 }
            buryTheSilent()
        }
        ignoredResults += ignored
    }

    /// Between steps: admit newcomers, bury the silent, ignore stale results.
    func housekeeping() throws {
        var stale = [(peer: PeerID, envelope: WireEnvelope)]()
        try drain(into: &stale)
        for (peer, envelope) in stale {
            if case .claim = envelope.message { grantNone(envelope, to: peer) } else { ignoredResults += 1 }
        }
        buryTheSilent()
        if membership.isEmpty {
            log("no live workers; waiting up to \(Int(settings.waitForWorkersSeconds)) s (wait_for_workers) for one to join")
            try waitForWorkers(1)
        }
    }

    // MARK: - Sharded work

    /// Send `tasks` (one per shard) to live workers and collect one result per shard, re-issuing
    /// a shard whose worker dies. Results come back in shard order.
    func run(tasks: [TaskMessage], step: Int, kind: TaskKind) throws -> [ResultMessage] {
        var round = ShardRound(tasks: tasks, step: step, kind: kind, jobID: identity.jobID)
        for member in membership.members where laneGroups(of: member) == 1 {
            if let seconds = balance.roundSeconds(of: member.peer) { round.unitSeconds[member.peer] = seconds }
        }

        /// Sends `shard` to its planned worker, or (re-issue, `reason` given) to the least busy.
        func assign(_ shard: Int, planned: Int?, reason: String?) throws {
            while true {
                if membership.isEmpty {
                    log("all workers lost at step \(step); waiting up to \(Int(settings.waitForWorkersSeconds)) s (wait_for_workers) for one to join")
                    try waitForWorkers(1)
                }
                let target = round.target(planned: planned, among: membership.members)
                do {
                    try send(.task(round.tasks[shard]), to: PeerAddress(target.peer), step: step, shard: UInt32(shard))
                } catch TransportError.peerUnreachable {
                    declareDead(target.peer, reason: "unreachable")
                    return try assign(shard, planned: nil, reason: reason ?? "worker unreachable")
                }
                let queued = round.openUnits(of: target.peer) + Int(round.tasks[shard].unitCount)
                let allowed = stepDeadline.seconds(kind, units: queued, misses: round.misses[shard])
                if let previous = round.assign(shard, to: target, at: MonotonicClock.now(), allowing: allowed), let reason {
                    reassignments += 1
                    recentReassignments.append(.init(step: step, shard: shard, from: previous.name, to: target.name, reason: reason))
                    if recentReassignments.count > 10 { recentReassignments.removeFirst() }
                    log("step \(step): shard \(shard) re-issued to \(target.name) (\(reason))")
                }
                return
            }
        }

        for shard in tasks.indices { try assign(shard, planned: shard, reason: nil) }
        var received = [(peer: PeerID, envelope: WireEnvelope)]()
        var late = Set<PeerID>()
        while !round.isComplete {
            if let one = try pump(timeout: .milliseconds(50)) { received.append(one) }
            try drain(into: &received)
            for (peer, envelope) in received {
                if case .claim(let claim) = envelope.message {
                    // The next units of a meeting shard from its end; a claim this round does not
                    // expect (late, or for a shard given to another) gets none, so its task ends.
                    let granted = envelope.jobID == identity.jobID && Int(envelope.step) == step
                        ? round.grant(Int(envelope.shardID), to: peer, count: Int(claim.count)) : nil
                    if let granted {
                        try? send(.grant(GrantMessage(
                            firstUnit: UInt32(granted.units.lowerBound), unitCount: UInt32(granted.units.count),
                            claimAhead: granted.claimAhead)), to: PeerAddress(peer), step: step, shard: envelope.shardID)
                    } else {
                        grantNone(envelope, to: peer)
                    }
                    continue
                }
                guard case .result(let result) = envelope.message else { continue }
                switch round.offer(result, envelope: envelope, from: peer, problem: reducer.problem(with:for:)) {
                case .accepted:
                    stepDeadline.record(kind, computeSeconds: result.computeSeconds, units: Int(result.unitCount))
                    if let member = round.assignees[Int(envelope.shardID)] {
                        acceptedKernels.insert(member.blasCore)
                        if kind == .train {
                            balance.record(member.peer, groups: laneGroups(of: member), units: Int(result.unitCount),
                                           computeSeconds: result.computeSeconds)
                        }
                    }
                case .ignored: ignoredResults += 1
                case .invalid(let problem): declareDead(peer, reason: "it sent an invalid result (\(problem))")
                }
            }
            received.removeAll(keepingCapacity: true)
            buryTheSilent()
            for shard in round.overdue(at: MonotonicClock.now()) {
                guard let owner = round.assignees[shard], membership.contains(owner.peer) else { continue }
                late.insert(owner.peer)
                declareDead(owner.peer, reason: String(
                    format: "shard %d not back within its step deadline of %.1f s (step_deadline_factor %g × median unit time %.3f s × its queued units, at least step_deadline_floor %.1f s, doubled per earlier miss)",
                    shard, round.allowance(of: shard), stepDeadline.factor, stepDeadline.medianUnitSeconds(kind) ?? 0, stepDeadline.floorSeconds))
            }
            for shard in round.orphans(in: membership) {
                let missed = round.assignees[shard].map { late.contains($0.peer) } ?? false
                // A meeting shard keeps the units it was granted (its partner, if still at work,
                // takes the rest); they are computed again as a whole task.
                guard round.settle(shard, in: membership) else { continue }
                try assign(shard, planned: nil, reason: missed ? "its worker missed the step deadline" : "its worker died")
            }
        }
        if kind == .train {
            // By worker, in shard order; a worker that also computed a re-issued shard counts both.
            var units = [ClusterStatus.WorkerUnits]()
            for shard in round.tasks.indices {
                guard let member = round.assignees[shard] else { continue }
                let count = Int(round.results[shard]?.unitCount ?? 0)
                if let index = units.firstIndex(where: { $0.worker == member.name }) {
                    units[index].units += count
                } else {
                    units.append(ClusterStatus.WorkerUnits(worker: member.name, units: count))
                }
            }
            lastUnitsPerWorker = units
        }
        return round.completed
    }

    /// Answers a claim with no units: the worker's task ends with what it was granted.
    private func grantNone(_ envelope: WireEnvelope, to peer: PeerID) {
        try? send(.grant(GrantMessage(firstUnit: 0, unitCount: 0)), to: PeerAddress(peer), step: Int(envelope.step), shard: envelope.shardID)
    }

    /// The lane groups of `member`: units it computes side by side.
    private func laneGroups(of member: Member) -> Int { max(1, member.lanes / config.chunksPerUnit) }

    /// `units` cut over the live workers in member order: by measured speed (ShardBalance)
    /// unless `settings.balanceShards` is off. A training step whose cut becomes uneven, changes
    /// while uneven, or turns equal again says so (`step`; nil: do not log).
    func shardRanges(units: Int, step: Int?) -> [Range<Int>] {
        let members = membership.members
        guard settings.balanceShards else { return ShardPlan.ranges(units: units, workers: members.count) }
        let peers = members.map(\.peer)
        let previous = step != nil && lastCut?.peers == peers ? lastCut?.counts : nil
        let ranges = ShardBalance.ranges(units: units, workers: members.map {
            ShardBalance.Worker(groups: laneGroups(of: $0), roundSeconds: balance.roundSeconds(of: $0.peer))
        }, previous: previous)
        if let step {
            lastCut = (peers, ranges.map(\.count))
            let balanced = ranges != ShardPlan.ranges(units: units, workers: members.count)
            let cut = zip(members, ranges).map { "\($0.name) \($1.count)" }
            if balanced ? cut != loggedCut : loggedCut != nil {
                log("step \(step): units per worker " + cut.joined(separator: ", ")
                    + (balanced ? " (cut by measured speed; --equal-shards keeps the equal cut)" : " (equal again)"))
                loggedCut = balanced ? cut : nil
            }
        }
        return ranges
    }

    /// One task per range of `ranges` (member order): two neighbouring workers that can meet
    /// (one lane group each, TaskEnd) share their two ranges, one taking units from the left,
    /// the other from the right, until they meet within the step — so a worker slowed for a
    /// while does not hold the step back by what the cut could not foresee. Only workers whose
    /// large frames move in memory (shared memory on this host) meet: where they meet is rarely
    /// an aligned node of the unit tree, so each returns a gradient block or two more, which is
    /// a copy here but seconds of a slow link. `--equal-shards` keeps each worker to its own
    /// range. The log says which workers meet when that changes.
    func meetingPlan(_ ranges: [Range<Int>], step: Int) -> [(Range<Int>, TaskEnd)] {
        let members = membership.members
        func canMeet(_ member: Member) -> Bool { member.canMeet && transport.movesLargeFramesInMemory(with: member.peer) }
        var plan = [(Range<Int>, TaskEnd)]()
        var pairs = [String]()
        var shard = 0
        while shard < ranges.count {
            if settings.balanceShards, shard + 1 < ranges.count, shard + 1 < members.count,
               canMeet(members[shard]), canMeet(members[shard + 1]) {
                let shared = ranges[shard].lowerBound..<ranges[shard + 1].upperBound
                plan += [(shared, .left), (shared, .right)]
                pairs.append("\(members[shard].name) and \(members[shard + 1].name)")
                shard += 2
            } else {
                plan.append((ranges[shard], .whole))
                shard += 1
            }
        }
        if pairs != (loggedPairs ?? []) {
            log(pairs.isEmpty
                ? "step \(step): no workers meet within the step"
                : "step \(step): " + pairs.joined(separator: "; ") + " meet within each step (each takes units from its end of their shared range; --equal-shards keeps each to its own)")
            loggedPairs = pairs
        }
        return plan
    }

    public func computeStep(_ task: StepTask, parameters: FloatBuffer, gradientSum: FloatBuffer) throws -> StepStatistics {
        let started = MonotonicClock.now()
        let bytesBefore = bytesMoved
        try housekeeping()
        let unitSize = config.ghostBatch
        let units = task.indices.count / unitSize
        sendBuffers.reclaim()
        let send = sendBuffers.take()
        send.buffer.pointer.update(from: parameters.pointer, count: parameterCount)
        let payload = send.floats(count: parameterCount)
        let ranges = shardRanges(units: units, step: task.step)
        let tasks = meetingPlan(ranges, step: task.step).map { range, end in
            TaskMessage(
                kind: .train, epoch: UInt64(task.epoch), firstUnit: UInt32(range.lowerBound), unitCount: UInt32(range.count),
                unitSize: UInt32(unitSize), split: .train,
                sampleIndices: Array(task.indices[(range.lowerBound * unitSize)..<(range.upperBound * unitSize)]),
                parameters: payload, end: end)
        }
        let results = try run(tasks: tasks, step: task.step, kind: .train)
        let cut = lastUnitsPerWorker
        let received = MonotonicClock.now()
        var statistics = try reducer.reduceTraining(results, units: units, into: gradientSum)
        statistics.transferSeconds = max(0, received - started - statistics.computeSeconds)
        statistics.reduceSeconds = MonotonicClock.now() - received
        statistics.liveWorkers = membership.count
        statistics.bytesMoved = bytesMoved - bytesBefore
        if cut.map(\.units) != ShardPlan.ranges(units: units, workers: cut.count).map(\.count) {
            statistics.unevenUnits = cut.map { ($0.worker, $0.units) }
        }
        let wall = MonotonicClock.now() - started
        status?.update { snapshot in
            snapshot.state = "training"
            snapshot.step = task.step + 1
            snapshot.epoch = task.epoch
            snapshot.liveWorkers = membership.names
            snapshot.lastStepSeconds = wall
            snapshot.droppedMessages = droppedMessages
            snapshot.ignoredResults = ignoredResults
            snapshot.recentReassignments = recentReassignments
            snapshot.unitsPerWorker = cut
        }
        return statistics
    }

    public func evaluate(split: Split, sampleCount: Int, parameters: FloatBuffer, state: FloatBuffer) throws -> EvaluationResult {
        try housekeeping()
        let unitSize = config.ghostBatch
        let chunks = (sampleCount + unitSize - 1) / unitSize
        sendBuffers.reclaim()
        let send = sendBuffers.take()
        send.buffer.pointer.update(from: parameters.pointer, count: parameterCount)
        (send.buffer.pointer + parameterCount).update(from: state.pointer, count: stateCount)
        // Evaluations are numbered with bit 62 set so they never match a training step.
        evaluationCounter += 1
        let tag = Int(UInt64(1) << 62 | evaluationCounter)
        let payload = send.floats()
        let tasks = shardRanges(units: chunks, step: nil).map { range in
            let first = range.lowerBound * unitSize
            let end = min(range.upperBound * unitSize, sampleCount)
            return TaskMessage(
                kind: .evaluate, epoch: 0, firstUnit: UInt32(range.lowerBound), unitCount: UInt32(range.count),
                unitSize: UInt32(unitSize), split: split == .train ? .train : .test,
                sampleIndices: (first..<end).map { Int32($0) }, parameters: payload)
        }
        let results = try run(tasks: tasks, step: tag, kind: .evaluate)
        return reducer.reduceEvaluation(results, samples: sampleCount)
    }

    /// Tell every worker to exit, then close the transport.
    public func shutdown() {
        shutdown(reason: "training finished")
    }

    public func shutdown(reason: String) {
        guard !closed else { return }
        closed = true
        reports.flush(at: MonotonicClock.now(), all: true).forEach(log)
        for member in membership.members {
            try? send(.shutdown(ShutdownMessage(reason: reason)), to: PeerAddress(member.peer))
        }
        membership = Membership()
        transport.close()
        status?.stop()
    }
}
