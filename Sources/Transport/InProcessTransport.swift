// A transport inside one process: the coordinator and its workers exchange frames through
// queues, with the same rules as ZeroMQ — a send to a peer with no open connection on that
// channel throws peerUnreachable, a receive waits at most its timeout, and a worker's messages
// arrive in the order it sent them, and a message with a frame larger than the receiver's limit
// is not delivered. Sends copy the bytes, so a borrowed frame's memory is free again when `send`
// returns. Used to test the coordinator's logic without sockets or processes.
//
//   let network = InProcessNetwork()
//   let server = network.server                      // the coordinator's ServerTransport
//   let connector = network.connector(name: "w1")    // a worker's ClientConnector
//   let main = try connector.connect(.main)          // one ClientTransport per channel

import Foundation
import Wire

/// Messages waiting for one receiver, and a way to wait for them.
private final class Mailbox<Message>: @unchecked Sendable {
    // Sendable: every access holds `condition`.
    private let condition = NSCondition()
    private var queue: [Message] = []

    func put(_ message: Message) {
        condition.lock()
        queue.append(message)
        condition.signal()
        condition.unlock()
    }

    func take(timeout: Duration) -> Message? {
        let (seconds, attoseconds) = timeout.components
        let deadline = Date(timeIntervalSinceNow: Double(seconds) + Double(attoseconds) * 1e-18)
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty {
            if !condition.wait(until: deadline) { break }
        }
        return queue.isEmpty ? nil : queue.removeFirst()
    }
}

/// A coordinator's end and as many workers' ends as wanted.
public final class InProcessNetwork {
    private let board: Switchboard
    /// The coordinator's end (one per network).
    public let server: InProcessServer

    /// The server does not take messages with a frame larger than `maximumFrameBytes` (nil: any).
    public init(maximumFrameBytes: Int? = nil) {
        board = Switchboard(serverLimit: maximumFrameBytes)
        server = InProcessServer(board: board)
    }

    /// A worker's way in; every connector is a distinct peer, named `name#k`.
    public func connector(name: String) -> InProcessConnector {
        InProcessConnector(board: board, peer: board.newPeer(name: name))
    }
}

/// Who is connected on which channel, and the coordinator's inbox.
private final class Switchboard: @unchecked Sendable {
    // Sendable: `clients` and `peers` are only touched while holding `lock`.
    private let lock = NSLock()
    private var clients: [PeerAddress: (mailbox: Mailbox<[any IncomingFrame]>, limit: Int?)] = [:]
    private var peers = 0
    let serverInbox = Mailbox<Delivery>()
    let serverLimit: Int?

    init(serverLimit: Int?) { self.serverLimit = serverLimit }

    func newPeer(name: String) -> PeerID {
        lock.lock()
        defer { lock.unlock() }
        peers += 1
        return PeerID(Array("\(name)#\(peers)".utf8))
    }

    func open(_ address: PeerAddress, limit: Int?) -> Mailbox<[any IncomingFrame]> {
        let mailbox = Mailbox<[any IncomingFrame]>()
        lock.lock()
        clients[address] = (mailbox, limit)
        lock.unlock()
        return mailbox
    }

    func close(_ address: PeerAddress) {
        lock.lock()
        clients[address] = nil
        lock.unlock()
    }

    func mailbox(_ address: PeerAddress) -> (mailbox: Mailbox<[any IncomingFrame]>, limit: Int?)? {
        lock.lock()
        defer { lock.unlock() }
        return clients[address]
    }
}

/// Copies of the frames, as a receiver sees them.
private func delivered(_ frames: [OutgoingFrame]) -> [any IncomingFrame] {
    frames.map { ByteFrame($0) }
}

/// Whether a receiver with `limit` takes `frames`.
private func fits(_ frames: [OutgoingFrame], _ limit: Int?) -> Bool {
    guard let limit else { return true }
    return frames.allSatisfy { $0.byteCount <= limit }
}

public final class InProcessServer: ServerTransport {
    private let board: Switchboard
    public let endpoint = "inprocess://coordinator"
    public private(set) var trafficBytes = 0
    private var closed = false

    /// Every frame is a copy in this process's memory.
    public func movesLargeFramesInMemory(with peer: PeerID) -> Bool { true }

    fileprivate init(board: Switchboard) { self.board = board }

    public func send(_ frames: [OutgoingFrame], to address: PeerAddress) throws {
        guard !closed else { throw TransportError.closed }
        guard let client = board.mailbox(address) else { throw TransportError.peerUnreachable(address) }
        if fits(frames, client.limit) { client.mailbox.put(delivered(frames)) }
        trafficBytes += frames.reduce(0) { $0 + $1.byteCount }
    }

    public func receive(timeout: Duration) throws -> Delivery? {
        guard !closed else { throw TransportError.closed }
        guard let delivery = board.serverInbox.take(timeout: timeout) else { return nil }
        trafficBytes += delivery.frames.reduce(0) { $0 + $1.byteCount }
        return delivery
    }

    public func close() { closed = true }
}

public struct InProcessConnector: ClientConnector {
    private let board: Switchboard
    public let peer: PeerID

    fileprivate init(board: Switchboard, peer: PeerID) {
        self.board = board
        self.peer = peer
    }

    public func connect(_ channel: Channel, maximumFrameBytes: Int?) throws -> any ClientTransport {
        let address = PeerAddress(peer, channel)
        return InProcessClient(board: board, address: address, inbox: board.open(address, limit: maximumFrameBytes))
    }
}

final class InProcessClient: ClientTransport {
    private let board: Switchboard
    private let address: PeerAddress
    private let inbox: Mailbox<[any IncomingFrame]>
    private var closed = false

    fileprivate init(board: Switchboard, address: PeerAddress, inbox: Mailbox<[any IncomingFrame]>) {
        self.board = board
        self.address = address
        self.inbox = inbox
    }

    deinit { close() }

    func send(_ frames: [OutgoingFrame]) throws {
        guard !closed else { throw TransportError.closed }
        if fits(frames, board.serverLimit) { board.serverInbox.put(Delivery(from: address, frames: delivered(frames))) }
    }

    func receive(timeout: Duration) throws -> [any IncomingFrame]? {
        guard !closed else { throw TransportError.closed }
        return inbox.take(timeout: timeout)
    }

    func close() {
        guard !closed else { return }
        closed = true
        board.close(address)
    }
}
