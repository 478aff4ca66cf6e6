import Foundation
import Synchronization
import Training
import Transport
import Wire

// A worker's liveness line to the coordinator, on its own thread and the transport's heartbeat
// channel, so heartbeats keep flowing while the main thread is busy computing. The coordinator
// echoes each heartbeat; silence tells the worker the coordinator is gone, and an ERROR
// unknownWorker (a restarted coordinator) asks it to handshake again. A stopped (SIGSTOP)
// worker stops heartbeating, which is how the coordinator tells it from a slow one.

final class WorkerHeartbeat: Sendable {
    let busy = Atomic<Bool>(false)
    let rejoinRequested = Atomic<Bool>(false)
    private let stopRequested = Atomic<Bool>(false)
    private let lastHeardBits = Atomic<UInt64>(MonotonicClock.now().bitPattern)
    private let finished = Atomic<Bool>(false)

    private let connector: any ClientConnector
    private let jobID: Digest32
    private let interval: Double

    init(connector: any ClientConnector, jobID: Digest32, interval: Double) {
        self.connector = connector
        self.jobID = jobID
        self.interval = interval
    }

    /// Seconds since the coordinator was last heard from (on either channel).
    var silence: Double { MonotonicClock.now() - Double(bitPattern: lastHeardBits.load(ordering: .relaxed)) }

    func heard() { lastHeardBits.store(MonotonicClock.now().bitPattern, ordering: .relaxed) }

    func start() {
        let thread = Thread { [self] in self.loop() }
        thread.name = "ssgd-heartbeat"
        thread.start()
    }

    func stop() {
        stopRequested.store(true, ordering: .relaxed)
        let deadline = MonotonicClock.now() + 2
        while !finished.load(ordering: .relaxed) && MonotonicClock.now() < deadline { usleep(1000) }
    }

    private func loop() {
        defer { finished.store(true, ordering: .relaxed) }
        let channel: any ClientTransport
        do {
            channel = try connector.connect(.heartbeat, maximumFrameBytes: WireLimits.largestControlFrameBytes)
        } catch {
            Console.error("ssgd: heartbeat channel failed: \(error)")
            return
        }
        defer { channel.close() }
        var sequence: UInt64 = 0
        var nextBeat = 0.0
        while !stopRequested.load(ordering: .relaxed) {
            let now = MonotonicClock.now()
            if now >= nextBeat {
                sequence += 1
                let message = WireMessage.heartbeat(HeartbeatMessage(sequence: sequence, busy: busy.load(ordering: .relaxed)))
                if let frames = try? WireProtocol.encode(WireEnvelope(jobID: jobID, message: message)) {
                    try? channel.send(frames)
                }
                nextBeat = now + interval
            }
            guard let frames = try? channel.receive(timeout: .milliseconds(50)),
                  let envelope = try? WireProtocol.decode(frames) else { continue }
            switch envelope.message {
            case .heartbeat:
                heard()
            case .error(let error) where error.code == .unknownWorker:
                heard()
                rejoinRequested.store(true, ordering: .relaxed)
            default:
                continue
            }
        }
    }
}
