import Foundation
import Synchronization
import Testing
import Transport

/// A plaintext worker that reaches a CURVE coordinator is refused during the ZeroMQ handshake,
/// and libzmq does not reconnect after that: the DEALER is left with no pipe, and a send that
/// blocks would wait forever. Seen once in the full suite, when the refusal raced ahead of the
/// worker's first HELLO. A send on any channel must end: queued, dropped or refused.
@Suite("A refused handshake")
struct RefusedHandshakeTests {
    /// Far above the 5 s a send may wait (ZMQClientTransport.lostAfter): only a hang reaches it.
    private static let hangGuard = DispatchTimeInterval.seconds(60)

    @Test("a send on a channel whose handshake a CURVE server refused ends instead of blocking", arguments: Channel.allCases)
    func sendAfterRefusalEnds(_ channel: Channel) throws {
        // A bare CURVE ROUTER: the mechanisms differ before any authenticator is asked, and
        // without one the cases can run in parallel (a ZeroMQ context holds one ZAP endpoint).
        let server = try ZMQSocket(.router)
        defer { server.close() }
        try server.setCurveServer(secretKey: try ZMQCurveKeyPair.generate().secretKey)
        try server.bind("tcp://127.0.0.1:*")
        let client = try ZMQConnector(endpoint: try server.lastEndpoint, workerName: "plaintext").connect(channel, maximumFrameBytes: nil)
        // Let the NULL-against-CURVE handshake fail before the first message goes out: the order
        // in which the hang was seen.
        Thread.sleep(forTimeInterval: 1)

        let outcome = Mutex<Result<Void, any Error>?>(nil)
        let finished = DispatchSemaphore(value: 0)
        // The socket is used from one thread at a time: this one waits, that one sends.
        nonisolated(unsafe) let sender = client
        Thread.detachNewThread {
            let result = Result { try sender.send([.bytes(Array("hello".utf8))]) }
            outcome.withLock { $0 = result }
            finished.signal()
        }
        guard finished.wait(timeout: .now() + Self.hangGuard) == .success else {
            // Left open: closing a socket another thread is blocked in aborts libzmq.
            Issue.record("a send on the \(channel) channel was still blocked after \(Self.hangGuard)")
            return
        }
        client.close()
        // Either outcome is fine as long as it comes: libzmq may still hold the message while
        // it retries (the worker's HELLO then goes unanswered), or the pipe is gone for good.
        if case .failure(let error) = try #require(outcome.withLock { $0 }) {
            #expect(error as? TransportError == .connectionLost(channel), "\(error)")
        }
    }
}
