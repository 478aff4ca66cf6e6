// The process-wide ZeroMQ context. libzmq contexts are thread-safe, so the wrapper is
// @unchecked Sendable; sockets are not (see ZMQSocket).

import CZMQ

public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    public init() throws(ZMQError) {
        guard let context = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        handle = context
    }

    /// Blocks until every socket of this context is closed. Sockets keep their context alive, so
    /// this runs after the last one is gone, and LINGER 0 on every socket keeps it from waiting
    /// on unsent messages.
    deinit { zmq_ctx_term(handle) }

    private static let sharedResult = Result { () throws(ZMQError) in try ZMQContext() }

    /// One context for the whole process (created on first use).
    public static func shared() throws -> ZMQContext { try sharedResult.get() }

    /// Whether libzmq was built with a capability, e.g. "curve", "ipc".
    public static func has(_ capability: String) -> Bool { zmq_has(capability) != 0 }

    /// libzmq's version as (major, minor, patch).
    public static var version: (major: Int, minor: Int, patch: Int) {
        var major: Int32 = 0
        var minor: Int32 = 0
        var patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (Int(major), Int(minor), Int(patch))
    }
}
