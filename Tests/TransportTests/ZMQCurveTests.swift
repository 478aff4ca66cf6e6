import Transport
import Testing

@Suite("ZeroMQ CURVE")
struct ZMQCurveTests {
    @Test("generated key pairs are Z85, distinct, and the public key follows from the secret")
    func keyPairs() throws {
        let a = try ZMQCurveKeyPair.generate()
        let b = try ZMQCurveKeyPair.generate()
        #expect(a.publicKey.utf8.count == 40 && a.secretKey.utf8.count == 40)
        #expect(a != b)
        #expect(try ZMQCurveKeyPair(secretKey: a.secretKey) == a)
        #expect(throws: ZMQError.self) { try ZMQCurveKeyPair(secretKey: "too short") }
    }

    /// A CURVE server ROUTER and a client DEALER that trusts `serverKey`; returns what the
    /// server received within `timeout`.
    private func attempt(clientTrusts serverKey: (ZMQCurveKeyPair) -> String, timeout: Duration) throws -> [[UInt8]]? {
        let serverKeys = try ZMQCurveKeyPair.generate()
        let server = try ZMQSocket(.router)
        try server.setCurveServer(secretKey: serverKeys.secretKey)
        try server.setZAPDomain("ssgd")
        try server.bind("tcp://127.0.0.1:*")
        let client = try ZMQSocket(.dealer)
        try client.setCurveClient(serverKey: serverKey(serverKeys), keyPair: try ZMQCurveKeyPair.generate())
        try client.connect(try server.lastEndpoint)
        try client.send([.bytes(Array("secret hello".utf8))])
        return try server.receive(timeout: timeout).map { $0.map(\.bytes) }
    }

    @Test("a client with the server's public key gets through")
    func matchingKeys() throws {
        let received = try #require(try attempt(clientTrusts: { $0.publicKey }, timeout: .seconds(10)))
        #expect(received.count == 2)
        #expect(received.last == Array("secret hello".utf8))
    }

    @Test("a client with a wrong server key does not get through")
    func wrongServerKey() throws {
        let impostor = try ZMQCurveKeyPair.generate().publicKey
        #expect(try attempt(clientTrusts: { _ in impostor }, timeout: .milliseconds(700)) == nil)
    }

    @Test("a key that is not Z85 is refused before it reaches libzmq")
    func invalidKeyRefused() throws {
        let socket = try ZMQSocket(.router)
        let error = try #require(throws: ZMQError.self) { try socket.setCurveServer(secretKey: String(repeating: "~", count: 40)) }
        #expect(error.description.contains("Z85"))
    }
}
