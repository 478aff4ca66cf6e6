// When plaintext is acceptable, and how sockets are made secure (DESIGN §5).
//
// Policy: binding ipc://, inproc:// or a tcp loopback address (127.0.0.0/8, localhost, [::1])
// needs no keys. Any other tcp address (0.0.0.0, *, an interface or host address) needs CURVE
// keys, or the user's explicit --insecure. Keys always mean encryption, loopback included.
//
// API:
//   SecurityPolicy.decide(bind:hasKeys:insecure:) -> BindSecurity        // never throws
//   SecurityPolicy.check(bind:hasKeys:insecure:) throws -> BindSecurity   // throws on .refused
//   SecurityPolicy.isLocal(_ endpoint:) -> Bool
//   CurveServerSecurity.load(secretKeyPath:allowPath:)   // coordinator: its keys + allow-list
//   CurveClientSecurity.load(secretKeyPath:serverKeyPath:) // worker: its keys + server's key
//   secureServer(_:keys:authenticator:)   // ROUTER: CURVE server + ZAP domain; before bind
//   secureClient(_:serverPublicKey:clientKeys:) // DEALER: CURVE client; before connect

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum BindSecurity: Equatable, Sendable {
    /// ipc://, inproc:// or tcp loopback without keys: plaintext that never leaves the machine.
    case local
    /// CURVE keys given: encrypted, clients authenticated against the allow-list.
    case encrypted
    /// A network address without keys, accepted because of --insecure; show the warning (a
    /// sentence without a prefix: the caller adds its own, e.g. "ssgd: warning: ").
    case insecure(warning: String)
    /// A network address without keys and without --insecure: do not bind.
    case refused(reason: String)

    public var proceeds: Bool {
        if case .refused = self { return false }
        return true
    }
}

public struct SecurityPolicyError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
}

public enum SecurityPolicy {
    public static func decide(bind endpoint: String, hasKeys: Bool, insecure: Bool) -> BindSecurity {
        if hasKeys { return .encrypted }
        if isLocal(endpoint) { return .local }
        if insecure {
            return .insecure(
                warning: "\(endpoint) may be reachable from other hosts, and its traffic is "
                    + "neither encrypted nor authenticated (--insecure)")
        }
        return .refused(
            reason: "refusing to bind \(endpoint) without encryption: any host that reaches it could "
                + "join the run and read its traffic. Make keys with `ssgd keygen --output keys --name "
                + "coordinator` (and one per worker), then pass --curve-secret-key keys/coordinator.key "
                + "and --curve-allow DIR_OR_FILE_OF_WORKER_PUBLIC_KEYS; or pass --insecure to accept "
                + "unencrypted traffic on a trusted network; or bind tcp://127.0.0.1:PORT or "
                + "ipc:///path for a single machine.")
    }

    /// `decide`, throwing the reason when the bind is refused.
    @discardableResult
    public static func check(bind endpoint: String, hasKeys: Bool, insecure: Bool) throws -> BindSecurity {
        let decision = decide(bind: endpoint, hasKeys: hasKeys, insecure: insecure)
        if case .refused(let reason) = decision { throw SecurityPolicyError(description: reason) }
        return decision
    }

    /// Whether traffic on `endpoint` stays on this machine: ipc://, inproc://, or tcp to a
    /// loopback address. Anything unparsable counts as not local.
    public static func isLocal(_ endpoint: String) -> Bool {
        let lowered = endpoint.lowercased()
        if lowered.hasPrefix("ipc://") || lowered.hasPrefix("inproc://") { return true }
        guard lowered.hasPrefix("tcp://") else { return false }
        let address = lowered.dropFirst("tcp://".count)
        // "source;destination" (connect syntax) could name any interface: not local.
        guard !address.contains(";"), let colon = address.lastIndex(of: ":") else { return false }
        var host = address[..<colon]
        if host.hasPrefix("[") {
            guard host.hasSuffix("]") else { return false }
            host = host.dropFirst().dropLast()
        }
        return isLoopbackHost(String(host))
    }

    static func isLoopbackHost(_ host: String) -> Bool {
        if host == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return UInt32(bigEndian: v4.s_addr) >> 24 == 127
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            let bytes = withUnsafeBytes(of: v6) { Array($0) }
            if bytes == [UInt8](repeating: 0, count: 15) + [1] { return true }  // ::1
            // ::ffff:127.x.y.z (IPv4-mapped loopback)
            return bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff && bytes[12] == 127
        }
        return false
    }
}

// MARK: - Keys as the commands load them

/// What a coordinator needs for CURVE: its key pair and the workers it admits.
public struct CurveServerSecurity: Equatable, Sendable {
    public let keyPair: ZMQCurveKeyPair
    public let allowList: CurveAllowList

    public init(keyPair: ZMQCurveKeyPair, allowList: CurveAllowList) {
        self.keyPair = keyPair
        self.allowList = allowList
    }

    /// Reads `--curve-secret-key` and `--curve-allow` (see CurveKeyFiles).
    public static func load(secretKeyPath: String, allowPath: String) throws -> CurveServerSecurity {
        CurveServerSecurity(
            keyPair: try CurveKeyFiles.loadSecretKey(secretKeyPath),
            allowList: try CurveKeyFiles.loadAllowList(allowPath))
    }
}

/// What a worker needs for CURVE: its key pair and the coordinator's public key.
public struct CurveClientSecurity: Equatable, Sendable {
    public let keyPair: ZMQCurveKeyPair
    public let serverPublicKey: String

    public init(keyPair: ZMQCurveKeyPair, serverPublicKey: String) {
        self.keyPair = keyPair
        self.serverPublicKey = serverPublicKey
    }

    /// Reads `--curve-secret-key` and `--curve-server-key` (see CurveKeyFiles).
    public static func load(secretKeyPath: String, serverKeyPath: String) throws -> CurveClientSecurity {
        CurveClientSecurity(
            keyPair: try CurveKeyFiles.loadSecretKey(secretKeyPath),
            serverPublicKey: try CurveKeyFiles.loadPublicKey(serverKeyPath))
    }
}

// MARK: - Sockets

/// Makes `socket` (the coordinator's ROUTER) a CURVE server whose clients `authenticator`
/// checks. Call before `bind`. The authenticator must already run on the socket's context
/// (otherwise libzmq would admit any client) and must outlive the socket.
public func secureServer(_ socket: ZMQSocket, keys: ZMQCurveKeyPair, authenticator: ZAPAuthenticator) throws {
    guard socket.context === authenticator.context else {
        throw ZAPError(description: "the ZAP authenticator runs on another ZeroMQ context than the server socket; create both on the same context (by default ZMQContext.shared())")
    }
    guard authenticator.isRunning else {
        throw ZAPError(description: "start the ZAP authenticator before securing the server socket: without it libzmq admits any CURVE client")
    }
    try socket.setCurveServer(secretKey: keys.secretKey)
    try socket.setZAPDomain(authenticator.domain)
}

/// Makes `socket` (a worker's DEALER) a CURVE client of the server with `serverPublicKey`.
/// Call before `connect`. A refused client just never gets an answer (libzmq keeps retrying).
public func secureClient(_ socket: ZMQSocket, serverPublicKey: String, clientKeys: ZMQCurveKeyPair) throws {
    try socket.setCurveClient(serverKey: serverPublicKey, keyPair: clientKeys)
}
