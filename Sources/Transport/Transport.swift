// The seam between the cluster's logic (coordinator, worker) and how its messages travel
// (DESIGN §5). Messages are lists of frames (Wire/WireFrames.swift); a transport moves them
// between one coordinator and its workers and knows nothing of what they mean.
//
//   protocol ServerTransport: AnyObject                   // the coordinator's end; one thread
//       var endpoint: String                              // where workers reach it
//       var trafficBytes: Int                             // all bytes sent and received so far
//       func send(_ frames: [OutgoingFrame], to: PeerAddress) throws
//                                                         // TransportError.peerUnreachable
//       func receive(timeout: Duration) throws -> Delivery?
//                                                         // nil: nothing within the timeout
//       func close()                                      // idempotent
//       func forget(_ peer: PeerID)                       // optional: per-peer state may go
//       func movesLargeFramesInMemory(with: PeerID) -> Bool // optional (false): frames are copies, not link time
//   protocol ClientConnector: Sendable                    // a worker's way to its coordinator
//       func connect(_ channel: Channel, maximumFrameBytes: Int?) throws -> any ClientTransport
//   protocol ClientTransport: AnyObject                   // one channel; used by one thread
//       func send(_ frames: [OutgoingFrame]) throws
//       func receive(timeout: Duration) throws -> [any IncomingFrame]?
//       func close()
//
// Channels: a worker talks on `main` (handshake, tasks, results) and `heartbeat` (its liveness
// line, served by its own thread while the main one computes), and may first ask for the
// config on `configuration` (before it knows its model, and so how large its messages may be).
// All belong to the same PeerID; every delivery says which channel it came on, and a reply goes
// back on a channel. Sends on the heartbeat channel never block: a beat that cannot be queued
// now is dropped.
//
// Size limits: a server or a client channel may be given the largest frame it accepts
// (`maximumFrameBytes`, nil: any). A message with a larger frame is never delivered, and never
// allocated whole where the transport can avoid it (ZeroMQ: ZMQ_MAXMSGSIZE drops the
// connection, which the client re-establishes).
//
// Memory: a borrowed frame's memory is read until its SendTracker is released (ZeroMQ: after
// the bytes left; in process: the send copies, so at once).
//
// Implementations: ZMQTransport.swift (ROUTER/DEALER, CURVE; the real one) and
// InProcessTransport.swift (queues in one process; tests of the coordinator's logic).
// A new transport implements these three protocols and is chosen where the coordinator and
// worker are built (ClusterExecutor.init, Worker.init); nothing else changes.

import Wire

/// A worker as its coordinator knows it (the same on every channel).
public struct PeerID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var description: String { String(decoding: bytes, as: UTF8.self) }
}

public enum Channel: Sendable, Hashable, CaseIterable {
    /// Handshake, tasks, results, shutdown.
    case main
    /// Heartbeats and their echoes.
    case heartbeat
    /// A worker's first HELLO, asking for the config, and its answer.
    case configuration
}

/// One channel of one peer.
public struct PeerAddress: Hashable, Sendable {
    public let peer: PeerID
    public let channel: Channel

    public init(_ peer: PeerID, _ channel: Channel = .main) {
        self.peer = peer
        self.channel = channel
    }
}

/// A message as the coordinator receives it.
public struct Delivery: Sendable {
    public let from: PeerAddress
    /// The message's frames: header first (Wire).
    public let frames: [any IncomingFrame]

    public init(from: PeerAddress, frames: [any IncomingFrame]) {
        self.from = from
        self.frames = frames
    }
}

public enum TransportError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No connected peer at that address (it left, or never came).
    case peerUnreachable(PeerAddress)
    /// The transport was closed.
    case closed
    /// A client channel's connection ended for good: the other side broke the protocol (e.g. sent
    /// a frame over this channel's limit), and the channel does not reconnect after that.
    case connectionLost(Channel)

    public var description: String {
        switch self {
        case .peerUnreachable(let address): "peer \(address.peer) is unreachable on its \(address.channel) channel"
        case .closed: "the transport is closed"
        case .connectionLost(let channel):
            "the \(channel) connection to the coordinator ended for good: the coordinator (or something between) "
                + "broke the protocol, e.g. sent a message larger than this job's largest; restart the worker"
        }
    }
}

/// The coordinator's end: many peers, one thread.
public protocol ServerTransport: AnyObject {
    /// Where workers reach this server (with the real port when bound to `:*`).
    var endpoint: String { get }
    /// Bytes sent and received so far, all frames and any addressing included.
    var trafficBytes: Int { get }
    /// Sends one message; throws TransportError.peerUnreachable when no such peer is connected.
    func send(_ frames: [OutgoingFrame], to address: PeerAddress) throws
    /// The next whole message, or nil if none arrived within `timeout` (`.zero` only checks) or
    /// a signal interrupted the wait.
    func receive(timeout: Duration) throws -> Delivery?
    /// Stops serving; queued outgoing messages are given a brief moment. Idempotent.
    func close()
    /// The coordinator no longer counts on `peer` (declared dead or gone): state kept for it
    /// alone may go. It may still send and be answered; nothing else changes.
    func forget(_ peer: PeerID)
    /// Whether a large frame to or from `peer` costs a copy in memory rather than time on a
    /// link (so an extra gradient block is cheap).
    func movesLargeFramesInMemory(with peer: PeerID) -> Bool
}

extension ServerTransport {
    /// Nothing is kept per peer.
    public func forget(_ peer: PeerID) {}
    /// A network transport: large frames cross a link.
    public func movesLargeFramesInMemory(with peer: PeerID) -> Bool { false }
}

/// One channel of a worker to its coordinator; used by the thread that connected it.
public protocol ClientTransport: AnyObject {
    /// Sends one message (queued while the coordinator is away; see the heartbeat rule above).
    func send(_ frames: [OutgoingFrame]) throws
    /// The next whole message, or nil if none arrived within `timeout`.
    func receive(timeout: Duration) throws -> [any IncomingFrame]?
    /// Idempotent.
    func close()
}

/// How a worker reaches its coordinator; each channel is connected by the thread that uses it.
public protocol ClientConnector: Sendable {
    /// Connects `channel`; messages to it with a frame larger than `maximumFrameBytes` (nil:
    /// no limit) are not delivered.
    func connect(_ channel: Channel, maximumFrameBytes: Int?) throws -> any ClientTransport
}

extension ClientConnector {
    /// Connects `channel` without a frame-size limit.
    public func connect(_ channel: Channel) throws -> any ClientTransport {
        try connect(channel, maximumFrameBytes: nil)
    }
}
