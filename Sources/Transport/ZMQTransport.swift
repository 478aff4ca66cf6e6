// The ZeroMQ transport (DESIGN §5): the coordinator binds a ROUTER, each worker connects two
// DEALERs, one per channel.
//
// Addressing: a DEALER presents a routing id; the ROUTER puts it in front of every message it
// receives and takes it off every message it sends. A worker's main DEALER presents its PeerID,
// its heartbeat DEALER the PeerID + "|hb", its configuration DEALER the PeerID + "|cfg" — those
// suffixes are how this file (and only this file) tells the channels apart. ROUTER_MANDATORY makes a send to a routing id with no connection
// fail with EHOSTUNREACH, which surfaces as TransportError.peerUnreachable.
//
// Tunables: no high-water mark on the task/result sockets (a step's messages must never be
// dropped; their number is bounded by the shards), LINGER 0 everywhere (ZMQSocket), reconnect
// after 100 ms doubling to 2 s, ZMQ_MAXMSGSIZE from `maximumFrameBytes` (libzmq checks each
// frame's declared size before allocating it and drops the connection). Security: with CurveServerSecurity the ROUTER is a CURVE server
// whose clients the ZAP authenticator checks against the allow-list; with CurveClientSecurity a
// DEALER is a CURVE client (SecurityPolicy.swift).

import Wire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class ZMQServerTransport: ServerTransport {
    /// Kernel buffer size asked for on the main channel: a step moves megabytes, and with the
    /// ~200 KB default every message takes dozens of write/read wake-ups on both sides.
    static let kernelBufferBytes: Int32 = 4 << 20

    /// The routing-id suffix of a worker's DEALER for each channel.
    static func suffix(_ channel: Channel) -> [UInt8] {
        switch channel {
        case .main: []
        case .heartbeat: Array("|hb".utf8)
        case .configuration: Array("|cfg".utf8)
        }
    }

    public let endpoint: String
    public private(set) var trafficBytes = 0
    private let socket: ZMQSocket
    private let authenticator: ZAPAuthenticator?
    private var closed = false

    /// Binds a ROUTER at `bind` (e.g. tcp://0.0.0.0:5555, tcp://127.0.0.1:*, ipc:///tmp/x.sock).
    /// With `security`, starts the ZAP authenticator first: without it libzmq would let in any
    /// CURVE client that knows the server key. `onRefusal` hears of refused clients. A client
    /// that sends a frame larger than `maximumFrameBytes` is disconnected before it is read.
    public init(
        bind: String, security: CurveServerSecurity? = nil, maximumFrameBytes: Int? = nil,
        onRefusal: @escaping @Sendable (ZAPRefusal) -> Void = { _ in }
    ) throws {
        socket = try ZMQSocket(.router)
        try socket.setRouterMandatory(true)
        try socket.setSendHighWaterMark(0)
        try socket.setReceiveHighWaterMark(0)
        try socket.setKernelBuffers(bytes: ZMQServerTransport.kernelBufferBytes)
        if let maximumFrameBytes { try socket.setMaximumMessageSize(Int64(maximumFrameBytes)) }
        if let security {
            let authenticator = try ZAPAuthenticator(allowList: security.allowList, onRefusal: onRefusal)
            try authenticator.start()
            try secureServer(socket, keys: security.keyPair, authenticator: authenticator)
            self.authenticator = authenticator
        } else {
            authenticator = nil
        }
        do {
            try socket.bind(bind)
        } catch {
            socket.close()
            authenticator?.stop()
            throw error
        }
        endpoint = (try? socket.lastEndpoint) ?? bind
    }

    deinit { close() }

    public func send(_ frames: [OutgoingFrame], to address: PeerAddress) throws {
        let routingID = address.peer.bytes + Self.suffix(address.channel)
        do {
            try socket.send(to: routingID, frames)
        } catch let error as ZMQError where error.isPeerGone {
            throw TransportError.peerUnreachable(address)
        }
        trafficBytes += frames.reduce(routingID.count) { $0 + $1.byteCount }
    }

    public func receive(timeout: Duration) throws -> Delivery? {
        let received: [ZMQReceivedFrame]?
        do {
            received = try socket.receive(timeout: timeout)
        } catch let error as ZMQError where error.isInterrupted {
            return nil
        }
        guard let received else { return nil }
        trafficBytes += received.reduce(0) { $0 + $1.byteCount }
        // A ROUTER always puts the sender's routing id first.
        guard let (routingID, frames) = Self.splitRoutingID(received) else { return nil }
        for channel in [Channel.heartbeat, .configuration] {
            let suffix = Self.suffix(channel)
            if routingID.count > suffix.count, routingID.suffix(suffix.count).elementsEqual(suffix) {
                return Delivery(from: PeerAddress(PeerID(Array(routingID.dropLast(suffix.count))), channel), frames: frames)
            }
        }
        return Delivery(from: PeerAddress(PeerID(routingID), .main), frames: frames)
    }

    /// Splits a ROUTER message into the sender's routing id and the message frames (an empty
    /// delimiter frame after the id, as REQ peers send, is skipped); nil without a routing id.
    public static func splitRoutingID(_ frames: [ZMQReceivedFrame]) -> (routingID: [UInt8], frames: [any IncomingFrame])? {
        guard let first = frames.first, first.byteCount > 0 else { return nil }
        var rest = frames.dropFirst()
        if let delimiter = rest.first, delimiter.byteCount == 0 { rest = rest.dropFirst() }
        return (first.bytes, rest.map { $0 })
    }

    /// Gives libzmq a moment to flush what was just sent (e.g. SHUTDOWN), then closes the
    /// socket and stops the authenticator.
    public func close() {
        guard !closed else { return }
        closed = true
        usleep(200_000)
        socket.close()
        authenticator?.stop()
    }
}

/// A worker's way to a ZeroMQ coordinator at `endpoint`.
public struct ZMQConnector: ClientConnector {
    public let endpoint: String
    public let security: CurveClientSecurity?
    /// The main DEALER's routing id: the worker's name and a random number, so a restarted
    /// worker of the same name is a new peer.
    public let routingID: [UInt8]

    public init(endpoint: String, workerName: String, security: CurveClientSecurity? = nil) {
        self.endpoint = endpoint
        self.security = security
        routingID = Array("\(workerName)#\(UInt32.random(in: 0...UInt32.max))".utf8.prefix(200))
    }

    public func connect(_ channel: Channel, maximumFrameBytes: Int?) throws -> any ClientTransport {
        let socket = try ZMQSocket(.dealer)
        try socket.setRoutingID(routingID + ZMQServerTransport.suffix(channel))
        if channel == .main {
            try socket.setSendHighWaterMark(0)
            try socket.setReceiveHighWaterMark(0)
            try socket.setKernelBuffers(bytes: ZMQServerTransport.kernelBufferBytes)
        }
        // A send only waits when the connection is gone for good: libzmq does not reconnect
        // after a protocol error (a refused CURVE handshake, an oversized frame) and leaves the
        // DEALER with no pipe. Say so instead of hanging. (The heartbeat never waits.)
        try socket.setSendTimeout(ZMQClientTransport.lostAfter)
        if let maximumFrameBytes { try socket.setMaximumMessageSize(Int64(maximumFrameBytes)) }
        try socket.setReconnectInterval(initial: .milliseconds(100), maximum: .seconds(2))
        if let security {
            try secureClient(socket, serverPublicKey: security.serverPublicKey, clientKeys: security.keyPair)
        }
        try socket.connect(endpoint)
        return ZMQClientTransport(socket: socket, channel: channel)
    }
}

final class ZMQClientTransport: ClientTransport {
    /// How long a main-channel send may wait before the connection counts as lost.
    static let lostAfter = Duration.seconds(5)
    private let socket: ZMQSocket
    private let channel: Channel

    init(socket: ZMQSocket, channel: Channel) {
        self.socket = socket
        self.channel = channel
    }

    func send(_ frames: [OutgoingFrame]) throws {
        guard channel == .heartbeat else {
            do {
                return try socket.send(frames)
            } catch let error as ZMQError where error.isWouldBlock {
                throw TransportError.connectionLost(channel)
            }
        }
        do {
            try socket.send(frames, dontWait: true)
        } catch let error as ZMQError where error.isWouldBlock {
            return  // the queue is full while the coordinator is away: drop this beat
        }
    }

    func receive(timeout: Duration) throws -> [any IncomingFrame]? {
        try socket.receive(timeout: timeout)
    }

    func close() { socket.close() }
}
