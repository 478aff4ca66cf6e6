import Cluster
import Engine
import Foundation
import Runs
import TestSupport
import Testing
import Training
import Transport
import Wire

/// The coordinator's logic over the in-process transport: workers are played by the test, so
/// each scenario (arrival order, a worker leaving mid-step, an unreachable one) happens exactly
/// as scripted. The real processes and sockets are in the other suites.
@Suite struct CoordinatorTests {
    /// Results in reverse shard order still reduce in shard order: the loss of units
    /// (1, 0 | 1e100, 0 | −1e100, 0) summed in unit order is 0, in arrival order it would be 1.
    @Test func shardsAreReducedInShardOrderWhateverTheArrivalOrder() throws {
        let scene = try InProcessScene()
        defer { scene.executor.shutdown() }
        let workers = try scene.join(["a", "b", "c"])
        let unitLoss: [Double] = [1, 0, 1e100, 0, -1e100, 0]

        let outcome = scene.computeStepInBackground()
        let tasks = try workers.map { try $0.nextTask() }
        #expect(tasks.map { $0.task.firstUnit } == [0, 2, 4])
        for (worker, (task, envelope)) in zip(workers, tasks).reversed() {
            try worker.answer(task, envelope, unitLoss: unitLoss)
        }
        let statistics = try outcome.wait()

        #expect(statistics.lossSum == unitLoss.reduce(0, +))
        #expect(statistics.lossSum == 0)
        #expect(statistics.batchStatistics == scene.expectedNormalization(units: unitLoss.count))
        #expect(scene.gradient.toArray() == (try scene.expectedGradient(tasks.map(\.task))))
        #expect(scene.executor.ignoredResults == 0)
    }

    /// Worker c says it computed four times as long per unit as a and b, three steps running:
    /// the next step gives it one unit of six (a 3, b 2, c 1; the equal cut would make c take
    /// 8 s, this one 4 s), says so, and its result is the unit tree's sum of the new blocks.
    /// Before three results per worker, and with balancing off, the cut stays equal.
    @Test(arguments: [true, false])
    func theCutFollowsTheSecondsWorkersReported(balance: Bool) throws {
        let scene = try InProcessScene(balanceShards: balance)
        defer { scene.executor.shutdown() }
        let workers = try scene.join(["a", "b", "c"])
        for step in 0..<3 {
            let outcome = scene.computeStepInBackground(step: step)
            let tasks = try workers.map { try $0.nextTask() }
            #expect(tasks.map { $0.task.unitCount } == [2, 2, 2], "step \(step)")
            for (k, worker) in workers.enumerated() {
                try worker.answer(tasks[k].task, tasks[k].envelope, unitLoss: nil, computeSeconds: [2, 2, 8][k])
            }
            _ = try outcome.wait()
        }

        let outcome = scene.computeStepInBackground(step: 3)
        let tasks = try workers.map { try $0.nextTask() }
        #expect(tasks.map { $0.task.firstUnit } == (balance ? [0, 3, 5] : [0, 2, 4]))
        #expect(tasks.map { $0.task.unitCount } == (balance ? [3, 2, 1] : [2, 2, 2]))
        for (worker, (task, envelope)) in zip(workers, tasks) {
            try worker.answer(task, envelope, unitLoss: nil, computeSeconds: 1)
        }
        _ = try outcome.wait()
        #expect(scene.gradient.toArray() == (try scene.expectedGradient(tasks.map(\.task))))
        #expect(scene.lines.contains("step 3: units per worker a 3, b 2, c 1 (cut by measured speed; --equal-shards keeps the equal cut)") == balance,
                "\(scene.lines)")
    }

    /// Worker a leaves mid-step (ERROR); its shard goes to b; a's late result for that shard,
    /// sent after the re-issue, is ignored and the step is what b computed.
    @Test func aResultFromAWorkerWhoseShardWasReissuedIsIgnored() throws {
        let scene = try InProcessScene()
        defer { scene.executor.shutdown() }
        let workers = try scene.join(["a", "b"])
        let (a, b) = (workers[0], workers[1])

        let outcome = scene.computeStepInBackground()
        let (lost, lostEnvelope) = try a.nextTask()
        let (kept, keptEnvelope) = try b.nextTask()
        try a.send(.error(ErrorMessage(code: .internalError, message: "a gives up")))
        let (reissued, reissuedEnvelope) = try b.nextTask()
        #expect(reissuedEnvelope.shardID == lostEnvelope.shardID)
        #expect(reissued.firstUnit == lost.firstUnit && reissued.unitCount == lost.unitCount)
        try a.answer(lost, lostEnvelope, unitLoss: nil, gradientValue: 1000)  // late: ignored
        try b.answer(kept, keptEnvelope, unitLoss: nil)
        try b.answer(reissued, reissuedEnvelope, unitLoss: nil)
        _ = try outcome.wait()

        #expect(scene.executor.ignoredResults == 1)
        #expect(scene.executor.workerNames == ["b"])
        #expect(scene.executor.reassignments == 1)
        #expect(scene.lines.contains { $0.contains("shard 0 re-issued to b (its worker died)") })
        #expect(scene.gradient.toArray() == (try scene.expectedGradient([lost, kept])))
    }

    /// A result whose gradient blocks tile the shard but are not the unit tree's aligned blocks
    /// (units 0..<3 as [0, 1) [1, 3) instead of [0, 2) [2, 3)) passes the codec's checks; the
    /// reduction could not use it. The sender is dropped and its shard re-issued.
    @Test func aResultWithBlocksNotAlignedToTheUnitTreeDropsItsWorkerAndTheShardIsReissued() throws {
        let scene = try InProcessScene()
        defer { scene.executor.shutdown() }
        let workers = try scene.join(["a", "b"])
        let (a, b) = (workers[0], workers[1])

        let outcome = scene.computeStepInBackground()
        let (misaligned, misalignedEnvelope) = try a.nextTask()
        let (kept, keptEnvelope) = try b.nextTask()
        #expect(misaligned.firstUnit == 0 && misaligned.unitCount == 3)
        try a.answer(misaligned, misalignedEnvelope, unitLoss: nil,
                     blocks: [UnitBlock(first: 0, count: 1), UnitBlock(first: 1, count: 2)])
        try b.answer(kept, keptEnvelope, unitLoss: nil)
        let (reissued, reissuedEnvelope) = try b.nextTask()
        #expect(reissuedEnvelope.shardID == misalignedEnvelope.shardID)
        try b.answer(reissued, reissuedEnvelope, unitLoss: nil)
        _ = try outcome.wait()

        #expect(scene.lines.contains { $0.contains("worker a declared dead") && $0.contains("gradient blocks [0, 1) [1, 3)") })
        #expect(scene.lines.contains { $0.contains("shard 0 re-issued to b") })
        #expect(scene.executor.workerNames == ["b"])
        #expect(scene.gradient.toArray() == (try scene.expectedGradient([misaligned, kept])))
    }

    /// After a measured step, worker a takes its task and goes quiet while staying connected
    /// (as a worker whose main thread hangs while its heartbeat thread runs): after the step
    /// deadline (here the floor) its shard goes to b, and a's late result is ignored.
    @Test func aShardNotBackByItsDeadlineIsReissuedAndTheLateResultIgnored() throws {
        let scene = try InProcessScene(stepDeadlineFloorSeconds: 0.3)
        defer { scene.executor.shutdown() }
        let workers = try scene.join(["a", "b"])
        let (a, b) = (workers[0], workers[1])

        let measured = scene.computeStepInBackground()  // unit times known from here on
        for worker in workers {
            let (task, envelope) = try worker.nextTask()
            try worker.answer(task, envelope, unitLoss: nil)
        }
        _ = try measured.wait()

        let outcome = scene.computeStepInBackground()
        let (hung, hungEnvelope) = try a.nextTask()
        let (kept, keptEnvelope) = try b.nextTask()
        try b.answer(kept, keptEnvelope, unitLoss: nil)
        let (reissued, reissuedEnvelope) = try b.nextTask()  // after a's deadline
        #expect(reissuedEnvelope.shardID == hungEnvelope.shardID)
        try a.answer(hung, hungEnvelope, unitLoss: nil, gradientValue: 1000)  // late: ignored
        try b.answer(reissued, reissuedEnvelope, unitLoss: nil)
        _ = try outcome.wait()

        #expect(scene.lines.contains { $0.contains("worker a declared dead: shard 0 not back within its step deadline") })
        #expect(scene.lines.contains { $0.contains("shard 0 re-issued to b (its worker missed the step deadline)") })
        #expect(scene.executor.ignoredResults == 1)
        #expect(scene.gradient.toArray() == (try scene.expectedGradient([hung, kept])))
    }

    /// A worker whose connection is gone is unreachable: declared dead, its shard goes elsewhere.
    @Test func anUnreachableWorkerIsDeclaredDeadAndItsShardGoesToAnother() throws {
        let scene = try InProcessScene()
        defer { scene.executor.shutdown() }
        let workers = try scene.join(["a", "b"])
        workers[0].close()

        let outcome = scene.computeStepInBackground()
        let first = try workers[1].nextTask()
        let second = try workers[1].nextTask()
        try workers[1].answer(first.task, first.envelope, unitLoss: nil)
        try workers[1].answer(second.task, second.envelope, unitLoss: nil)
        _ = try outcome.wait()

        #expect(scene.lines.contains { $0.contains("worker a declared dead: unreachable") })
        #expect(scene.executor.workerNames == ["b"])
        #expect(scene.gradient.toArray() == (try scene.expectedGradient([first.task, second.task])))
    }

    /// Heartbeats come on their own channel and are answered there: echoed for a member, and
    /// ERROR unknownWorker (handshake again) for a worker of this job the coordinator does not know.
    @Test func heartbeatsAreAnsweredOnTheHeartbeatChannel() throws {
        let scene = try InProcessScene()
        defer { scene.executor.shutdown() }
        let stranger = try ScriptedWorker(scene.transport, name: "stranger", job: scene.identity.jobID)
        try stranger.beat()
        let member = try scene.join(["m"])[0]  // handles the stranger's beat first
        try member.beat()
        _ = try scene.join(["n"])  // handles the member's beat first

        guard case .error(let error) = try stranger.nextBeat().message else {
            Issue.record("the stranger got no error")
            return
        }
        #expect(error.code == .unknownWorker)
        guard case .heartbeat = try member.nextBeat().message else {
            Issue.record("the member's heartbeat was not echoed")
            return
        }
    }
}

/// A coordinator over the in-process transport with the DenseNet fixture (6 units of 16 per
/// step, batch-norm statistics), and what a step should produce.
final class InProcessScene {
    let config: TrainingConfig
    let network: Network
    let identity: JobIdentity
    let transport = InProcessNetwork()
    let executor: ClusterExecutor
    let gradient: FloatBuffer
    var lines = [String]()

    var statisticsPerUnit: Int { 2 * network.normalizationChannels }

    static let yaml = ClusterFixtures.config(model: "densenet", method: "vanilla")

    /// `through` may wrap the in-process server (e.g. to watch what is sent).
    init(
        stepDeadlineFloorSeconds: Double = 60, balanceShards: Bool = true,
        through wrap: (InProcessServer) -> any ServerTransport = { $0 }
    ) throws {
        config = try TrainingConfig.parse(yaml: Self.yaml)
        let (data, network) = try TrainingSession.loadDataAndModel(config)
        self.network = network
        identity = JobIdentity(config: config, dataFingerprint: data.fingerprint)
        gradient = FloatBuffer(count: network.parameterCount)
        executor = try ClusterExecutor(
            config: config, identity: identity, network: network,
            settings: ClusterSettings(bind: "unused", waitForWorkersSeconds: 30, workerTimeoutSeconds: 600,
                                      stepDeadlineFloorSeconds: stepDeadlineFloorSeconds, balanceShards: balanceShards),
            transport: wrap(transport.server))
        executor.log = { [unowned self] in self.lines.append($0) }
    }

    /// Workers that said HELLO and got WELCOME, in joining order.
    /// `meeting`: they offer to take a task's units from one end as granted (TaskEnd).
    func join(_ names: [String], meeting: Bool = false) throws -> [ScriptedWorker] {
        let workers = try names.map { name in
            let worker = try ScriptedWorker(transport, name: name, job: identity.jobID)
            try worker.hello(identity, parameters: network.parameterCount, statisticsPerUnit: statisticsPerUnit,
                             capabilities: meeting ? [.train, .evaluate, .meet] : [.train, .evaluate])
            return worker
        }
        try executor.waitForWorkers(executor.liveWorkers + names.count)
        for worker in workers {
            guard case .welcome = try worker.next().message else {
                throw ClusterError("\(worker.name) was not welcomed")
            }
        }
        return workers
    }

    /// Step `step` over samples 0..<96, computed on a helper thread while the test plays the workers.
    func computeStepInBackground(step: Int = 0) -> StepOutcome {
        let outcome = StepOutcome()
        let shared = HandedOver((executor, network, gradient))
        let thread = Thread {
            let (executor, network, gradient) = shared.value
            let task = StepTask(step: step, epoch: 0, indices: (0..<96).map { Int32($0) })
            outcome.finish(Result { try executor.computeStep(task, parameters: network.parameters, gradientSum: gradient) })
        }
        thread.start()
        return outcome
    }

    /// The unit-tree sum of the blocks the scripted workers send for `tasks` (which tile the step).
    func expectedGradient(_ tasks: [TaskMessage]) throws -> [Float] {
        let blocks = tasks.flatMap { UnitTree.blocks(first: Int($0.firstUnit), count: Int($0.unitCount)) }
        let buffers = blocks.map { FloatBuffer(ScriptedWorker.gradient($0, count: network.parameterCount)) }
        var sums = [UnitBlock: UnsafeMutablePointer<Float>]()
        for (block, buffer) in zip(blocks, buffers) { sums[block] = buffer.pointer }
        let expected = FloatBuffer(count: network.parameterCount)
        try UnitTree.combine(units: 6, sums: sums, length: network.parameterCount, into: expected.pointer)
        return withExtendedLifetime(buffers) { expected.toArray() }
    }

    /// The per-unit batch-norm statistics the scripted workers send, averaged in unit order.
    func expectedNormalization(units: Int) -> [Float] {
        var statistics = StepStatistics()
        let perUnit = (0..<units).flatMap { ScriptedWorker.statistics(unit: $0, count: statisticsPerUnit) }
        statistics.averageBatchStatistics(perUnit, units: units, width: statisticsPerUnit)
        return statistics.batchStatistics
    }
}

/// The statistics of a step computed on another thread.
final class StepOutcome: @unchecked Sendable {
    // Sendable: `result` is written once before `done` is signalled and read after the wait.
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<StepStatistics, Error>?

    func finish(_ result: Result<StepStatistics, Error>) {
        self.result = result
        done.signal()
    }

    func wait() throws -> StepStatistics {
        guard done.wait(timeout: .now() + 60) == .success, let result else {
            throw ClusterError("the step did not finish")
        }
        return try result.get()
    }
}

/// A worker played by the test on the in-process transport: it sends what the test says.
final class ScriptedWorker {
    let name: String
    let job: Digest32
    private let main: any ClientTransport
    private let heartbeat: any ClientTransport
    private var parameterCount = 0
    private var statisticsPerUnit = 0

    init(_ network: InProcessNetwork, name: String, job: Digest32) throws {
        self.name = name
        self.job = job
        let connector = network.connector(name: name)
        main = try connector.connect(.main)
        heartbeat = try connector.connect(.heartbeat)
    }

    func close() {
        main.close()
        heartbeat.close()
    }

    func send(_ message: WireMessage, step: UInt64 = 0, shard: UInt32 = 0) throws {
        try main.send(try WireProtocol.encode(WireEnvelope(jobID: job, step: step, shardID: shard, message: message)))
    }

    func hello(
        _ identity: JobIdentity, parameters: Int, statisticsPerUnit: Int, capabilities: WorkerCapabilities = [.train, .evaluate]
    ) throws {
        parameterCount = parameters
        self.statisticsPerUnit = statisticsPerUnit
        try send(.hello(HelloMessage(
            jobID: identity.jobID, dataFingerprint: identity.dataFingerprint, capabilities: capabilities,
            lanes: 1, blasCore: BLASThreads.coreName, workerName: name, processID: 1)))
    }

    func beat() throws {
        try heartbeat.send(try WireProtocol.encode(WireEnvelope(jobID: job, message: .heartbeat(HeartbeatMessage(sequence: 1, busy: false)))))
    }

    /// The next message on the main channel (waiting at most 30 s).
    func next() throws -> WireEnvelope {
        guard let frames = try main.receive(timeout: .seconds(30)) else { throw ClusterError("\(name) heard nothing") }
        return try WireProtocol.decode(frames)
    }

    /// The next message on the heartbeat channel (waiting at most 30 s).
    func nextBeat() throws -> WireEnvelope {
        guard let frames = try heartbeat.receive(timeout: .seconds(30)) else { throw ClusterError("\(name) heard no beat") }
        return try WireProtocol.decode(frames)
    }

    func nextTask() throws -> (task: TaskMessage, envelope: WireEnvelope) {
        let envelope = try next()
        guard case .task(let task) = envelope.message else { throw ClusterError("\(name) got \(envelope.kind), not a task") }
        return (task, envelope)
    }

    /// A result for `task`: each block's gradient from `gradient(_:count:)` (or all
    /// `gradientValue`), unit losses from `unitLoss` (indexed by unit; 0 if nil); `blocks`
    /// replaces the unit tree's blocks of the task; it says it computed for `computeSeconds`.
    func answer(
        _ task: TaskMessage, _ envelope: WireEnvelope, unitLoss: [Double]?, gradientValue: Float? = nil,
        blocks layout: [UnitBlock]? = nil, computeSeconds: Double = 0
    ) throws {
        let units = Int(task.firstUnit)..<Int(task.firstUnit + task.unitCount)
        let blocks = (layout ?? UnitTree.blocks(first: units.lowerBound, count: units.count)).map { block in
            let values = gradientValue.map { [Float](repeating: $0, count: parameterCount) }
                ?? Self.gradient(block, count: parameterCount)
            return GradientBlock(firstUnit: UInt32(block.first), unitCount: UInt32(block.count), gradient: WireFloats(values))
        }
        let result = ResultMessage(
            taskKind: .train, firstUnit: task.firstUnit, unitCount: task.unitCount,
            lossSums: units.map { unitLoss?[$0] ?? 0 }, correctCounts: units.map { _ in 1 },
            sampleCounts: units.map { _ in task.unitSize }, gradientBlocks: blocks,
            statisticsPerUnit: UInt32(statisticsPerUnit),
            batchStatistics: WireFloats(units.flatMap { Self.statistics(unit: $0, count: statisticsPerUnit) }),
            computeSeconds: computeSeconds)
        try send(.result(result), step: envelope.step, shard: envelope.shardID)
    }

    /// Claims the next unit of the task of `envelope` and returns the coordinator's grant (nil:
    /// none left).
    func claim(_ envelope: WireEnvelope) throws -> Range<Int>? {
        try send(.claim(ClaimMessage(count: 1)), step: envelope.step, shard: envelope.shardID)
        let reply = try next()
        guard case .grant(let grant) = reply.message, reply.step == envelope.step, reply.shardID == envelope.shardID else {
            throw ClusterError("\(name) got \(reply.kind) for step \(reply.step) shard \(reply.shardID), not its grant")
        }
        lastClaimAhead = grant.claimAhead
        return grant.unitCount == 0 ? nil : Int(grant.firstUnit)..<Int(grant.firstUnit + grant.unitCount)
    }

    /// Whether the last grant said to claim the next unit ahead.
    var lastClaimAhead = false

    /// A block's gradient: values that differ by block and position.
    static func gradient(_ block: UnitBlock, count: Int) -> [Float] {
        (0..<count).map { Float(block.first * 7 + block.count) + Float($0 % 97) * 0.001 }
    }

    /// A unit's batch-norm statistics: sums that depend on the order they are added in.
    static func statistics(unit: Int, count: Int) -> [Float] {
        (0..<count).map { [1e8, 1, -1e8, 3, 0.1, 2][unit % 6] + Float($0) }
    }
}

