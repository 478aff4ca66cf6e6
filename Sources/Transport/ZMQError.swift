// Every libzmq failure surfaces as a ZMQError: errno, the zmq_strerror text, the operation that
// failed and (for bind/connect) the endpoint, plus a human sentence for the common cases that
// says what to do about it.

import CZMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct ZMQError: Error, Equatable, Sendable, CustomStringConvertible {
    /// errno as reported by `zmq_errno()` (or set by this wrapper for its own argument checks).
    public let code: Int32
    /// What was being done: "bind", "connect", "send", "receive", "set ZMQ_CURVE_SERVERKEY", …
    public let operation: String
    /// The endpoint for bind/connect failures.
    public let endpoint: String?
    /// `zmq_strerror(code)`.
    public let systemMessage: String
    /// Extra context from this wrapper (e.g. which argument was wrong); empty if none.
    public let detail: String

    public init(code: Int32, operation: String, endpoint: String? = nil, detail: String = "") {
        self.code = code
        self.operation = operation
        self.endpoint = endpoint
        self.detail = detail
        if let text = zmq_strerror(code) {
            systemMessage = String(cString: text)
        } else {
            systemMessage = "error \(code)"
        }
    }

    /// The error libzmq just reported on this thread.
    static func last(_ operation: String, endpoint: String? = nil) -> ZMQError {
        ZMQError(code: zmq_errno(), operation: operation, endpoint: endpoint)
    }

    /// bind: the address is taken by another socket or process.
    public var isAddressInUse: Bool { code == EADDRINUSE }
    /// ROUTER_MANDATORY send: no connected peer has that routing id (it left or never came).
    public var isPeerGone: Bool { code == EHOSTUNREACH }
    /// A non-blocking operation could not complete now (queue full / nothing to read).
    public var isWouldBlock: Bool { code == EAGAIN }
    /// A signal interrupted a blocking call (e.g. SIGTERM: the caller should shut down).
    public var isInterrupted: Bool { code == EINTR }
    /// The context was terminated while the call was in progress.
    public var isContextTerminated: Bool { code == ETERM }

    public var description: String {
        let at = endpoint.map { " \($0)" } ?? ""
        let extra = detail.isEmpty ? "" : " (\(detail))"
        switch code {
        case EADDRINUSE:
            return "cannot \(operation)\(at): address already in use — another socket or process is "
                + "listening there. Choose another port, or bind tcp://127.0.0.1:* to let the system "
                + "pick a free one and read it back from lastEndpoint.\(extra)"
        case EINVAL where endpoint != nil:
            return "cannot \(operation)\(at): invalid endpoint — expected tcp://HOST:PORT "
                + "(PORT may be * when binding), ipc:///path/to/socket or inproc://name.\(extra)"
        case EPROTONOSUPPORT:
            return "cannot \(operation)\(at): unsupported transport — use tcp://, ipc:// or inproc://.\(extra)"
        case ENODEV, EADDRNOTAVAIL:
            return "cannot \(operation)\(at): that address does not belong to this machine — bind "
                + "a local interface address, 127.0.0.1, or * for all interfaces.\(extra)"
        case EHOSTUNREACH:
            return "\(operation) failed: peer gone — no connected peer has that routing id "
                + "(it disconnected or never connected).\(extra)"
        case ETERM:
            return "\(operation) failed: the ZeroMQ context was terminated.\(extra)"
        case EINTR:
            return "\(operation) interrupted by a signal.\(extra)"
        default:
            return "\(operation)\(at) failed: \(systemMessage) (errno \(code)).\(extra)"
        }
    }
}
