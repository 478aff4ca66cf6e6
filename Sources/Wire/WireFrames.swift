// Frames, the unit the codec speaks in: a message is an ordered list of frames (frame 0 the
// header, then the payload), whatever carries them.
//
// Outgoing: an OutgoingFrame is either small bytes (the transport copies them) or a borrowed
// region of caller memory sent without copying. A borrowed region names an owner object that
// keeps the memory alive and, optionally, a SendTracker. The transport counts the region in
// the tracker when it takes it and out when it no longer reads the memory (libzmq: its free
// callback; in process: after the copy). Keeping the memory alive is not enough: it must also
// not be WRITTEN until the tracker says so (e.g. before the optimiser updates parameters that
// were just sent).
//
// Incoming: an IncomingFrame is read-only bytes that some storage owns — the transport's own
// (a received zmq_msg_t) or a byte array (ByteFrame: tests, the in-process transport). Bytes
// may be unaligned for Float (small frames share receive buffers), so float access goes through
// `copyFloats(into:)`, a memcpy, or WireFloats.withFloatsInPlace, which checks the alignment.

import Engine
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Outgoing

/// Caller memory sent without copying. `owner` must keep `base ..< base + byteCount` alive.
public struct BorrowedRegion: @unchecked Sendable {
    // Sendable: the pointer refers to memory kept alive by `owner`, which is Sendable.
    public let owner: AnyObject & Sendable
    public let base: UnsafeRawPointer
    public let byteCount: Int
    public let tracker: SendTracker?

    public init(
        owner: AnyObject & Sendable, base: UnsafeRawPointer, byteCount: Int, tracker: SendTracker? = nil
    ) {
        precondition(byteCount >= 0, "borrowed region needs a non-negative size, got \(byteCount)")
        self.owner = owner
        self.base = base
        self.byteCount = byteCount
        self.tracker = tracker
    }

    /// The region's bytes (valid only inside `body`).
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(owner) { try body(UnsafeRawBufferPointer(start: base, count: byteCount)) }
    }
}

public enum OutgoingFrame: Sendable {
    /// Small payloads: copied by the transport.
    case bytes([UInt8])
    /// Large payloads: read in place until the transport is done with them.
    case borrowed(BorrowedRegion)

    public var byteCount: Int {
        switch self {
        case .bytes(let bytes): bytes.count
        case .borrowed(let region): region.byteCount
        }
    }

    /// The first `count` floats of `buffer`, sent without copying; `buffer` is kept alive.
    public static func floats(_ buffer: FloatBuffer, count: Int? = nil, tracker: SendTracker? = nil) -> OutgoingFrame {
        let n = count ?? buffer.count
        precondition(n >= 0 && n <= buffer.count, "float frame of \(n) from a buffer of \(buffer.count)")
        return .borrowed(
            BorrowedRegion(
                owner: buffer, base: UnsafeRawPointer(buffer.pointer), byteCount: n * MemoryLayout<Float>.stride,
                tracker: tracker))
    }

    /// A copy of the frame's bytes (what a transport without zero-copy sends).
    public var copiedBytes: [UInt8] {
        switch self {
        case .bytes(let bytes): bytes
        case .borrowed(let region): region.withUnsafeBytes { Array($0) }
        }
    }
}

/// Counts borrowed regions a transport has taken and not yet let go of.
public final class SendTracker: Sendable {
    private let pending = Atomic<Int>(0)

    public init() {}

    /// Borrowed regions handed to a transport whose memory it may still read.
    public var pendingCount: Int { pending.load(ordering: .acquiring) }

    /// For transports: a borrowed region was taken (before it is handed on).
    package func retainOne() { pending.wrappingAdd(1, ordering: .relaxed) }
    /// For transports: the region's memory will not be read again.
    package func releaseOne() { pending.wrappingSubtract(1, ordering: .releasing) }

    /// Waits until every tracked region is released; false if `timeout` passed first.
    /// After `true`, the tracked memory may be written again.
    public func waitUntilReleased(timeout: Duration) -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while pendingCount != 0 {
            if clock.now >= deadline { return false }
            usleep(50)
        }
        return true
    }
}

/// Float buffers to send from, each with its own SendTracker, so that memory a transport may
/// still read is never written: `take` hands out a buffer that no transport holds and that was
/// not taken since the last `reclaim`, and allocates a new one when every buffer is held (e.g.
/// by a connection to a stopped peer that libzmq cannot finish writing to).
///
///   pool.reclaim()                       // the previous round's frames have all been sent
///   let send = pool.take()               // write send.buffer, then send send.floats(count:)
public final class SendBufferPool {
    public struct Buffer {
        /// (count) floats.
        public let buffer: FloatBuffer
        public let tracker: SendTracker

        /// The first `count` floats (all by default), borrowed and tracked.
        public func floats(count: Int? = nil) -> WireFloats { WireFloats(buffer, count: count, tracker: tracker) }
    }

    /// Floats per buffer.
    public let count: Int
    private var buffers: [Buffer] = []
    /// How many of `buffers` (from the front) were taken since the last `reclaim`.
    private var taken = 0

    public init(count: Int) { self.count = count }

    /// Buffers allocated so far (held ones included).
    public var allocated: Int { buffers.count }

    /// A buffer that no transport holds, not taken since the last `reclaim`; new if none is free.
    public func take() -> Buffer {
        if let free = buffers[taken...].firstIndex(where: { $0.tracker.pendingCount == 0 }) {
            buffers.swapAt(taken, free)
        } else {
            buffers.append(Buffer(buffer: FloatBuffer(count: count), tracker: SendTracker()))
            buffers.swapAt(taken, buffers.count - 1)
        }
        taken += 1
        return buffers[taken - 1]
    }

    /// Every buffer may be taken again once its transports let go (call when all frames taken
    /// so far have been handed to a transport).
    public func reclaim() { taken = 0 }
}

// MARK: - Incoming

/// Received bytes, immutable after receipt (so they may be handed to other threads).
public protocol IncomingFrame: AnyObject, Sendable {
    var byteCount: Int { get }
    /// The frame's bytes in place (valid only inside `body`).
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension IncomingFrame {
    /// A copy of the bytes.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Number of whole little-endian float32 values in the frame.
    public var floatCount: Int { byteCount / MemoryLayout<Float>.stride }

    /// Copies the frame's little-endian float32 values into `destination` (room for `floatCount`).
    public func copyFloats(into destination: UnsafeMutablePointer<Float>) {
        let n = floatCount
        withUnsafeBytes { source in
            guard n > 0, let base = source.baseAddress else { return }
            UnsafeMutableRawPointer(destination).copyMemory(from: base, byteCount: n * 4)
        }
        #if _endian(big)
        for i in 0..<n { destination[i] = Float(bitPattern: UInt32(littleEndian: destination[i].bitPattern)) }
        #endif
    }

    /// The frame's floats as an array (a copy; prefer `copyFloats(into:)` for large frames).
    public func floats() -> [Float] {
        [Float](unsafeUninitializedCapacity: floatCount) { buffer, initialized in
            if let base = buffer.baseAddress { copyFloats(into: base) }
            initialized = floatCount
        }
    }
}

/// An incoming frame backed by a byte array.
public final class ByteFrame: IncomingFrame {
    public let storage: [UInt8]

    public init(_ bytes: [UInt8]) { storage = bytes }

    /// What a receiver gets for `frame`: its bytes, copied.
    public convenience init(_ frame: OutgoingFrame) { self.init(frame.copiedBytes) }

    public var byteCount: Int { storage.count }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes(body)
    }
}
