// The coordinator's ZAP handler (ZeroMQ RFC 27, ZAP 1.0): admits a CURVE client iff its public
// key is in the allow-list (DESIGN §5).
//
// libzmq asks the handler bound to inproc://zeromq.zap.01 of the server socket's CONTEXT during
// each CURVE handshake. If no handler is bound there, libzmq 4.3 accepts every client that knows
// the server's public key — so the authenticator must be running before the server socket binds
// and must stay running until that socket is closed.
//
// API:
//   let auth = try ZAPAuthenticator(allowList: list)       // context: nil = ZMQContext.shared()
//   try auth.start()        // binds the handler (on its own thread); throws if that fails
//   auth.acceptedCount / auth.refusedCount                  // handshakes answered so far
//   auth.stop()             // after closing the server socket; returns within ~0.1 s
// `onRefusal` runs on the handler thread, once per refused public key (later attempts with the
// same key are counted, not reported again — a refused DEALER retries every 100 ms); it must
// not block or call stop().
// One authenticator per context: a second start on the same context throws.
//
// Protocol (REP socket, so the empty delimiter frame is handled by libzmq):
//   request: "1.0", request id, domain, address, routing id, mechanism, credentials…
//            (CURVE: one credential, the client's 32-byte public key)
//   reply:   "1.0", request id, status ("200" admit, "400" refuse, "500" malformed request),
//            status text, user id (the client's Z85 key when admitted), metadata (empty)

import Dispatch
import Foundation
import Synchronization
import Wire

/// One refused client, as reported to `onRefusal`.
public struct ZAPRefusal: Sendable, Equatable, CustomStringConvertible {
    /// The client's Z85 public key (nil unless the mechanism is CURVE with a well-formed key).
    public let publicKey: String?
    /// The peer's IP address as libzmq reports it (e.g. "127.0.0.1"); empty for ipc.
    public let address: String
    public let mechanism: String
    public let reason: String

    public var description: String {
        let from = address.isEmpty ? "" : " from \(address)"
        let who = publicKey.map { "worker key \($0)" } ?? "\(mechanism) client"
        return "refused \(who)\(from): \(reason) (further attempts with this key are counted, not logged)"
    }
}

public struct ZAPError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

public final class ZAPAuthenticator: Sendable {
    /// The endpoint libzmq sends ZAP requests to (RFC 27).
    public static let endpoint = "inproc://zeromq.zap.01"
    /// The ZAP domain ssgd's server sockets use (`secureServer` sets it).
    public static let defaultDomain = "ssgd"
    /// How often the handler thread checks for `stop()`.
    static let pollInterval = Duration.milliseconds(100)
    /// Longest `stop()` waits for the handler thread (only a blocking `onRefusal` can make it wait).
    static let stopTimeoutSeconds = 5.0

    public let allowList: CurveAllowList
    public let domain: String
    let context: ZMQContext
    private let core: Core
    /// Signalled when the handler thread has exited; nil while stopped.
    private let running = Mutex<DispatchSemaphore?>(nil)

    /// `context` must be the server socket's context (nil: the process-wide shared one, which
    /// `ZMQSocket` uses by default).
    public init(
        allowList: CurveAllowList, domain: String = defaultDomain, context: ZMQContext? = nil,
        onRefusal: @escaping @Sendable (ZAPRefusal) -> Void = {
            FileHandle.standardError.write(Data("ssgd: \($0)\n".utf8))
        }
    ) throws {
        self.allowList = allowList
        self.domain = domain
        self.context = try context ?? ZMQContext.shared()
        core = Core(allowList: allowList, domain: domain, onRefusal: onRefusal)
    }

    deinit { stop() }

    /// Handshakes admitted (status 200) since creation.
    public var acceptedCount: Int { core.accepted.load(ordering: .relaxed) }
    /// Handshakes refused (status 400 or 500) since creation; a refused client retrying counts again.
    public var refusedCount: Int { core.refused.load(ordering: .relaxed) }
    public var isRunning: Bool { running.withLock { $0 != nil } }

    /// Starts the handler thread and returns once its socket is bound. Idempotent.
    public func start() throws {
        try running.withLock { (running: inout DispatchSemaphore?) throws -> Void in
            guard running == nil else { return }
            core.stopRequested.store(false, ordering: .releasing)
            let started = DispatchSemaphore(value: 0)
            let finished = DispatchSemaphore(value: 0)
            let failure = StartFailure()
            let thread = Thread { [core, context] in
                core.run(context: context) { error in
                    failure.error.withLock { $0 = error }
                    started.signal()
                }
                finished.signal()
            }
            thread.name = "ssgd-zap"
            thread.start()
            started.wait()
            if let error = failure.error.withLock({ $0 }) {
                finished.wait()
                throw error
            }
            running = finished
        }
    }

    /// Stops the handler thread and closes its socket. Idempotent. Close the server socket first:
    /// without a handler, libzmq admits any CURVE client.
    public func stop() {
        running.withLock { running in
            guard let finished = running else { return }
            core.stopRequested.store(true, ordering: .releasing)
            _ = finished.wait(timeout: .now() + Self.stopTimeoutSeconds)
            running = nil
        }
    }

    // MARK: - The handler thread

    private final class StartFailure: Sendable {
        let error = Mutex<ZAPError?>(nil)
    }

    private final class Core: Sendable {
        let allowList: CurveAllowList
        let domain: String
        let onRefusal: @Sendable (ZAPRefusal) -> Void
        let stopRequested = Atomic<Bool>(false)
        let accepted = Atomic<Int>(0)
        let refused = Atomic<Int>(0)

        init(allowList: CurveAllowList, domain: String, onRefusal: @escaping @Sendable (ZAPRefusal) -> Void) {
            self.allowList = allowList
            self.domain = domain
            self.onRefusal = onRefusal
        }

        /// Binds the REP socket, calls `started` (with the error if binding failed), then answers
        /// requests until `stopRequested`. The socket lives and dies on this thread.
        func run(context: ZMQContext, started: (ZAPError?) -> Void) {
            let socket: ZMQSocket
            do {
                socket = try ZMQSocket(.reply, context: context)
                try socket.bind(ZAPAuthenticator.endpoint)
            } catch let error as ZMQError where error.isAddressInUse {
                started(ZAPError(description: "cannot start the ZAP authenticator: another one already runs on this ZeroMQ context (\(ZAPAuthenticator.endpoint) is bound)"))
                return
            } catch {
                started(ZAPError(description: "cannot start the ZAP authenticator: \(error)"))
                return
            }
            started(nil)
            defer {
                // Unbind first: closing alone releases the inproc endpoint only later, on libzmq's
                // reaper thread, and a restarted authenticator could not bind it yet.
                try? socket.unbind(ZAPAuthenticator.endpoint)
                socket.close()
            }
            var reported = Set<String>()
            while !stopRequested.load(ordering: .acquiring) {
                let request: [[UInt8]]
                do {
                    guard let frames = try socket.receive(timeout: ZAPAuthenticator.pollInterval) else { continue }
                    request = frames.map(\.bytes)
                } catch let error as ZMQError where error.isInterrupted {
                    continue
                } catch let error as ZMQError where error.isContextTerminated {
                    return
                } catch {
                    Thread.sleep(forTimeInterval: 0.1)
                    continue
                }
                let reply = answer(request, reported: &reported)
                // REP must answer before it can receive again; a failed send resets nothing we
                // could repair, so carry on (libzmq times the handshake out).
                try? socket.send(reply.map { .bytes($0) })
            }
        }

        func answer(_ request: [[UInt8]], reported: inout Set<String>) -> [[UInt8]] {
            let requestID = request.count > 1 ? request[1] : []
            func reply(_ status: String, _ text: String, userID: String = "") -> [[UInt8]] {
                [Array("1.0".utf8), requestID, Array(status.utf8), Array(text.utf8), Array(userID.utf8), []]
            }
            func refuse(_ status: String, key: String?, address: String, mechanism: String, reason: String) -> [[UInt8]] {
                refused.add(1, ordering: .relaxed)
                let refusal = ZAPRefusal(publicKey: key, address: address, mechanism: mechanism, reason: reason)
                if reported.insert(key ?? "\(mechanism) \(reason)").inserted { onRefusal(refusal) }
                return reply(status, reason)
            }
            func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

            guard request.count >= 6, text(request[0]) == "1.0" else {
                return refuse("500", key: nil, address: "", mechanism: "?", reason: "malformed ZAP request")
            }
            let (requestDomain, address, mechanism) = (text(request[2]), text(request[3]), text(request[5]))
            guard mechanism == "CURVE" else {
                return refuse("400", key: nil, address: address, mechanism: mechanism, reason: "only CURVE clients are admitted")
            }
            guard request.count == 7, let key = CurveKeyFiles.z85(request[6]) else {
                return refuse("400", key: nil, address: address, mechanism: mechanism, reason: "malformed CURVE credentials")
            }
            guard requestDomain == domain else {
                return refuse("400", key: key, address: address, mechanism: mechanism, reason: "ZAP domain '\(requestDomain)' is not '\(domain)'")
            }
            guard allowList.contains(key) else {
                return refuse("400", key: key, address: address, mechanism: mechanism,
                              reason: "public key not in the allow-list (add its .pub file to --curve-allow to admit it)")
            }
            accepted.add(1, ordering: .relaxed)
            return reply("200", "OK", userID: key)
        }
    }
}
