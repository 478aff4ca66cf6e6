// Same-host frames through shared memory: a decorator around any transport (DESIGN §5) that
// moves the large frames of the main channel (parameters, gradient blocks) between a
// coordinator and a worker on one host through slots of SharedMemorySegment files instead of
// the socket, and everything else, and everything between hosts, as before. The cluster's
// logic does not see it: what arrives is the same list of frames, the large ones read where
// they lie in the slot (page-aligned), like a received ZeroMQ frame.
//
// Why: on one host a socket copies each byte twice (into the kernel and out), in 7.5 MB
// (MLP) to 60 MB (VGG-16) messages, every step, for every worker; a slot is one copy in, and
// read in place.
//
// Handshake, on the main channel, before anything uses a slot: the worker's end creates an
// empty probe segment and sends OFFER (its name, its nonce) just before its first message. A coordinator's end that can map
// it (same host, same user) answers ACCEPT (the nonce read from the mapping); from then on
// both ends put frames of at least `thresholdBytes` into slots. One that cannot answers
// DECLINE and both keep sending bytes. A message that names a segment its receiver cannot
// map (e.g. a coordinator restarted on another host behind the same address) is dropped and
// answered with DECLINE; the sender falls back to bytes and offers again. The cluster's own
// deadlines re-issue what was lost.
//
// Control frames are frame 0 of a message and start with "SSHM" (a wire header starts with
// "SSGD", so the two never mix); little-endian:
//   OFFER   "SSHM" 1, u16 nameLength, name, 16 nonce
//   ACCEPT  "SSHM" 2, 16 nonce
//   DECLINE "SSHM" 3
//   DATA    "SSHM" 4, u32 n, n × (u32 frameIndex, u32 slot, u64 byteCount, u16 nameLength, name)
//           followed by the message's frames, the ones in slots sent empty.
//
// Memory: a slot is freed when the receiver drops the frame (its last reference), so a
// worker's result blocks stay in their slots until the coordinator has reduced the step. A
// sender with no free slot large enough makes a new segment of 2 slots, up to
// `maxSegments` per peer, then sends bytes. SSGD_SHM_DISABLE=1 in a process's environment
// turns the decorator into a pass-through there.

import Wire

#if canImport(Glibc)
import Glibc
#endif

public enum SharedMemoryFrames {
    /// Frames at least this large go through a slot.
    public static let thresholdBytes = 64 << 10
    /// Segments a sender makes per peer before it falls back to bytes.
    public static let maxSegments = 8
    /// Slots per segment.
    static let slotsPerSegment = 2
    static let magic = Array("SSHM".utf8)

    /// Whether this process may use shared memory at all (Linux, /dev/shm, not disabled).
    public static var isAvailable: Bool {
        #if os(Linux)
        if let value = getenv("SSGD_SHM_DISABLE"), String(cString: value) != "0", String(cString: value) != "" { return false }
        return access(SharedMemorySegment.directory, W_OK) == 0
        #else
        return false
        #endif
    }

    enum Kind: UInt8 {
        case offer = 1, accept = 2, decline = 3, data = 4
    }

    struct Reference {
        var frameIndex: Int
        var slot: Int
        var byteCount: Int
        var segment: String
    }

    enum Control {
        case offer(name: String, nonce: [UInt8])
        case accept(nonce: [UInt8])
        case decline
        case data([Reference])
    }

    static func encode(_ control: Control) -> [UInt8] {
        var out = magic
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
        func append(name: String) {
            append(UInt16(name.utf8.count))
            out.append(contentsOf: name.utf8)
        }
        switch control {
        case .offer(let name, let nonce):
            out.append(Kind.offer.rawValue)
            append(name: name)
            out.append(contentsOf: nonce)
        case .accept(let nonce):
            out.append(Kind.accept.rawValue)
            out.append(contentsOf: nonce)
        case .decline:
            out.append(Kind.decline.rawValue)
        case .data(let references):
            out.append(Kind.data.rawValue)
            append(UInt32(references.count))
            for reference in references {
                append(UInt32(reference.frameIndex))
                append(UInt32(reference.slot))
                append(UInt64(reference.byteCount))
                append(name: reference.segment)
            }
        }
        return out
    }

    /// The control message in `frame`, nil if it is not one (an ordinary message), or
    /// `.failure` if it starts like one but does not parse.
    static func decode(_ frame: any IncomingFrame) -> Result<Control, SharedMemoryError>? {
        guard frame.byteCount >= 5 else { return nil }
        return frame.withUnsafeBytes { raw -> Result<Control, SharedMemoryError>? in
            guard Array(raw[0..<4]) == magic else { return nil }
            var offset = 5
            let malformed = SharedMemoryError("a malformed shared-memory control frame")
            func read<T: FixedWidthInteger>(_: T.Type) -> T? {
                guard offset + MemoryLayout<T>.size <= raw.count else { return nil }
                defer { offset += MemoryLayout<T>.size }
                return T(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: T.self))
            }
            func bytes(_ count: Int) -> [UInt8]? {
                guard count >= 0, offset + count <= raw.count else { return nil }
                defer { offset += count }
                return Array(raw[offset..<(offset + count)])
            }
            func name() -> String? {
                guard let length = read(UInt16.self), let utf8 = bytes(Int(length)) else { return nil }
                return String(decoding: utf8, as: UTF8.self)
            }
            let control: Control?
            switch Kind(rawValue: raw[4]) {
            case .offer:
                if let name = name(), let nonce = bytes(SharedMemorySegment.nonceBytes) { control = .offer(name: name, nonce: nonce) } else { control = nil }
            case .accept:
                control = bytes(SharedMemorySegment.nonceBytes).map { .accept(nonce: $0) }
            case .decline:
                control = .decline
            case .data:
                var references = [Reference]()
                if let count = read(UInt32.self), count <= UInt32(WireLimits.maxPayloadFrames) {
                    for _ in 0..<count {
                        guard let index = read(UInt32.self), let slot = read(UInt32.self), let byteCount = read(UInt64.self),
                              byteCount <= UInt64(WireLimits.maxFrameBytes), let segment = name()
                        else { return .failure(malformed) }
                        references.append(Reference(frameIndex: Int(index), slot: Int(slot), byteCount: Int(byteCount), segment: segment))
                    }
                    control = .data(references)
                } else {
                    control = nil
                }
            case nil:
                control = nil
            }
            guard let control, offset == raw.count else { return .failure(malformed) }
            return .success(control)
        }
    }
}

/// A received frame that lies in a slot of a peer's segment; frees the slot when dropped.
final class SharedSlotFrame: IncomingFrame, @unchecked Sendable {
    // @unchecked Sendable: read-only after init; the release is an atomic store.
    let segment: SharedMemorySegment
    let slot: Int
    let byteCount: Int

    init(segment: SharedMemorySegment, slot: Int, byteCount: Int) {
        self.segment = segment
        self.slot = slot
        self.byteCount = byteCount
    }

    deinit { segment.release(slot) }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: segment.slot(slot), count: byteCount))
    }
}

/// One end of one connection: the segments it sends through and those of its peer it reads.
final class SharedMemoryLink {
    /// Whether the peer maps what this end creates (it accepted, or offered and was accepted).
    var usable = false
    /// This end's probe, until the peer accepts or declines it.
    private var probe: SharedMemorySegment?
    private var outbox: [SharedMemorySegment] = []
    private var inbox: [String: SharedMemorySegment] = [:]
    private let maximumFrameBytes: Int?
    /// Bytes copied into slots and read from them (traffic that bypassed the socket).
    private(set) var bytesMoved = 0
    /// Segments this end made to send through.
    var sendSegments: Int { outbox.count }

    init(maximumFrameBytes: Int?) { self.maximumFrameBytes = maximumFrameBytes }

    /// A new probe segment and the OFFER naming it (nil if none can be created).
    func makeOffer() -> [UInt8]? {
        guard let segment = try? SharedMemorySegment.create(slotCount: 0, frameBytes: 0) else { return nil }
        probe = segment
        return SharedMemoryFrames.encode(.offer(name: segment.name, nonce: segment.nonce))
    }

    /// The peer's answer to this end's OFFER.
    func accepted(nonce: [UInt8]) {
        guard let probe, probe.nonce == nonce else { return }
        self.probe = nil
        usable = true
    }

    /// The peer cannot (or can no longer) map this end's segments: send bytes from now on.
    func declined() {
        probe = nil
        usable = false
        outbox.removeAll()
    }

    /// `frames` with every large borrowed frame copied into a slot and sent as a reference
    /// (the frames themselves unchanged when none is).
    func place(_ frames: [OutgoingFrame]) -> [OutgoingFrame] {
        guard usable else { return frames }
        var out = frames
        var references = [SharedMemoryFrames.Reference]()
        for (index, frame) in frames.enumerated() {
            guard case .borrowed(let region) = frame, region.byteCount >= SharedMemoryFrames.thresholdBytes,
                  let (segment, slot) = claim(bytes: region.byteCount) else { continue }
            region.withUnsafeBytes { source in
                segment.slot(slot).copyMemory(from: source.baseAddress!, byteCount: source.count)
            }
            bytesMoved += region.byteCount
            references.append(.init(frameIndex: index, slot: slot, byteCount: region.byteCount, segment: segment.name))
            out[index] = .bytes([])
        }
        guard !references.isEmpty else { return frames }
        return [.bytes(SharedMemoryFrames.encode(.data(references)))] + out
    }

    private func claim(bytes: Int) -> (SharedMemorySegment, Int)? {
        for segment in outbox where segment.slotBytes >= bytes {
            if let slot = segment.claimFreeSlot() { return (segment, slot) }
        }
        guard outbox.count < SharedMemoryFrames.maxSegments else { return nil }
        // Slots with 1/64 to spare, so that an evaluation's parameters and BN state fit where a
        // step's parameters did. A full /dev/shm: bytes for this frame, and the next try makes
        // a segment again.
        let slotBytes = bytes + bytes / 64
        guard let segment = try? SharedMemorySegment.create(slotCount: SharedMemoryFrames.slotsPerSegment, frameBytes: slotBytes),
              let slot = segment.claimFreeSlot()
        else { return nil }
        outbox.append(segment)
        return (segment, slot)
    }

    /// The message's frames (after the DATA frame) with each referenced one read from its slot.
    func resolve(_ references: [SharedMemoryFrames.Reference], frames: ArraySlice<any IncomingFrame>) throws -> [any IncomingFrame] {
        var out = Array(frames)
        var resolved = [SharedSlotFrame]()
        var problem: SharedMemoryError?
        for reference in references {
            do {
                let segment = try inboxSegment(reference.segment)
                guard reference.slot >= 0, reference.slot < segment.slotCount else {
                    throw SharedMemoryError("slot \(reference.slot) of a segment of \(segment.slotCount)")
                }
                // From here on the slot is ours to free, whatever else fails.
                let frame = SharedSlotFrame(segment: segment, slot: reference.slot, byteCount: min(reference.byteCount, segment.slotBytes))
                resolved.append(frame)
                guard reference.byteCount <= segment.slotBytes else {
                    throw SharedMemoryError("a \(reference.byteCount)-byte frame in a \(segment.slotBytes)-byte slot")
                }
                if let maximumFrameBytes, reference.byteCount > maximumFrameBytes {
                    throw SharedMemoryError("a \(reference.byteCount)-byte frame, over this channel's \(maximumFrameBytes)")
                }
                guard reference.frameIndex < out.count, out[reference.frameIndex].byteCount == 0 else {
                    throw SharedMemoryError("a reference to frame \(reference.frameIndex) of \(out.count)")
                }
                out[reference.frameIndex] = frame
                bytesMoved += reference.byteCount
            } catch let error as SharedMemoryError {
                problem = problem ?? error
            }
        }
        if let problem { throw problem }
        return out
    }

    private func inboxSegment(_ name: String) throws -> SharedMemorySegment {
        if let segment = inbox[name] { return segment }
        guard inbox.count < 4 * SharedMemoryFrames.maxSegments else {
            throw SharedMemoryError("the peer names more segments than it may make")
        }
        let segment = try SharedMemorySegment.open(name: name)
        inbox[name] = segment
        return segment
    }

    /// Answers the peer's OFFER: maps its probe and checks the nonce.
    static func acceptOffer(name: String, nonce: [UInt8]) -> Bool {
        guard let probe = try? SharedMemorySegment.open(name: name) else { return false }
        return probe.nonce == nonce
    }
}

/// The coordinator's end: `inner`'s peers, each with its own link once it offered.
public final class SharedMemoryServerTransport: ServerTransport {
    private let inner: any ServerTransport
    private let maximumFrameBytes: Int?
    private var links: [PeerID: SharedMemoryLink] = [:]
    /// Bytes moved through slots by links already dropped.
    private var retiredBytes = 0
    /// Told when a peer's frames go back to the socket, and why.
    public var log: (String) -> Void = { _ in }

    /// `maximumFrameBytes` as `inner`'s: the largest frame a message may have.
    public init(wrapping inner: any ServerTransport, maximumFrameBytes: Int?) {
        self.inner = inner
        self.maximumFrameBytes = maximumFrameBytes
    }

    public var endpoint: String { inner.endpoint }
    public var trafficBytes: Int { inner.trafficBytes + sharedBytes }
    /// Bytes of frames that went through slots instead of the socket, both ways.
    public var sharedBytes: Int { retiredBytes + links.values.reduce(0) { $0 + $1.bytesMoved } }

    /// Peers whose large frames go through shared memory.
    public var sharedMemoryPeers: Int { links.values.filter(\.usable).count }
    /// Whether `peer`'s large frames go through shared memory (it offered and was accepted).
    public func usesSharedMemory(with peer: PeerID) -> Bool { links[peer]?.usable == true }

    /// Through shared memory a large frame is a copy into a slot; otherwise it crosses the link.
    public func movesLargeFramesInMemory(with peer: PeerID) -> Bool { usesSharedMemory(with: peer) }

    /// Segments made to send through, over all peers.
    public var sendSegments: Int { links.values.reduce(0) { $0 + $1.sendSegments } }

    public func send(_ frames: [OutgoingFrame], to address: PeerAddress) throws {
        guard address.channel == .main, let link = links[address.peer] else { return try inner.send(frames, to: address) }
        do {
            try inner.send(link.place(frames), to: address)
        } catch let error as TransportError {
            if case .peerUnreachable = error { drop(address.peer) }
            throw error
        }
    }

    /// A worker declared dead: its slots and mappings go (should it come back on the same
    /// connection, its first reference is declined and it offers again).
    public func forget(_ peer: PeerID) { drop(peer) }

    private func drop(_ peer: PeerID) {
        if let link = links.removeValue(forKey: peer) { retiredBytes += link.bytesMoved }
    }

    public func receive(timeout: Duration) throws -> Delivery? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while true {
            let left = deadline - clock.now
            guard let delivery = try inner.receive(timeout: max(left, .zero)) else { return nil }
            guard delivery.from.channel == .main, let first = delivery.frames.first, let control = SharedMemoryFrames.decode(first) else {
                return delivery
            }
            if let resolved = handle(control, from: delivery) { return resolved }
            // Past the deadline the next receive only checks, so a queued message still comes.
        }
    }

    /// Acts on a control message; returns the delivery to hand on (a DATA message's).
    private func handle(_ control: Result<SharedMemoryFrames.Control, SharedMemoryError>, from delivery: Delivery) -> Delivery? {
        let peer = delivery.from.peer
        func answer(_ reply: SharedMemoryFrames.Control) {
            try? inner.send([.bytes(SharedMemoryFrames.encode(reply))], to: delivery.from)
        }
        switch control {
        case .success(.offer(let name, let nonce)):
            drop(peer)
            if SharedMemoryFrames.isAvailable && SharedMemoryLink.acceptOffer(name: name, nonce: nonce) {
                let link = SharedMemoryLink(maximumFrameBytes: maximumFrameBytes)
                link.usable = true
                links[peer] = link
                answer(.accept(nonce: nonce))
            } else {
                answer(.decline)
            }
        case .success(.decline):
            if let link = links[peer], link.usable {
                link.declined()
                log("shared memory: \(peer) can no longer map this coordinator's segments; its frames go through the socket")
            }
        case .success(.accept):
            break  // this end never offers
        case .success(.data(let references)):
            let link = links[peer] ?? SharedMemoryLink(maximumFrameBytes: maximumFrameBytes)
            do {
                let frames = try link.resolve(references, frames: delivery.frames.dropFirst())
                if links[peer] == nil { links[peer] = link }
                return Delivery(from: delivery.from, frames: frames)
            } catch {
                log("shared memory: dropped a message from \(peer): \(error); asking it to send bytes")
                answer(.decline)
            }
        case .failure(let error):
            log("shared memory: dropped a message from \(peer): \(error)")
        }
        return nil
    }

    public func close() {
        inner.close()
        for peer in Array(links.keys) { drop(peer) }
    }
}

/// A worker's way to its coordinator with the main channel decorated.
public struct SharedMemoryConnector: ClientConnector {
    private let inner: any ClientConnector

    public init(wrapping inner: any ClientConnector) { self.inner = inner }

    public func connect(_ channel: Channel, maximumFrameBytes: Int?) throws -> any ClientTransport {
        let transport = try inner.connect(channel, maximumFrameBytes: maximumFrameBytes)
        guard channel == .main, SharedMemoryFrames.isAvailable else { return transport }
        return SharedMemoryClientTransport(wrapping: transport, maximumFrameBytes: maximumFrameBytes)
    }
}

/// A worker's main channel: offers shared memory with its first message, then uses it if
/// accepted.
public final class SharedMemoryClientTransport: ClientTransport {
    private let inner: any ClientTransport
    private let link: SharedMemoryLink

    /// Whether this channel has offered yet (it does with its first message).
    private var offered = false

    init(wrapping inner: any ClientTransport, maximumFrameBytes: Int?) {
        self.inner = inner
        link = SharedMemoryLink(maximumFrameBytes: maximumFrameBytes)
    }

    /// Whether large frames to the coordinator go through shared memory.
    public var usesSharedMemory: Bool { link.usable }
    /// Bytes of frames that went through slots instead of the socket, both ways.
    public var sharedBytes: Int { link.bytesMoved }
    /// Segments made to send through.
    public var sendSegments: Int { link.sendSegments }

    /// Sends an OFFER (none when no segment can be made: bytes it is). Its errors are the
    /// channel's: a connection refused at the handshake ends here as it would for any message.
    private func offer() throws {
        offered = true
        guard let offer = link.makeOffer() else { return }
        try inner.send([.bytes(offer)])
    }

    public func send(_ frames: [OutgoingFrame]) throws {
        // Right before the first message (the HELLO), so that the coordinator has its answer
        // ready by the time it admits this worker.
        if !offered { try offer() }
        try inner.send(link.place(frames))
    }

    public func receive(timeout: Duration) throws -> [any IncomingFrame]? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while true {
            let left = deadline - clock.now
            guard let frames = try inner.receive(timeout: max(left, .zero)) else { return nil }
            guard let first = frames.first, let control = SharedMemoryFrames.decode(first) else { return frames }
            switch control {
            case .success(.accept(let nonce)):
                link.accepted(nonce: nonce)
            case .success(.decline):
                // Never able to (different host or user), or no longer (a new coordinator
                // that cannot map segments its predecessor took): bytes now, and a fresh offer
                // in case the new one can.
                let wasUsable = link.usable
                link.declined()
                if wasUsable { try offer() }
            case .success(.data(let references)):
                do {
                    return try link.resolve(references, frames: frames.dropFirst())
                } catch {
                    try? inner.send([.bytes(SharedMemoryFrames.encode(.decline))])
                }
            case .success(.offer), .failure:
                break  // coordinators do not offer; a malformed control frame is dropped
            }
            // Past the deadline the next receive only checks, so a queued message still comes.
        }
    }

    public func close() { inner.close() }
}
