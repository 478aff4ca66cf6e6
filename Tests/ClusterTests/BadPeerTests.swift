import Cluster
import Data
import Engine
import Foundation
import Runs
import TestSupport
import Testing
import Transport
import Training
import Wire

/// A real coordinator executor in this process, a real worker process, and a raw DEALER that
/// misbehaves: foreign versions, jobs and data are refused with the reason; junk and stale
/// results are dropped and counted; the step's gradient is still the in-process one.
@Suite(.serialized) struct BadPeerTests {
    func raw(_ endpoint: String) throws -> ZMQSocket {
        let socket = try ZMQSocket(.dealer)
        try socket.connect(endpoint)
        return socket
    }

    func hello(job: Digest32, data: Digest32, version: UInt16? = nil) throws -> [OutgoingFrame] {
        var frames = try WireProtocol.encode(WireEnvelope(jobID: job, message: .hello(HelloMessage(
            jobID: job, dataFingerprint: data, capabilities: [.train], lanes: 1, blasCore: BLASThreads.coreName, workerName: "intruder", processID: 1))))
        if let version, case .bytes(var header) = frames[0] {
            header[4] = UInt8(version & 0xFF)
            header[5] = UInt8(version >> 8)
            frames[0] = .bytes(header)
        }
        return frames
    }

    func errorReply(_ socket: ZMQSocket) throws -> ErrorMessage? {
        guard let frames = try socket.receive(timeout: .seconds(5)) else { return nil }
        guard case .error(let error) = try WireProtocol.decode(frames).message else { return nil }
        return error
    }

    @Test func foreignPeersAreRefusedJunkIsDroppedAndTheStepIsUnchanged() throws {
        let scene = try CoordinatorScene(method: "spectral", seed: 11)
        let (executor, network, identity, endpoint) = (scene.executor, scene.network, scene.identity, scene.endpoint)
        defer { executor.shutdown() }

        // Three refused handshakes, each on its own connection.
        let oldVersion = try raw(endpoint)
        try oldVersion.send(try hello(job: identity.jobID, data: identity.dataFingerprint, version: 99))
        let otherJob = try raw(endpoint)
        try otherJob.send(try hello(job: Digest32(hex: String(repeating: "ab", count: 32))!, data: identity.dataFingerprint))
        let otherData = try raw(endpoint)
        try otherData.send(try hello(job: identity.jobID, data: Digest32(hex: String(repeating: "cd", count: 32))!))
        // Junk: random bytes, a wrong magic, a truncated header, inconsistent lengths.
        let junk = try raw(endpoint)
        var generator = SplitMix64(seed: 5)
        try junk.send([.bytes((0..<77).map { _ in UInt8(truncatingIfNeeded: generator.next()) })])
        var wrongMagic = try hello(job: identity.jobID, data: identity.dataFingerprint)
        if case .bytes(var header) = wrongMagic[0] { header[0] = 0x58; wrongMagic[0] = .bytes(header) }
        try junk.send(wrongMagic)
        try junk.send([.bytes(Array("SSGD".utf8) + [1, 0])])
        var badLength = try hello(job: identity.jobID, data: identity.dataFingerprint)
        if case .bytes(var payload) = badLength[1] { payload.append(0); badLength[1] = .bytes(payload) }
        try junk.send(badLength)

        let worker = try SSGDProcess(["worker", "--connect", endpoint, "--threads", "1", "--name", "honest"])
        defer {
            executor.shutdown()
            _ = worker.wait(timeout: 10)
        }
        try executor.waitForWorkers(1)
        #expect(executor.workerNames == ["honest"])

        #expect(try errorReply(oldVersion)?.code == .versionMismatch)
        let job = try errorReply(otherJob)
        #expect(job?.code == .jobMismatch)
        #expect(job?.message.contains("another job") == true)
        let dataError = try errorReply(otherData)
        #expect(dataError?.code == .dataMismatch)
        #expect(dataError?.message.contains("another data set") == true)

        // A stale result and a result from a stranger, sent before the step: ignored.
        let staleResult = ResultMessage(
            taskKind: .train, firstUnit: 0, unitCount: 1, lossSums: [1], correctCounts: [0], sampleCounts: [16],
            gradientBlocks: [GradientBlock(firstUnit: 0, unitCount: 1, gradient: WireFloats([Float](repeating: 7, count: network.parameterCount)))],
            statisticsPerUnit: 0, batchStatistics: .empty, computeSeconds: 0)
        try junk.send(try WireProtocol.encode(WireEnvelope(jobID: identity.jobID, step: 999, shardID: 0, message: .result(staleResult))))
        try junk.send(try WireProtocol.encode(WireEnvelope(jobID: identity.jobID, step: 0, shardID: 0, message: .result(staleResult))))
        Thread.sleep(forTimeInterval: 0.3)

        let task = try scene.firstStep()
        let distributed = FloatBuffer(count: network.parameterCount)
        let statistics = try executor.computeStep(task, parameters: network.parameters, gradientSum: distributed)
        #expect(statistics.samples == 96)

        let (expected, localStatistics) = try scene.inProcess(task)
        #expect(distributed.toArray() == expected.toArray())
        #expect(statistics.lossSum == localStatistics.lossSum)

        #expect(executor.droppedMessages >= 4)
        #expect(executor.ignoredResults >= 2)
        #expect(scene.lines.contains { $0.contains("refused a worker") })
        executor.shutdown()
        #expect(worker.wait(timeout: 10) == 0, "\(worker.output)")
    }

    @Test func workerWithAnotherConfigIsRefusedAndTheCoordinatorCarriesOn() throws {
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "vanilla", epochs: 1))
        let other = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "spectral", epochs: 1))
        let endpoint = ClusterFixtures.ipcEndpoint()
        let run = Fixtures.temporaryDirectory("ssgd-coordinator") + "/run"
        let coordinator = try SSGDProcess(["coordinator", "--config", config, "--bind", endpoint, "--run-dir", run, "--threads", "1"])
        #expect(coordinator.waitForOutput("waiting for", timeout: 60))
        let stranger = try SSGDProcess.run(["worker", "--connect", endpoint, "--config", other, "--name", "stranger"], timeout: 60)
        #expect(stranger.status == 1)
        #expect(stranger.output.contains("another job"), "\(stranger.output)")
        let honest = try SSGDProcess.run(["worker", "--connect", endpoint, "--name", "honest", "--threads", "1"], timeout: 120)
        #expect(honest.status == 0, "\(honest.output)")
        #expect(coordinator.wait(timeout: 60) == 0)
        #expect(coordinator.output.contains("refused a worker"))
        #expect(SSGDProcess.parametersHash(runDirectory: run) != nil)
    }

    @Test func aPortInUseIsAClearError() throws {
        let holder = try ZMQSocket(.router)
        defer { holder.close() }
        try holder.bind("tcp://127.0.0.1:*")
        let endpoint = try holder.lastEndpoint
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "vanilla"))
        let result = try SSGDProcess.run(["coordinator", "--config", config, "--bind", endpoint,
                                          "--run-dir", Fixtures.temporaryDirectory() + "/run"], timeout: 30)
        #expect(result.status == 1)
        #expect(result.output.contains("in use"), "\(result.output)")
        #expect(result.output.contains(endpoint))
    }

    /// A peer that passes the handshake but answers its task with a gradient of the wrong size:
    /// it is dropped, its shard is re-issued to an honest worker, and the step is unchanged.
    @Test func aJoinedWorkerSendingAnInvalidResultIsDroppedAndItsShardReissued() throws {
        let scene = try CoordinatorScene(method: "vanilla", seed: 12)
        let (executor, network, identity, endpoint) = (scene.executor, scene.network, scene.identity, scene.endpoint)
        defer { executor.shutdown() }

        let liar = try raw(endpoint)
        defer { liar.close() }
        try liar.send(try hello(job: identity.jobID, data: identity.dataFingerprint))
        try executor.waitForWorkers(1)
        let honest = try SSGDProcess(["worker", "--connect", endpoint, "--threads", "1", "--name", "honest"])
        defer {
            executor.shutdown()
            _ = honest.wait(timeout: 10)
        }
        try executor.waitForWorkers(2)
        _ = try liar.receive(timeout: .seconds(5))  // its WELCOME

        let task = try scene.firstStep()
        let distributed = FloatBuffer(count: network.parameterCount)
        // The executor works on a helper thread while this thread plays the liar.
        let done = DispatchSemaphore(value: 0)
        let shared = HandedOver((executor, network, distributed))
        let thread = Thread {
            let (executor, network, distributed) = shared.value
            shared.outcome = Result { try executor.computeStep(task, parameters: network.parameters, gradientSum: distributed) }
            done.signal()
        }
        thread.start()
        let frames = try #require(try liar.receive(timeout: .seconds(30)))
        let envelope = try WireProtocol.decode(frames)
        guard case .task(let assigned) = envelope.message else {
            Issue.record("the liar got \(envelope.kind), not a task")
            return
        }
        let lie = ResultMessage(
            taskKind: .train, firstUnit: assigned.firstUnit, unitCount: assigned.unitCount,
            lossSums: [Double](repeating: 0, count: Int(assigned.unitCount)),
            correctCounts: [UInt32](repeating: 0, count: Int(assigned.unitCount)),
            sampleCounts: [UInt32](repeating: 16, count: Int(assigned.unitCount)),
            gradientBlocks: UnitTree.blocks(first: Int(assigned.firstUnit), count: Int(assigned.unitCount)).map {
                GradientBlock(firstUnit: UInt32($0.first), unitCount: UInt32($0.count), gradient: WireFloats([1, 2, 3]))
            },
            statisticsPerUnit: 0, batchStatistics: .empty, computeSeconds: 0)
        try liar.send(try WireProtocol.encode(WireEnvelope(jobID: identity.jobID, step: envelope.step, shardID: envelope.shardID, message: .result(lie))))
        #expect(done.wait(timeout: .now() + 60) == .success)
        let statistics = try #require(try shared.outcome?.get())
        #expect(statistics.samples == 96)

        let (expected, _) = try scene.inProcess(task)
        #expect(distributed.toArray() == expected.toArray())
        #expect(scene.lines.contains { $0.contains("invalid result") })
        #expect(scene.lines.contains { $0.contains("re-issued to honest") })
        executor.shutdown()
        #expect(honest.wait(timeout: 10) == 0, "\(honest.output)")
    }
}

/// Hands objects to one other thread, which uses them while this thread waits (never both at once).
final class HandedOver<T>: @unchecked Sendable {
    let value: T
    var outcome: Result<StepStatistics, Error>?
    init(_ value: T) { self.value = value }
}

/// A coordinator executor in this process over the MLP fixture, with what the tests compare
/// against: the first step's task and its in-process gradient.
final class CoordinatorScene {
    let config: TrainingConfig
    let data: DatasetPair
    let network: Network
    let identity: JobIdentity
    let endpoint = ClusterFixtures.ipcEndpoint()
    let executor: ClusterExecutor
    var lines = [String]()

    init(method: String, seed: UInt64) throws {
        var config = try TrainingConfig.parse(yaml: ClusterFixtures.config(model: "mlp", method: method))
        config.threads = 1
        BLASThreads.set(1)
        self.config = config
        (data, network) = try TrainingSession.loadDataAndModel(config)
        network.initializeParameters(seed: seed)
        identity = JobIdentity(config: config, dataFingerprint: data.fingerprint)
        executor = try ClusterExecutor(config: config, identity: identity, network: network, data: data,
                                       settings: ClusterSettings(bind: endpoint, waitForWorkersSeconds: 60, workerTimeoutSeconds: 30))
        executor.log = { [unowned self] in self.lines.append($0) }
    }

    func firstStep() throws -> StepTask {
        let schedule = try StepSchedule(samples: data.train.count, batchSize: config.batchSize, epochs: 1, seed: config.seed)
        return StepTask(step: 0, epoch: 0, indices: Array(schedule.batch(step: 0, permutation: schedule.permutation(epoch: 0))))
    }

    /// The same step computed by a LocalExecutor on a fresh replica with the same parameters.
    func inProcess(_ task: StepTask) throws -> (FloatBuffer, StepStatistics) {
        let replica = try TrainingSession.loadDataAndModel(config).1
        let local = LocalExecutor(runner: try LaneRunner(network: replica, data: data, config: config, lanes: 1), unitsPerStep: config.unitsPerStep)
        let gradient = FloatBuffer(count: network.parameterCount)
        let statistics = try local.computeStep(task, parameters: network.parameters, gradientSum: gradient)
        return (gradient, statistics)
    }
}
