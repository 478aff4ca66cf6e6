import Transport
import Foundation
import Synchronization
import Testing

/// Refusals reported by an authenticator (the callback runs on its thread).
private final class RefusalLog: Sendable {
    private let items = Mutex<[ZAPRefusal]>([])
    func append(_ refusal: ZAPRefusal) { items.withLock { $0.append(refusal) } }
    var all: [ZAPRefusal] { items.withLock { $0 } }
}

// Each test uses its own ZMQContext: a context has one ZAP endpoint, and other suites use the
// shared context in parallel.
@Suite("ZAP authentication")
struct ZAPAuthenticatorTests {
    private static let patience = Duration.seconds(10)
    private static let silence = Duration.milliseconds(800)

    private func dealer(_ context: ZMQContext, to endpoint: String, serverKey: String?, keys: ZMQCurveKeyPair?) throws -> ZMQSocket {
        let socket = try ZMQSocket(.dealer, context: context)
        if let serverKey, let keys { try secureClient(socket, serverPublicKey: serverKey, clientKeys: keys) }
        try socket.connect(endpoint)
        return socket
    }

    private func text(_ frames: [ZMQReceivedFrame]?) -> [String]? {
        frames?.map { String(decoding: $0.bytes, as: UTF8.self) }
    }

    /// Polls `condition` until it holds or `timeout` passes; returns its last value.
    private func eventually(_ timeout: Duration, _ condition: () -> Bool) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            if ContinuousClock.now >= deadline { return false }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return true
    }

    @Test("an allowed key talks both ways; an unknown key and a plaintext client get nothing; the allowed one keeps working")
    func allowListDecidesWhoTalks() throws {
        let context = try ZMQContext()
        let serverKeys = try ZMQCurveKeyPair.generate()
        let a = try ZMQCurveKeyPair.generate()
        let b = try ZMQCurveKeyPair.generate()
        let log = RefusalLog()
        let auth = try ZAPAuthenticator(allowList: CurveAllowList(keys: [a.publicKey]), context: context) { log.append($0) }
        try auth.start()
        #expect(auth.isRunning)

        let server = try ZMQSocket(.router, context: context)
        try secureServer(server, keys: serverKeys, authenticator: auth)
        try server.bind("tcp://127.0.0.1:*")
        let endpoint = try server.lastEndpoint

        // A: admitted, both directions work.
        let clientA = try dealer(context, to: endpoint, serverKey: serverKeys.publicKey, keys: a)
        try clientA.send([.bytes(Array("hello from A".utf8))])
        let first = try #require(try server.receive(timeout: Self.patience))
        #expect(first.count == 2)
        #expect(text([first[1]]) == ["hello from A"])
        let routingA = first[0].bytes
        try server.send(to: routingA, [.bytes(Array("welcome A".utf8))])
        #expect(text(try clientA.receive(timeout: Self.patience)) == ["welcome A"])
        #expect(auth.acceptedCount == 1)
        #expect(auth.refusedCount == 0)

        // B (two sockets, one key) and a client without CURVE: nothing reaches the server.
        let clientB1 = try dealer(context, to: endpoint, serverKey: serverKeys.publicKey, keys: b)
        let clientB2 = try dealer(context, to: endpoint, serverKey: serverKeys.publicKey, keys: b)
        let plain = try dealer(context, to: endpoint, serverKey: nil, keys: nil)
        try clientB1.send([.bytes(Array("intruder 1".utf8))])
        try clientB2.send([.bytes(Array("intruder 2".utf8))])
        try plain.send([.bytes(Array("plaintext".utf8))])
        #expect(try server.receive(timeout: Self.silence) == nil)
        #expect(eventually(Self.patience) { auth.refusedCount >= 2 }, "refused \(auth.refusedCount)")
        #expect(auth.acceptedCount == 1)

        // Refusals of one key are reported once, with the key and the peer address.
        let refusals = log.all
        #expect(refusals.count == 1)
        #expect(refusals.first?.publicKey == b.publicKey)
        #expect(refusals.first?.address == "127.0.0.1")
        #expect(refusals.first?.mechanism == "CURVE")
        #expect(refusals.first.map { $0.description.contains(b.publicKey) && $0.description.contains("127.0.0.1") } == true)

        // A still works, on the same connection.
        try clientA.send([.bytes(Array("again from A".utf8))])
        let second = try #require(try server.receive(timeout: Self.patience))
        #expect(second.first?.bytes == routingA)
        #expect(text(Array(second.dropFirst())) == ["again from A"])
        #expect(try server.receive(timeout: .milliseconds(100)) == nil)

        for socket in [clientA, clientB1, clientB2, plain, server] { socket.close() }
        auth.stop()
        #expect(!auth.isRunning)
    }

    @Test("a client from another ZAP domain is refused even with an allowed key")
    func otherDomainRefused() throws {
        let context = try ZMQContext()
        let serverKeys = try ZMQCurveKeyPair.generate()
        let a = try ZMQCurveKeyPair.generate()
        let log = RefusalLog()
        let auth = try ZAPAuthenticator(allowList: CurveAllowList(keys: [a.publicKey]), context: context) { log.append($0) }
        try auth.start()
        let server = try ZMQSocket(.router, context: context)
        try secureServer(server, keys: serverKeys, authenticator: auth)
        try server.setZAPDomain("elsewhere")
        try server.bind("tcp://127.0.0.1:*")
        let client = try dealer(context, to: try server.lastEndpoint, serverKey: serverKeys.publicKey, keys: a)
        try client.send([.bytes([1])])
        #expect(try server.receive(timeout: Self.silence) == nil)
        #expect(eventually(Self.patience) { !log.all.isEmpty })
        #expect(log.all.first?.reason.contains("elsewhere") == true)
        #expect(auth.acceptedCount == 0)
        client.close()
        server.close()
        auth.stop()
    }

    @Test("stop is prompt and frees the endpoint; one authenticator per context")
    func startStop() throws {
        let context = try ZMQContext()
        let list = CurveAllowList(keys: [try ZMQCurveKeyPair.generate().publicKey])
        let first = try ZAPAuthenticator(allowList: list, context: context) { _ in }
        let second = try ZAPAuthenticator(allowList: list, context: context) { _ in }
        try first.start()
        try first.start()  // idempotent
        let error = try #require(throws: ZAPError.self) { try second.start() }
        #expect(error.description.contains("another one already runs"))
        #expect(!second.isRunning)

        let elapsed = ContinuousClock().measure { first.stop() }
        #expect(elapsed < .seconds(1), "stop took \(elapsed)")
        #expect(!first.isRunning)
        first.stop()  // idempotent

        try second.start()
        #expect(second.isRunning)
        second.stop()
    }

    @Test("secureServer refuses an authenticator that is stopped or on another context")
    func secureServerPreconditions() throws {
        let context = try ZMQContext()
        let other = try ZMQContext()
        let keys = try ZMQCurveKeyPair.generate()
        let auth = try ZAPAuthenticator(allowList: CurveAllowList(keys: [keys.publicKey]), context: context) { _ in }
        let server = try ZMQSocket(.router, context: context)
        let notRunning = try #require(throws: ZAPError.self) { try secureServer(server, keys: keys, authenticator: auth) }
        #expect(notRunning.description.contains("start the ZAP authenticator"))

        try auth.start()
        let foreign = try ZMQSocket(.router, context: other)
        let wrongContext = try #require(throws: ZAPError.self) { try secureServer(foreign, keys: keys, authenticator: auth) }
        #expect(wrongContext.description.contains("another ZeroMQ context"))
        try secureServer(server, keys: keys, authenticator: auth)
        foreign.close()
        server.close()
        auth.stop()
    }
}
