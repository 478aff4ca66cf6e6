// A question-and-answer socket that never leaves the machine (ZeroMQ REP on ipc:// or loopback
// tcp), served on its own thread: what `ssgd status` asks a running coordinator through.
//
//   let server = try LocalReplyServer(endpoint: "tcp://127.0.0.1:*") { currentAnswerBytes() }
//   server.endpoint                 // with the real port
//   server.stop()                   // returns within ~0.1 s
//   try LocalReplyServer.ask(endpoint, request: bytes, timeout: .seconds(5))  // nil: no answer
//
// The socket is created and bound once, on the serving thread (ZeroMQ sockets stay on one
// thread), and kept until `stop`; `init` waits for that bind and throws its error, so a server
// that exists is listening at `endpoint`.

import Foundation
import Synchronization
import Wire

public final class LocalReplyServer: Sendable {
    /// Requests are short words; a client sending more is disconnected unread.
    public static let largestRequestBytes = 1024
    public let endpoint: String
    private let state = ServingState()

    /// Binds (on the serving thread; a bad or taken endpoint throws here), then serves there;
    /// `answer` runs on that thread, once per request.
    public init(endpoint: String, answer: @escaping @Sendable () -> [UInt8]) throws {
        guard SecurityPolicy.isLocal(endpoint) else {
            throw SecurityPolicyError(description: "\(endpoint) must be ipc:// or loopback tcp: it serves without encryption")
        }
        let bound = BindOutcome()
        let thread = Thread { [state] in Self.serve(endpoint, answer: answer, state: state, bound: bound) }
        thread.name = "ssgd-reply"
        thread.start()
        self.endpoint = try bound.wait().get()
    }

    private static func serve(
        _ endpoint: String, answer: @Sendable () -> [UInt8], state: ServingState, bound: BindOutcome
    ) {
        defer { state.finished.store(true, ordering: .releasing) }
        let socket: ZMQSocket
        do {
            socket = try ZMQSocket(.reply)
            try socket.setMaximumMessageSize(Int64(Self.largestRequestBytes))
            try socket.bind(endpoint)
            bound.report(.success(try socket.lastEndpoint))
        } catch {
            bound.report(.failure(error))
            return
        }
        defer { socket.close() }
        while !state.stopRequested.load(ordering: .relaxed) {
            guard (try? socket.receive(timeout: .milliseconds(100))) != nil else { continue }
            try? socket.send([.bytes(answer())])
        }
    }

    public func stop() {
        state.stopRequested.store(true, ordering: .relaxed)
        let deadline = ContinuousClock.now + .seconds(2)
        while !state.finished.load(ordering: .acquiring) && ContinuousClock.now < deadline { usleep(1000) }
    }

    /// Sends `request` to the server at `endpoint` and returns its answer, or nil if none came
    /// within `timeout`.
    public static func ask(_ endpoint: String, request: [UInt8], timeout: Duration) throws -> [UInt8]? {
        let socket = try ZMQSocket(.request)
        defer { socket.close() }
        try socket.connect(endpoint)
        try socket.send([.bytes(request)])
        return try socket.receive(timeout: timeout)?.first?.bytes
    }
}

/// The serving thread's flags.
private final class ServingState: Sendable {
    let stopRequested = Atomic<Bool>(false)
    let finished = Atomic<Bool>(false)
}

/// The serving thread's bind result, handed to the thread that waits in `init`.
private final class BindOutcome: Sendable {
    private let result = Mutex<Result<String, any Error>?>(nil)
    private let reported = DispatchSemaphore(value: 0)

    func report(_ outcome: Result<String, any Error>) {
        result.withLock { $0 = outcome }
        reported.signal()
    }

    func wait() -> Result<String, any Error> {
        reported.wait()
        return result.withLock { $0 } ?? .failure(SecurityPolicyError(description: "the reply socket reported nothing"))
    }
}
