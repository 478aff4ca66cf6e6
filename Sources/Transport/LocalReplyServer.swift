// A question-and-answer socket that never leaves the machine (ZeroMQ REP on ipc:// or loopback
// tcp), served on its own thread: what `ssgd status` asks a running coordinator through.
//
//   let server = try LocalReplyServer(endpoint: "tcp://127.0.0.1:*") { currentAnswerBytes() }
//   server.endpoint                 // with the real port
//   server.stop()                   // returns within ~0.1 s
//   try LocalReplyServer.ask(endpoint, request: bytes, timeout: .seconds(5))  // nil: no answer

import Foundation
import Synchronization
import Wire

public final class LocalReplyServer: Sendable {
    public let endpoint: String
    private let answer: @Sendable () -> [UInt8]
    private let stopRequested = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)

    /// Binds on the caller's thread (so a bad endpoint fails at once), serves on its own;
    /// `answer` runs on that thread, once per request.
    public init(endpoint: String, answer: @escaping @Sendable () -> [UInt8]) throws {
        guard SecurityPolicy.isLocal(endpoint) else {
            throw SecurityPolicyError(description: "\(endpoint) must be ipc:// or loopback tcp: it serves without encryption")
        }
        let probe = try ZMQSocket(.reply)
        try probe.bind(endpoint)
        self.endpoint = (try? probe.lastEndpoint) ?? endpoint
        probe.close()
        self.answer = answer
        let thread = Thread { [self] in self.serve() }
        thread.name = "ssgd-reply"
        thread.start()
    }

    private func serve() {
        defer { finished.store(true, ordering: .relaxed) }
        guard let socket = try? ZMQSocket(.reply) else { return }
        defer { socket.close() }
        guard (try? socket.bind(endpoint)) != nil else { return }
        while !stopRequested.load(ordering: .relaxed) {
            guard (try? socket.receive(timeout: .milliseconds(100))) != nil else { continue }
            try? socket.send([.bytes(answer())])
        }
    }

    public func stop() {
        stopRequested.store(true, ordering: .relaxed)
        let deadline = ContinuousClock.now + .seconds(2)
        while !finished.load(ordering: .relaxed) && ContinuousClock.now < deadline { usleep(1000) }
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
