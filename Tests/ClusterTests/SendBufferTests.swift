import Cluster
import Engine
import Foundation
import Testing
import Training
import Transport
import Wire

/// Memory a transport may still read is never written: the coordinator sends parameters from
/// pooled copies and a worker its gradient blocks from pooled buffers, taking a fresh buffer
/// when a transport still holds the last one (as libzmq does while it cannot finish writing to
/// a stopped peer). The transports here hold every borrowed frame they are given, forever.
@Suite struct SendBufferTests {
    @Test func aPoolHandsOutOnlyBuffersNoTransportHolds() {
        let pool = SendBufferPool(count: 4)
        let first = pool.take()
        let second = pool.take()
        #expect(first.buffer !== second.buffer)  // both free, but already taken in this round
        pool.reclaim()
        first.tracker.retainOne()  // a transport holds the first
        let third = pool.take()
        #expect(third.buffer === second.buffer)
        let fourth = pool.take()
        #expect(fourth.buffer !== first.buffer && fourth.buffer !== second.buffer)
        #expect(pool.allocated == 3)
        first.tracker.releaseOne()
        pool.reclaim()
        let again = [pool.take(), pool.take(), pool.take()].map { ObjectIdentifier($0.buffer) }
        #expect(Set(again) == Set([first, second, fourth].map { ObjectIdentifier($0.buffer) }))
        #expect(pool.allocated == 3)
    }

    @Test func theCoordinatorNeverWritesParametersATransportStillReads() throws {
        var holding: HoldingServer?
        let scene = try InProcessScene(through: { server in
            let wrapped = HoldingServer(server)
            holding = wrapped
            return wrapped
        })
        let held = try #require(holding).held
        defer { scene.executor.shutdown() }
        let workers = try scene.join(["a", "b"])

        let first = scene.computeStepInBackground()
        for worker in workers {
            let (task, envelope) = try worker.nextTask()
            try worker.answer(task, envelope, unitLoss: nil)
        }
        _ = try first.wait()
        #expect(held.regions.count == 2)  // the parameters, to a and to b

        // What the trainer does next: update its parameters.
        scene.network.parameters.pointer.update(repeating: 7, count: scene.network.parameterCount)
        #expect(held.unchanged)

        let second = scene.computeStepInBackground()
        for worker in workers {
            let (task, envelope) = try worker.nextTask()
            #expect(task.parameters.toArray().allSatisfy { $0 == 7 })
            try worker.answer(task, envelope, unitLoss: nil)
        }
        _ = try second.wait()
        #expect(held.unchanged)
    }

    @Test func aWorkerNeverWritesGradientBlocksATransportStillReads() throws {
        let scene = try InProcessScene()
        defer { scene.executor.shutdown() }
        scene.network.initializeParameters(seed: 5)
        let configPath = ClusterFixtures.write(InProcessScene.yaml)
        let connector = HoldingConnector(scene.transport.connector(name: "w"))
        let worker = try Worker(options: WorkerOptions(endpoint: "in-process", configPath: configPath, name: "w"), connector: connector)
        worker.log = { _ in }
        let running = WorkerThread(worker)
        try scene.executor.waitForWorkers(1)

        let task = StepTask(step: 0, epoch: 0, indices: (0..<96).map { Int32($0) })
        _ = try scene.executor.computeStep(task, parameters: scene.network.parameters, gradientSum: scene.gradient)
        let held = try #require(connector.client).held
        #expect(held.regions.count == 2)  // units 0..<6: blocks [0, 4) and [4, 6)
        // Other parameters give other gradients, so a reused buffer would change.
        let parameters = scene.network.parameters.pointer
        for i in 0..<scene.network.parameterCount { parameters[i] *= 0.5 }
        _ = try scene.executor.computeStep(
            StepTask(step: 1, epoch: 0, indices: task.indices), parameters: scene.network.parameters, gradientSum: scene.gradient)
        #expect(held.regions.count == 4)
        #expect(held.unchanged)
        scene.executor.shutdown()
        #expect(running.finished(), "the worker did not stop")
    }
}

/// Borrowed frames with a tracker, held (counted in, never out) from the moment they are sent,
/// with their bytes at that moment.
final class HeldRegions: @unchecked Sendable {
    // Sendable: used by one thread at a time (the sender, then the test after the step).
    private(set) var regions: [(region: BorrowedRegion, bytes: [UInt8])] = []

    func hold(_ frames: [OutgoingFrame]) {
        for case .borrowed(let region) in frames {
            guard let tracker = region.tracker else { continue }
            tracker.retainOne()
            regions.append((region, region.withUnsafeBytes { Array($0) }))
        }
    }

    /// Whether every held region still has the bytes it had when it was sent.
    var unchanged: Bool { regions.allSatisfy { held in held.region.withUnsafeBytes { Array($0) } == held.bytes } }
}

final class HoldingServer: ServerTransport {
    let held = HeldRegions()
    private let inner: any ServerTransport
    init(_ inner: any ServerTransport) { self.inner = inner }
    var endpoint: String { inner.endpoint }
    var trafficBytes: Int { inner.trafficBytes }
    func send(_ frames: [OutgoingFrame], to address: PeerAddress) throws {
        held.hold(frames)  // before the receiver can answer
        try inner.send(frames, to: address)
    }
    func receive(timeout: Duration) throws -> Delivery? { try inner.receive(timeout: timeout) }
    func close() { inner.close() }
}

final class HoldingClient: ClientTransport {
    let held = HeldRegions()
    private let inner: any ClientTransport
    init(_ inner: any ClientTransport) { self.inner = inner }
    func send(_ frames: [OutgoingFrame]) throws {
        held.hold(frames)  // before the receiver can answer
        try inner.send(frames)
    }
    func receive(timeout: Duration) throws -> [any IncomingFrame]? { try inner.receive(timeout: timeout) }
    func close() { inner.close() }
}

/// Holds what the worker sends on its main channel.
final class HoldingConnector: ClientConnector, @unchecked Sendable {
    // Sendable: `client` is set by the worker's thread before the test reads it after a step.
    private let inner: InProcessConnector
    private(set) var client: HoldingClient?
    init(_ inner: InProcessConnector) { self.inner = inner }
    func connect(_ channel: Channel, maximumFrameBytes: Int?) throws -> any ClientTransport {
        let transport = try inner.connect(channel, maximumFrameBytes: maximumFrameBytes)
        guard channel == .main else { return transport }
        let holding = HoldingClient(transport)
        client = holding
        return holding
    }
}

/// A Worker running on its own thread until the coordinator shuts it down.
final class WorkerThread: @unchecked Sendable {
    // Sendable: the worker is used only by the thread started here.
    private let done = DispatchSemaphore(value: 0)

    init(_ worker: Worker) {
        let shared = HandedOver(worker)
        let thread = Thread { [done] in
            try? shared.value.run()
            done.signal()
        }
        thread.start()
    }

    func finished() -> Bool { done.wait(timeout: .now() + 30) == .success }
}
