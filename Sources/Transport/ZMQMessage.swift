// libzmq message parts, the ZeroMQ storage behind the codec's frames (Wire/WireFrames.swift).
//
// Outgoing: `.bytes` are copied into the part; a `.borrowed` region is handed to
// `zmq_msg_init_data` with its owner retained in the `Unmanaged` hint until libzmq's free
// callback runs on its I/O thread, which also counts the region out of its SendTracker.
//
// Incoming: a ZMQReceivedFrame owns a heap-allocated `zmq_msg_t` (never on the Swift stack) and
// exposes its bytes in place; it is an IncomingFrame, so the decoder reads it without a copy.

import CZMQ
import Wire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The hint handed to `zmq_msg_init_data`: retained once, released by the free callback.
private final class ZeroCopyHint {
    let owner: AnyObject
    let tracker: SendTracker?
    init(owner: AnyObject, tracker: SendTracker?) {
        self.owner = owner
        self.tracker = tracker
    }
}

// MARK: - Message parts

/// One message part: owns a heap-allocated, initialised `zmq_msg_t` and closes it on deinit.
/// Received frames are immutable after receive, so they may be handed to other threads.
public final class ZMQReceivedFrame: IncomingFrame, @unchecked Sendable {
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

    /// A part built from an outgoing frame: bytes are copied, borrowed regions referenced.
    /// This is what `ZMQSocket.send` hands to libzmq; decoding it directly gives a socket-free
    /// loopback of exactly what would travel.
    public init(_ frame: OutgoingFrame) throws {
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
        case .borrowed(let region):
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
}
