// Message frames, outgoing and incoming.
//
// Outgoing: a ZMQFrame is either small bytes (copied into libzmq) or a zero-copy region of
// caller memory. A zero-copy region carries an owner object that is retained (via the
// `Unmanaged` hint of `zmq_msg_init_data`) until libzmq's free callback runs on its I/O thread,
// so the memory outlives the send. Keeping it alive is not enough: the memory must also not be
// WRITTEN until the callback has run. Pass a ZMQSendTracker and wait on it before reusing the
// buffer (e.g. before the optimizer updates parameters that were just sent).
//
// Incoming: a ZMQReceivedFrame owns a heap-allocated `zmq_msg_t` (never on the Swift stack) and
// exposes its bytes in place. libzmq may hand back data that is not 4-byte aligned (small frames
// share the receive buffer), so float access goes through `copyFloats(into:)`, which is a memcpy.

import CZMQ
import Engine
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Outgoing frames

/// Caller memory sent without copying. `owner` must keep `base ..< base + byteCount` alive.
public struct ZMQZeroCopyRegion: @unchecked Sendable {
    // Sendable: the pointer refers to memory kept alive by `owner`, which is Sendable.
    public let owner: AnyObject & Sendable
    public let base: UnsafeRawPointer
    public let byteCount: Int
    public let tracker: ZMQSendTracker?

    public init(
        owner: AnyObject & Sendable, base: UnsafeRawPointer, byteCount: Int,
        tracker: ZMQSendTracker? = nil
    ) {
        precondition(byteCount >= 0, "zero-copy region needs a non-negative size, got \(byteCount)")
        self.owner = owner
        self.base = base
        self.byteCount = byteCount
        self.tracker = tracker
    }
}

public enum ZMQFrame: Sendable {
    /// Small payloads: copied into the message.
    case bytes([UInt8])
    /// Large payloads: referenced in place until libzmq is done with them.
    case zeroCopy(ZMQZeroCopyRegion)

    public var byteCount: Int {
        switch self {
        case .bytes(let bytes): bytes.count
        case .zeroCopy(let region): region.byteCount
        }
    }

    /// The first `count` floats of `buffer`, sent zero-copy; `buffer` is retained until sent.
    public static func floats(
        _ buffer: FloatBuffer, count: Int? = nil, tracker: ZMQSendTracker? = nil
    ) -> ZMQFrame {
        let n = count ?? buffer.count
        precondition(n >= 0 && n <= buffer.count, "float frame of \(n) from a buffer of \(buffer.count)")
        return .zeroCopy(
            ZMQZeroCopyRegion(
                owner: buffer, base: UnsafeRawPointer(buffer.pointer),
                byteCount: n * MemoryLayout<Float>.stride, tracker: tracker))
    }
}

/// Counts zero-copy sends that libzmq has not released yet.
public final class ZMQSendTracker: Sendable {
    private let pending = Atomic<Int>(0)

    public init() {}

    /// Zero-copy messages handed to libzmq (or built) whose free callback has not run.
    public var pendingCount: Int { pending.load(ordering: .acquiring) }

    func retainOne() { pending.wrappingAdd(1, ordering: .relaxed) }
    func releaseOne() { pending.wrappingSubtract(1, ordering: .releasing) }

    /// Waits until libzmq released every tracked buffer; false if `timeout` passed first.
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

/// The hint handed to `zmq_msg_init_data`: retained once, released by the free callback.
private final class ZeroCopyHint {
    let owner: AnyObject
    let tracker: ZMQSendTracker?
    init(owner: AnyObject, tracker: ZMQSendTracker?) {
        self.owner = owner
        self.tracker = tracker
    }
}

// MARK: - Message parts

/// One message part: owns a heap-allocated, initialised `zmq_msg_t` and closes it on deinit.
/// Received frames are immutable after receive, so they may be handed to other threads.
public final class ZMQReceivedFrame: @unchecked Sendable {
    let message: UnsafeMutablePointer<zmq_msg_t>

    /// An empty message, ready for `zmq_msg_recv`.
    init() {
        message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        zmq_msg_init(message)  // cannot fail
    }

    /// A part holding a copy of `bytes` (for tests and tools that decode without a socket).
    public convenience init(bytes: [UInt8]) throws {
        try self.init(.bytes(bytes))
    }

    /// A part built from an outgoing frame: bytes are copied, zero-copy regions referenced.
    /// This is what `ZMQSocket.send` hands to libzmq; decoding it directly gives a socket-free
    /// loopback of exactly what would travel.
    public init(_ frame: ZMQFrame) throws {
        // Build into a local first so a failure never reaches deinit with a dead message.
        let part = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        switch frame {
        case .bytes(let bytes):
            guard zmq_msg_init_size(part, bytes.count) == 0 else {
                let error = ZMQError.last("zmq_msg_init_size")
                part.deallocate()
                throw error
            }
            if let destination = zmq_msg_data(part) {
                bytes.withUnsafeBytes { source in
                    if let base = source.baseAddress {
                        destination.copyMemory(from: base, byteCount: source.count)
                    }
                }
            }
        case .zeroCopy(let region):
            let hint = Unmanaged.passRetained(ZeroCopyHint(owner: region.owner, tracker: region.tracker))
            region.tracker?.retainOne()
            let rc = zmq_msg_init_data(
                part, UnsafeMutableRawPointer(mutating: region.base), region.byteCount,
                { _, hint in
                    // Runs on a libzmq I/O thread (or in zmq_msg_close) once the data is unused.
                    guard let hint else { return }
                    let box = Unmanaged<ZeroCopyHint>.fromOpaque(hint).takeRetainedValue()
                    box.tracker?.releaseOne()
                }, hint.toOpaque())
            guard rc == 0 else {
                // libzmq does not call the free function when init fails.
                let error = ZMQError.last("zmq_msg_init_data")
                region.tracker?.releaseOne()
                hint.release()
                part.deallocate()
                throw error
            }
        }
        message = part
    }

    deinit {
        zmq_msg_close(message)
        message.deallocate()
    }

    public var byteCount: Int { zmq_msg_size(message) }

    /// The frame's bytes in place (valid only inside `body`).
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let count = zmq_msg_size(message)
        guard count > 0, let base = zmq_msg_data(message) else {
            return try body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        return try body(UnsafeRawBufferPointer(start: base, count: count))
    }

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
