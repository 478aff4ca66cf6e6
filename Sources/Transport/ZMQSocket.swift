// A ZeroMQ socket. Not Sendable: create it on the thread that uses it and keep it there
// (libzmq sockets are not thread-safe). LINGER is 0 from creation, so close never blocks and
// context termination never waits for unsent messages.

import CZMQ
import Wire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class ZMQSocket {
    public enum Kind: Sendable {
        case pair, request, reply, dealer, router

        var rawValue: Int32 {
            switch self {
            case .pair: ZMQ_PAIR
            case .request: ZMQ_REQ
            case .reply: ZMQ_REP
            case .dealer: ZMQ_DEALER
            case .router: ZMQ_ROUTER
            }
        }
    }

    public let kind: Kind
    let context: ZMQContext  // keeps the context alive while the socket is open
    private var handle: UnsafeMutableRawPointer?

    public init(_ kind: Kind, context: ZMQContext? = nil) throws {
        let context = try context ?? ZMQContext.shared()
        guard let socket = zmq_socket(context.handle, kind.rawValue) else {
            throw ZMQError.last("zmq_socket")
        }
        var zero: Int32 = 0
        guard zmq_setsockopt(socket, ZMQ_LINGER, &zero, MemoryLayout<Int32>.size) == 0 else {
            let error = ZMQError.last("set ZMQ_LINGER")
            zmq_close(socket)
            throw error
        }
        self.kind = kind
        self.context = context
        handle = socket
    }

    deinit { close() }

    /// Closes the socket (LINGER 0: pending outgoing messages are dropped). Idempotent.
    public func close() {
        guard let socket = handle else { return }
        zmq_close(socket)
        handle = nil
    }

    public var isClosed: Bool { handle == nil }

    private func open(_ operation: String) throws -> UnsafeMutableRawPointer {
        guard let socket = handle else {
            throw ZMQError(code: ENOTSOCK, operation: operation, detail: "the socket is closed")
        }
        return socket
    }

    // MARK: - Endpoints

    /// Binds, e.g. `tcp://127.0.0.1:*` (ephemeral port: read `lastEndpoint`) or `ipc:///tmp/x`.
    /// `tcp://localhost:…` binds 127.0.0.1 and `tcp://[::1]:…` the IPv6 loopback (see ZMQEndpoint).
    public func bind(_ endpoint: String) throws {
        let socket = try open("bind")
        let checked = try ZMQEndpoint(endpoint, operation: "bind")
        if checked.isIPv6 { try set(ZMQ_IPV6, "ZMQ_IPV6", int: 1) }
        guard zmq_bind(socket, checked.forBind) == 0 else { throw ZMQError.last("bind", endpoint: endpoint) }
    }

    public func connect(_ endpoint: String) throws {
        let socket = try open("connect")
        let checked = try ZMQEndpoint(endpoint, operation: "connect")
        if checked.isIPv6 { try set(ZMQ_IPV6, "ZMQ_IPV6", int: 1) }
        guard zmq_connect(socket, endpoint) == 0 else { throw ZMQError.last("connect", endpoint: endpoint) }
    }

    public func unbind(_ endpoint: String) throws {
        let socket = try open("unbind")
        guard zmq_unbind(socket, endpoint) == 0 else { throw ZMQError.last("unbind", endpoint: endpoint) }
    }

    public func disconnect(_ endpoint: String) throws {
        let socket = try open("disconnect")
        guard zmq_disconnect(socket, endpoint) == 0 else {
            throw ZMQError.last("disconnect", endpoint: endpoint)
        }
    }

    /// The endpoint of the last bind or connect, with the real port for `tcp://…:*`.
    public var lastEndpoint: String {
        get throws {
            let socket = try open("get ZMQ_LAST_ENDPOINT")
            var buffer = [CChar](repeating: 0, count: 1024)
            var size = buffer.count
            guard zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else {
                throw ZMQError.last("get ZMQ_LAST_ENDPOINT")
            }
            buffer[buffer.count - 1] = 0
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    // MARK: - Options

    /// Reconnect after `initial`, doubling up to `maximum` (libzmq's own backoff).
    public func setReconnectInterval(initial: Duration, maximum: Duration) throws {
        try set(ZMQ_RECONNECT_IVL, "ZMQ_RECONNECT_IVL", int: milliseconds(initial, "ZMQ_RECONNECT_IVL"))
        try set(ZMQ_RECONNECT_IVL_MAX, "ZMQ_RECONNECT_IVL_MAX", int: milliseconds(maximum, "ZMQ_RECONNECT_IVL_MAX"))
    }

    private func set(_ option: Int32, _ name: String, int value: Int32) throws {
        let socket = try open("set \(name)")
        var value = value
        guard zmq_setsockopt(socket, option, &value, MemoryLayout<Int32>.size) == 0 else {
            throw ZMQError.last("set \(name)")
        }
    }

    private func set(_ option: Int32, _ name: String, bytes: [UInt8]) throws {
        let socket = try open("set \(name)")
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(socket, option, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw ZMQError.last("set \(name)") }
    }

    private func milliseconds(_ duration: Duration, _ name: String) throws -> Int32 {
        let ms = Self.milliseconds(duration)
        guard ms <= Int(Int32.max) else {
            throw ZMQError(code: EINVAL, operation: "set \(name)", detail: "\(duration) is too long")
        }
        return Int32(ms)
    }

    /// Whole milliseconds, rounded up (so 0.1 ms still waits), never negative.
    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
        let perMillisecond: Int64 = 1_000_000_000_000_000
        let (ms, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return Int.max }
        let fraction = (attoseconds + perMillisecond - 1) / perMillisecond
        return Int(clamping: ms.addingReportingOverflow(fraction).partialValue)
    }

    /// Outgoing queue limit in messages (ZMQ_SNDHWM); 0 = unlimited.
    public func setSendHighWaterMark(_ messages: Int32) throws {
        try set(ZMQ_SNDHWM, "ZMQ_SNDHWM", int: messages)
    }

    /// Kernel send and receive buffer sizes of the socket's connections (ZMQ_SNDBUF, ZMQ_RCVBUF;
    /// SO_SNDBUF / SO_RCVBUF, which Linux caps at net.core.wmem_max / rmem_max).
    public func setKernelBuffers(bytes: Int32) throws {
        try set(ZMQ_SNDBUF, "ZMQ_SNDBUF", int: bytes)
        try set(ZMQ_RCVBUF, "ZMQ_RCVBUF", int: bytes)
    }

    /// Incoming queue limit in messages (ZMQ_RCVHWM); 0 = unlimited.
    public func setReceiveHighWaterMark(_ messages: Int32) throws {
        try set(ZMQ_RCVHWM, "ZMQ_RCVHWM", int: messages)
    }

    /// ROUTER: fail sends to unknown routing ids with EHOSTUNREACH (`isPeerGone`) instead of
    /// dropping them silently.
    public func setRouterMandatory(_ on: Bool) throws {
        try set(ZMQ_ROUTER_MANDATORY, "ZMQ_ROUTER_MANDATORY", int: on ? 1 : 0)
    }

    /// Queue messages only to completed connections.
    public func setImmediate(_ on: Bool) throws {
        try set(ZMQ_IMMEDIATE, "ZMQ_IMMEDIATE", int: on ? 1 : 0)
    }

    /// Timeout of blocking libzmq receives (ZMQ_RCVTIMEO). `receive(timeout:)` polls with its own
    /// timeout and does not need this.
    public func setReceiveTimeout(_ timeout: Duration) throws {
        try set(ZMQ_RCVTIMEO, "ZMQ_RCVTIMEO", int: try milliseconds(timeout, "ZMQ_RCVTIMEO"))
    }

    /// Timeout of blocking sends (ZMQ_SNDTIMEO); after it a send throws `isWouldBlock`.
    public func setSendTimeout(_ timeout: Duration) throws {
        try set(ZMQ_SNDTIMEO, "ZMQ_SNDTIMEO", int: try milliseconds(timeout, "ZMQ_SNDTIMEO"))
    }

    /// Largest inbound message part accepted, in bytes (ZMQ_MAXMSGSIZE); larger parts drop the
    /// connection. -1 = unlimited.
    public func setMaximumMessageSize(_ bytes: Int64) throws {
        let socket = try open("set ZMQ_MAXMSGSIZE")
        var value = bytes
        guard zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &value, MemoryLayout<Int64>.size) == 0 else {
            throw ZMQError.last("set ZMQ_MAXMSGSIZE")
        }
    }

    /// The identity a DEALER presents to a ROUTER (1–255 bytes, set before connect).
    public func setRoutingID(_ id: [UInt8]) throws {
        try set(ZMQ_ROUTING_ID, "ZMQ_ROUTING_ID", bytes: id)
    }

    /// ZMTP heartbeats: a PING every `interval`; the connection is dropped if nothing arrives
    /// within `timeout`; `timeToLive` asks the peer to drop us after that much silence.
    public func setHeartbeat(interval: Duration, timeout: Duration, timeToLive: Duration? = nil) throws {
        try set(ZMQ_HEARTBEAT_IVL, "ZMQ_HEARTBEAT_IVL", int: try milliseconds(interval, "ZMQ_HEARTBEAT_IVL"))
        try set(
            ZMQ_HEARTBEAT_TIMEOUT, "ZMQ_HEARTBEAT_TIMEOUT",
            int: try milliseconds(timeout, "ZMQ_HEARTBEAT_TIMEOUT"))
        if let timeToLive {
            try set(ZMQ_HEARTBEAT_TTL, "ZMQ_HEARTBEAT_TTL", int: try milliseconds(timeToLive, "ZMQ_HEARTBEAT_TTL"))
        }
    }

    /// Maximum time for the ZMTP (and CURVE) handshake.
    public func setHandshakeTimeout(_ timeout: Duration) throws {
        try set(ZMQ_HANDSHAKE_IVL, "ZMQ_HANDSHAKE_IVL", int: try milliseconds(timeout, "ZMQ_HANDSHAKE_IVL"))
    }

    // MARK: - CURVE and ZAP

    /// Makes this socket a CURVE server with its long-term secret key (Z85, 40 characters).
    /// Set before bind.
    public func setCurveServer(secretKey: String) throws {
        try ZMQCurve.checkKey(secretKey, "secretKey", "set ZMQ_CURVE_SECRETKEY")
        try set(ZMQ_CURVE_SERVER, "ZMQ_CURVE_SERVER", int: 1)
        try set(ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY", bytes: Array(secretKey.utf8))
    }

    /// Makes this socket a CURVE client of the server with public key `serverKey`, using its own
    /// key pair. Set before connect. All keys Z85, 40 characters.
    public func setCurveClient(serverKey: String, keyPair: ZMQCurveKeyPair) throws {
        try ZMQCurve.checkKey(serverKey, "serverKey", "set ZMQ_CURVE_SERVERKEY")
        try ZMQCurve.checkKey(keyPair.publicKey, "publicKey", "set ZMQ_CURVE_PUBLICKEY")
        try ZMQCurve.checkKey(keyPair.secretKey, "secretKey", "set ZMQ_CURVE_SECRETKEY")
        try set(ZMQ_CURVE_SERVERKEY, "ZMQ_CURVE_SERVERKEY", bytes: Array(serverKey.utf8))
        try set(ZMQ_CURVE_PUBLICKEY, "ZMQ_CURVE_PUBLICKEY", bytes: Array(keyPair.publicKey.utf8))
        try set(ZMQ_CURVE_SECRETKEY, "ZMQ_CURVE_SECRETKEY", bytes: Array(keyPair.secretKey.utf8))
    }

    /// The ZAP domain this socket's connections are authenticated in (set before bind).
    public func setZAPDomain(_ domain: String) throws {
        try set(ZMQ_ZAP_DOMAIN, "ZMQ_ZAP_DOMAIN", bytes: Array(domain.utf8))
    }

    // MARK: - Sending

    /// Sends one multipart message. Blocks while the queue is full unless `dontWait` (then throws
    /// `isWouldBlock`). Zero-copy frames stay referenced until libzmq's free callback; on
    /// failure nothing of the message was sent and every frame's owner is released.
    public func send(_ frames: [OutgoingFrame], dontWait: Bool = false) throws {
        let socket = try open("send")
        guard !frames.isEmpty else {
            throw ZMQError(code: EINVAL, operation: "send", detail: "a message needs at least one frame")
        }
        // Build every part first: an allocation failure must not leave half a message queued.
        let parts = try frames.map { try ZMQReceivedFrame($0) }
        for (index, part) in parts.enumerated() {
            var flags: Int32 = index + 1 < parts.count ? ZMQ_SNDMORE : 0
            // Later parts of an accepted message never block (libzmq queues messages atomically).
            if dontWait || index > 0 { flags |= ZMQ_DONTWAIT }
            while zmq_msg_send(part.message, socket, flags) < 0 {
                let error = ZMQError.last("send")
                if error.isInterrupted { continue }
                throw error
            }
        }
    }

    /// ROUTER: sends `frames` to the peer with `routingID` (prepends the routing-id frame).
    public func send(to routingID: [UInt8], _ frames: [OutgoingFrame], dontWait: Bool = false) throws {
        try send([.bytes(routingID)] + frames, dontWait: dontWait)
    }

    // MARK: - Receiving

    /// Receives one whole multipart message, or nil if none arrived within `timeout`.
    /// A ROUTER's message starts with the sender's routing id (see ZMQServerTransport.splitRoutingID).
    /// Throws `isInterrupted` if a signal arrives while waiting.
    public func receive(timeout: Duration) throws -> [ZMQReceivedFrame]? {
        let socket = try open("receive")
        let readable = try ZMQPoller.poll([ZMQPollItem(self, .readable)], timeout: timeout)
        guard readable.first?.contains(.readable) == true else { return nil }
        var frames: [ZMQReceivedFrame] = []
        while true {
            let part = ZMQReceivedFrame()
            while zmq_msg_recv(part.message, socket, ZMQ_DONTWAIT) < 0 {
                let error = ZMQError.last("receive")
                if error.isInterrupted { continue }
                // Readable but empty can happen (e.g. a message dropped meanwhile); only at the
                // first part, as later parts of a message arrive together with it.
                if error.isWouldBlock && frames.isEmpty { return nil }
                throw error
            }
            frames.append(part)
            if zmq_msg_more(part.message) == 0 { return frames }
        }
    }

    var rawHandle: UnsafeMutableRawPointer? { handle }
}

// MARK: - Polling

public struct ZMQPollEvents: OptionSet, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    public static let readable = ZMQPollEvents(rawValue: Int16(ZMQ_POLLIN))
    public static let writable = ZMQPollEvents(rawValue: Int16(ZMQ_POLLOUT))
}

public struct ZMQPollItem {
    public let socket: ZMQSocket
    public let events: ZMQPollEvents
    public init(_ socket: ZMQSocket, _ events: ZMQPollEvents = .readable) {
        self.socket = socket
        self.events = events
    }
}

public enum ZMQPoller {
    /// Waits up to `timeout` until one of the sockets is ready; returns the ready events per item
    /// (empty sets on timeout). `.zero` only checks. Throws `isInterrupted` on a signal.
    public static func poll(_ items: [ZMQPollItem], timeout: Duration) throws -> [ZMQPollEvents] {
        var raw = try items.map { item -> zmq_pollitem_t in
            guard let socket = item.socket.rawHandle else {
                throw ZMQError(code: ENOTSOCK, operation: "poll", detail: "a socket is closed")
            }
            return zmq_pollitem_t(socket: socket, fd: -1, events: item.events.rawValue, revents: 0)
        }
        let ms = ZMQSocket.milliseconds(timeout)
        let rc = raw.withUnsafeMutableBufferPointer {
            zmq_poll($0.baseAddress, Int32($0.count), ms)
        }
        guard rc >= 0 else { throw ZMQError.last("poll") }
        return raw.map { ZMQPollEvents(rawValue: $0.revents) }
    }
}

// MARK: - Endpoints as users write them

/// A bind or connect endpoint, checked before libzmq sees it. libzmq takes a tcp port modulo
/// 2^16 (so :99999 would bind :34463), binds interface names and addresses but not host names
/// (`localhost` is "not this machine" to it), and binds or reaches IPv6 addresses only with
/// ZMQ_IPV6 set. So: a tcp port must be `*` (bind only) or 1–65535; `localhost` binds 127.0.0.1;
/// an IPv6 literal such as `[::1]` turns IPv6 on for the socket.
public struct ZMQEndpoint: Sendable, Equatable {
    public let endpoint: String
    /// What libzmq is asked to bind.
    public let forBind: String
    /// A tcp endpoint whose host is an IPv6 literal.
    public let isIPv6: Bool

    /// Checks `endpoint` for `operation` ("bind" or "connect"); throws a ZMQError (EINVAL)
    /// naming the endpoint and what is wrong with it.
    public init(_ endpoint: String, operation: String) throws {
        self.endpoint = endpoint
        let address = endpoint.dropFirst("tcp://".count)
        guard endpoint.lowercased().hasPrefix("tcp://"), let colon = address.lastIndex(of: ":") else {
            forBind = endpoint
            isIPv6 = false
            return
        }
        // Connect may name a source first: tcp://SOURCE;HOST:PORT.
        let host = address[..<colon].split(separator: ";").last.map(String.init) ?? ""
        let port = String(endpoint[endpoint.index(after: colon)...])
        if port != "*" || operation != "bind" {
            guard let number = Int(port), (1...65535).contains(number) else {
                let hint = operation == "bind" ? "; bind :* to let the system pick a free port" : ""
                throw ZMQError(code: EINVAL, operation: operation, endpoint: endpoint,
                               detail: "the port must be a number from 1 to 65535, got '\(port)'\(hint)")
            }
        }
        isIPv6 = host.hasPrefix("[") && host.hasSuffix("]")
        forBind = host.lowercased() == "localhost" ? "tcp://127.0.0.1:\(port)" : endpoint
    }
}
