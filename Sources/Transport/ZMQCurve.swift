// CURVE keys (Z85 text, 40 characters each). `ssgd keygen` and the ZAP allow-list build on this.

import CZMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct ZMQCurveKeyPair: Equatable, Sendable {
    public let publicKey: String
    public let secretKey: String

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A fresh key pair (`zmq_curve_keypair`). Throws if libzmq lacks CURVE support.
    public static func generate() throws -> ZMQCurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else {
            throw ZMQError(
                code: zmq_errno(), operation: "zmq_curve_keypair",
                detail: "libzmq was built without CURVE (libsodium)")
        }
        return ZMQCurveKeyPair(publicKey: ZMQCurve.string(publicKey), secretKey: ZMQCurve.string(secretKey))
    }

    /// The key pair belonging to a secret key (`zmq_curve_public`).
    public init(secretKey: String) throws {
        try ZMQCurve.checkKey(secretKey, "secretKey", "zmq_curve_public")
        var publicKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicKey, secretKey) == 0 else {
            throw ZMQError(code: zmq_errno(), operation: "zmq_curve_public")
        }
        self.init(publicKey: ZMQCurve.string(publicKey), secretKey: secretKey)
    }
}

enum ZMQCurve {
    static let keyLength = 40
    // The Z85 alphabet (ZeroMQ RFC 32).
    private static let alphabet = Set(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)

    static func isValidKey(_ key: String) -> Bool {
        key.utf8.count == keyLength && key.utf8.allSatisfy { alphabet.contains($0) }
    }

    static func checkKey(_ key: String, _ name: String, _ operation: String) throws {
        guard isValidKey(key) else {
            throw ZMQError(
                code: EINVAL, operation: operation,
                detail: "\(name) must be a Z85 CURVE key of 40 characters, got \(key.utf8.count) characters")
        }
    }

    static func string(_ text: [CChar]) -> String {
        String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
