import Cluster
import Engine
import Foundation
import TestSupport
import Testing
import Transport
import Wire

/// What anyone who reaches a plaintext endpoint can make ssgd spend: no frame larger than the
/// job's largest legitimate one is read (on the coordinator's and the worker's sockets), and a
/// flood of bad messages costs a few log lines, each with a count.
@Suite(.serialized) struct UnauthenticatedPeerTests {
    static let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "vanilla", epochs: 1))

    /// 2 MiB of floats: over the MLP fixture's limit (its largest frame is a 1 MiB config).
    static let oversizeFloats = WireFloats([Float](repeating: 1, count: 512 * 1024))

    @Test func theCoordinatorDoesNotReadAFrameLargerThanItsJobsLargest() throws {
        let endpoint = ClusterFixtures.ipcEndpoint()
        let coordinator = try SSGDProcess(["coordinator", "--config", Self.config, "--bind", endpoint,
                                           "--run-dir", Fixtures.temporaryDirectory() + "/run", "--threads", "1"])
        defer { coordinator.wait(timeout: 0) }
        #expect(coordinator.waitForOutput("waiting for", timeout: 60), "\(coordinator.output)")
        let stranger = try ZMQSocket(.dealer)
        defer { stranger.close() }
        try stranger.connect(endpoint)
        // Read, this would be dropped as "unexpected task from a worker": the first line about this peer.
        let task = TaskMessage(kind: .train, epoch: 0, firstUnit: 0, unitCount: 1, unitSize: 16, split: .train,
                               sampleIndices: [Int32](repeating: 0, count: 16), parameters: Self.oversizeFloats)
        try stranger.send(try WireProtocol.encode(WireEnvelope(jobID: .zero, message: .task(task))))
        // The oversize frame costs the stranger its connection; it reconnects and keeps talking.
        let beat = try WireProtocol.encode(WireEnvelope(jobID: .zero, message: .heartbeat(HeartbeatMessage(sequence: 1, busy: false))))
        for _ in 0..<300 where !coordinator.output.contains("dropped") {
            try stranger.send(beat)
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(coordinator.output.contains("warning: dropped heartbeat from a stranger"), "\(coordinator.output)")
        #expect(!coordinator.output.contains("unexpected task"))
    }

    /// A fake coordinator welcomes the worker, then sends it 2 MiB of junk: the worker never
    /// reads it, and its main connection ends (libzmq does not reconnect after a protocol
    /// error). Asked to rejoin, it says that connection is gone and exits instead of hanging.
    @Test func aWorkerDoesNotReadAFrameLargerThanItsJobsLargest() throws {
        let endpoint = ClusterFixtures.ipcEndpoint()
        let fake = try ZMQSocket(.router)
        defer { fake.close() }
        try fake.bind(endpoint)
        let worker = try SSGDProcess(["worker", "--connect", endpoint, "--config", Self.config, "--name", "small",
                                      "--handshake-timeout", "3", "--threads", "1"])
        defer { worker.wait(timeout: 0) }
        let hello = try #require(try fake.receive(timeout: .seconds(60)), "\(worker.output)")
        let routingID = try #require(hello.first?.bytes)
        let welcome = WelcomeMessage(workerIndex: 0, heartbeatIntervalMilliseconds: 100, config: "")
        try fake.send(to: routingID, try WireProtocol.encode(WireEnvelope(jobID: .zero, message: .welcome(welcome))))
        #expect(worker.waitForOutput("joined as #0", timeout: 60), "\(worker.output)")
        // Read, 2 MiB of junk would be dropped as a malformed message (bad magic).
        try fake.send(to: routingID, [.bytes([UInt8](repeating: 0x58, count: 2 << 20))])
        // Its heartbeat channel still works: ask it to handshake again.
        let unknown = try WireProtocol.encode(WireEnvelope(
            jobID: .zero, message: .error(ErrorMessage(code: .unknownWorker, message: "handshake again"))))
        for _ in 0..<600 where !worker.output.contains("joining again") {
            if let beat = try fake.receive(timeout: .milliseconds(100)), let from = beat.first?.bytes,
               from == routingID + Array("|hb".utf8) {
                try fake.send(to: from, unknown)
            }
        }
        #expect(worker.wait(timeout: 60) == 1, "\(worker.output)")
        #expect(worker.output.contains("the main connection to the coordinator ended for good"), "\(worker.output)")
        #expect(!worker.output.contains("dropped a malformed message"))
    }

    /// 2,000 HELLOs of another protocol version and 2,000 junk messages from one peer: a few
    /// lines, which together count every one.
    @Test func aFloodOfRefusalsAndDropsCostsAFewLinesWithCounts() throws {
        let scene = try CoordinatorScene(method: "vanilla", seed: 13)
        defer { scene.executor.shutdown() }
        let flood = try ZMQSocket(.dealer)
        defer { flood.close() }
        try flood.connect(scene.endpoint)
        var oldVersion = try WireProtocol.encode(WireEnvelope(jobID: scene.identity.jobID, message: .hello(HelloMessage(
            jobID: scene.identity.jobID, dataFingerprint: scene.identity.dataFingerprint, capabilities: [.train],
            lanes: 1, blasCore: BLASThreads.coreName, workerName: "flood", processID: 1))))
        if case .bytes(var header) = oldVersion[0] {
            header[4] = 99
            oldVersion[0] = .bytes(header)
        }
        for _ in 0..<2000 { try flood.send(oldVersion) }
        for _ in 0..<2000 { try flood.send([.bytes(Array("junk".utf8))]) }
        // Then it joins: everything it sent before has been handled once it is in.
        try flood.send(try WireProtocol.encode(WireEnvelope(jobID: scene.identity.jobID, message: .hello(HelloMessage(
            jobID: scene.identity.jobID, dataFingerprint: scene.identity.dataFingerprint, capabilities: [.train],
            lanes: 1, blasCore: BLASThreads.coreName, workerName: "flood", processID: 1)))))
        try scene.executor.waitForWorkers(1)
        scene.executor.shutdown()  // reports what is still held back

        let refused = scene.lines.filter { $0.contains("refused a worker") }
        let dropped = scene.lines.filter { $0.contains("warning: dropped") }
        #expect(Self.events(in: refused) == 2000, "\(refused)")
        #expect(Self.events(in: dropped) == 2000, "\(dropped)")
        #expect(scene.executor.droppedMessages == 2000)
        #expect(refused.count + dropped.count <= 12, "\(scene.lines)")
    }

    /// How many events rate-limited lines stand for: a line is one event plus "(+N more …)";
    /// a summary line "+N more … the latest: …" is N.
    static func events(in lines: [String]) -> Int {
        lines.reduce(0) { total, line in
            func number(after marker: String) -> Int {
                guard let range = line.range(of: marker) else { return 0 }
                return Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0
            }
            return total + (line.hasPrefix("+") ? number(after: "+") : 1 + number(after: "(+"))
        }
    }
}
