import Engine
import Testing
import Transport
import Wire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("ZeroMQ sockets")
struct ZMQSocketTests {
    private static let patience = Duration.seconds(10)
    private static let jobID = Digest32(bytes: (0..<32).map { UInt8($0 &* 7 &+ 1) }) ?? .zero

    /// A task carrying `count` parameters i·0.5, sent zero-copy and tracked.
    private func bigTask(_ parameters: FloatBuffer, tracker: SendTracker) throws -> [OutgoingFrame] {
        let task = TaskMessage(
            kind: .train, epoch: 1, firstUnit: 0, unitCount: 2, unitSize: 2, split: .train,
            sampleIndices: [4, 3, 2, 1], parameters: WireFloats(parameters, tracker: tracker))
        return try WireProtocol.encode(WireEnvelope(jobID: Self.jobID, step: 7, shardID: 1, message: .task(task)))
    }

    /// Sends a 1M-float task from a DEALER to a ROUTER at `endpoint` and a heartbeat back.
    private func exchangeMillionFloats(bindTo endpoint: String) throws {
        let router = try ZMQSocket(.router)
        try router.setRouterMandatory(true)
        try router.setReceiveHighWaterMark(100)
        try router.bind(endpoint)
        let dealer = try ZMQSocket(.dealer)
        try dealer.setRoutingID(Array("worker-1".utf8))
        try dealer.setSendHighWaterMark(100)
        try dealer.connect(try router.lastEndpoint)

        let count = 1 << 20
        let parameters = FloatBuffer(count: count)
        for i in 0..<count { parameters[i] = Float(i) * 0.5 }
        let tracker = SendTracker()
        try dealer.send(try bigTask(parameters, tracker: tracker))

        let received = try #require(try router.receive(timeout: Self.patience))
        let (routingID, frames) = try #require(ZMQServerTransport.splitRoutingID(received))
        #expect(routingID == Array("worker-1".utf8))
        #expect(frames[3].byteCount == 4 * count)
        let envelope = try WireProtocol.decode(frames)
        #expect(envelope.step == 7 && envelope.shardID == 1 && envelope.jobID == Self.jobID)
        guard case .task(let task) = envelope.message else {
            Issue.record("expected a task, got \(envelope.kind)")
            return
        }
        let copy = FloatBuffer(count: count)
        task.parameters.copy(into: copy.pointer)
        #expect(memcmp(copy.pointer, parameters.pointer, 4 * count) == 0)
        #expect(task.sampleIndices == [4, 3, 2, 1])
        // libzmq lets go of the zero-copy buffer once it is on the wire.
        #expect(tracker.waitUntilReleased(timeout: Self.patience))

        let reply = WireEnvelope(jobID: Self.jobID, step: 7, message: .heartbeat(HeartbeatMessage(sequence: 1, busy: false)))
        try router.send(to: routingID, try WireProtocol.encode(reply))
        let back = try #require(try dealer.receive(timeout: Self.patience))
        #expect(try WireProtocol.decode(back) == reply)
        router.close()
        dealer.close()
        #expect(router.isClosed && dealer.isClosed)
    }

    @Test("a ROUTER and a DEALER exchange a million floats zero-copy over tcp loopback")
    func millionFloatsOverTCP() throws {
        try exchangeMillionFloats(bindTo: "tcp://127.0.0.1:*")
    }

    @Test("a ROUTER and a DEALER exchange a million floats zero-copy over ipc")
    func millionFloatsOverIPC() throws {
        let path = "/tmp/ssgd-test-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).sock"
        defer { unlink(path) }
        try exchangeMillionFloats(bindTo: "ipc://\(path)")
    }

    @Test("a ROUTER message splits into routing id and protocol frames")
    func splitsRoutingID() throws {
        let body = try WireProtocol.encode(
            WireEnvelope(jobID: Self.jobID, step: 107, shardID: 7, message: .heartbeat(HeartbeatMessage(sequence: 1 << 40, busy: true))))
        let frames = try ([.bytes([0, 1, 2, 3])] + body).map { try ZMQReceivedFrame($0) }
        let (routingID, rest) = try #require(ZMQServerTransport.splitRoutingID(frames))
        #expect(routingID == [0, 1, 2, 3])
        #expect(try WireProtocol.decode(rest) == WireProtocol.decode(Array(frames.dropFirst())))
        #expect(ZMQServerTransport.splitRoutingID([]) == nil)
    }

    @Test("binding a port that is in use explains itself and suggests a free one")
    func addressInUse() throws {
        let first = try ZMQSocket(.router)
        try first.bind("tcp://127.0.0.1:*")
        let endpoint = try first.lastEndpoint
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:") && !endpoint.hasSuffix(":*"))
        let second = try ZMQSocket(.router)
        let error = try #require(throws: ZMQError.self) { try second.bind(endpoint) }
        #expect(error.isAddressInUse)
        #expect(error.endpoint == endpoint)
        #expect(error.description.contains(endpoint))
        #expect(error.description.contains("address already in use"))
        #expect(error.description.contains("tcp://127.0.0.1:*"))
    }

    @Test("a malformed endpoint gives a clear error")
    func badEndpoint() throws {
        let socket = try ZMQSocket(.dealer)
        let error = try #require(throws: ZMQError.self) { try socket.connect("tcp://localhost-no-port") }
        #expect(error.endpoint == "tcp://localhost-no-port")
        #expect(error.description.contains("invalid endpoint"))
        let transport = try #require(throws: ZMQError.self) { try socket.bind("carrier-pigeon://x") }
        #expect(transport.description.contains("unsupported transport"))
    }

    @Test("a tcp port outside 1–65535 is refused, not taken modulo 65536")
    func portOutsideTheRange() throws {
        let socket = try ZMQSocket(.router)
        for endpoint in ["tcp://127.0.0.1:99999", "tcp://127.0.0.1:0", "tcp://127.0.0.1:-1", "tcp://127.0.0.1:65536"] {
            let error = try #require(throws: ZMQError.self) { try socket.bind(endpoint) }
            #expect(error.endpoint == endpoint)
            #expect(error.description.contains("from 1 to 65535"), "\(error)")
        }
        let dealer = try ZMQSocket(.dealer)
        let error = try #require(throws: ZMQError.self) { try dealer.connect("tcp://127.0.0.1:70000") }
        #expect(error.description.contains("from 1 to 65535"))
        #expect(throws: ZMQError.self) { try dealer.connect("tcp://127.0.0.1:*") }
    }

    @Test("localhost and [::1] are this machine: both bind as loopback and carry messages", arguments: ["localhost", "[::1]"])
    func loopbackNames(host: String) throws {
        let router = try ZMQSocket(.router)
        try router.bind("tcp://\(host):*")
        let bound = try router.lastEndpoint
        #expect(bound.hasPrefix(host == "localhost" ? "tcp://127.0.0.1:" : "tcp://[::1]:"), "\(bound)")
        let port = bound.split(separator: ":").last.map(String.init) ?? ""
        let dealer = try ZMQSocket(.dealer)
        try dealer.connect("tcp://\(host):\(port)")
        try dealer.send([.bytes([42])])
        let received = try #require(try router.receive(timeout: .seconds(10)))
        #expect(received.last?.bytes == [42])
    }

    @Test("receive returns nil after about the timeout when nothing arrives")
    func receiveTimesOut() throws {
        let router = try ZMQSocket(.router)
        try router.bind("tcp://127.0.0.1:*")
        let clock = ContinuousClock()
        let start = clock.now
        let frames = try router.receive(timeout: .milliseconds(200))
        let elapsed = clock.now - start
        #expect(frames == nil)
        #expect(elapsed >= .milliseconds(190))
        #expect(elapsed < .seconds(2))
    }

    @Test("a mandatory ROUTER reports a gone peer and releases the zero-copy payload")
    func routerMandatoryPeerGone() throws {
        let router = try ZMQSocket(.router)
        try router.setRouterMandatory(true)
        try router.bind("tcp://127.0.0.1:*")
        let tracker = SendTracker()
        let payload = FloatBuffer(count: 1000)
        let error = try #require(throws: ZMQError.self) {
            try router.send(to: Array("nobody".utf8), [.bytes([1]), .floats(payload, tracker: tracker)])
        }
        #expect(error.isPeerGone)
        #expect(error.description.contains("peer gone"))
        #expect(tracker.pendingCount == 0)
    }

    @Test("poll reports which socket has a message")
    func pollReportsReadySocket() throws {
        let router = try ZMQSocket(.router)
        try router.setRouterMandatory(true)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint
        let a = try ZMQSocket(.dealer)
        try a.setRoutingID([65])
        try a.connect(endpoint)
        let b = try ZMQSocket(.dealer)
        try b.setRoutingID([66])
        try b.connect(endpoint)
        // Each dealer says hello so the router knows both routing ids.
        try a.send([.bytes([1])])
        try b.send([.bytes([2])])
        for _ in 0..<2 { _ = try #require(try router.receive(timeout: Self.patience)) }

        #expect(try ZMQPoller.poll([ZMQPollItem(a), ZMQPollItem(b)], timeout: .zero) == [[], []])
        try router.send(to: [66], [.bytes([9])])
        let ready = try ZMQPoller.poll([ZMQPollItem(a), ZMQPollItem(b)], timeout: Self.patience)
        #expect(ready == [[], .readable])
        #expect(try b.receive(timeout: .zero)?.map(\.bytes) == [[9]])
    }

    @Test("a closed socket refuses to work instead of crashing")
    func closedSocket() throws {
        let socket = try ZMQSocket(.dealer)
        socket.close()
        socket.close()
        #expect(throws: ZMQError.self) { try socket.send([.bytes([1])]) }
        #expect(throws: ZMQError.self) { try socket.receive(timeout: .zero) }
        #expect(throws: ZMQError.self) { try socket.lastEndpoint }
    }
}
