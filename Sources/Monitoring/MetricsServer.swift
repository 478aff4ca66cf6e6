#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Foundation
import Synchronization
import Transport

// The /metrics endpoint: a small HTTP/1.1 responder over one POSIX socket, on its own thread.
// GET /metrics → 200 with the exposition; any other request → 404; a request head larger than
// `MetricsServer.largestRequestBytes`, or slower than `MetricsServer.ioTimeoutSeconds`, is
// answered 400 or dropped. One request per connection (`Connection: close`). Prometheus
// scrapes it every few seconds, so nothing here needs to be fast.

public struct MetricsError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) { self.description = description }
}

/// `--metrics-listen ADDR:PORT`: a numeric IPv4 address, `[IPv6]`, or `localhost`; port 0
/// takes any free port.
public struct MetricsAddress: Sendable, Equatable, CustomStringConvertible {
    /// Numeric: 127.0.0.1, 0.0.0.0, ::1, …
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw MetricsError("--metrics-listen takes ADDRESS:PORT (e.g. 127.0.0.1:9464, [::1]:9464 or 0.0.0.0:9464), got '\(text)'")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "localhost" { host = "127.0.0.1" }
        guard Self.family(of: host) != nil else {
            throw MetricsError("--metrics-listen needs a numeric address (127.0.0.1, [::1], 0.0.0.0, an interface's address), got '\(host)' in '\(text)'")
        }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Whether only this machine can connect (127.0.0.0/8, ::1).
    public var isLoopback: Bool { SecurityPolicy.isLocal("tcp://\(description)") }

    /// Nil when serving here is fine; a warning (a sentence without a prefix) for a non-loopback
    /// address with `insecure`; throws for one without it.
    public func checkExposure(insecure: Bool) throws -> String? {
        if isLoopback { return nil }
        guard insecure else {
            throw MetricsError(
                "refusing to serve metrics on \(self): any host that reaches it could read the run's progress, "
                    + "and the endpoint has neither encryption nor authentication. Pass --metrics-insecure to serve "
                    + "them on a trusted network (e.g. a Kubernetes pod scraped by Prometheus), or listen on "
                    + "127.0.0.1:PORT and scrape on this machine.")
        }
        return "metrics on \(self) may be read by other hosts: plain HTTP without authentication (--metrics-insecure)"
    }

    static func family(of host: String) -> Int32? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return AF_INET }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 { return AF_INET6 }
        return nil
    }
}

public final class MetricsServer: Sendable {
    /// The request head (request line and headers) a client may send.
    public static let largestRequestBytes = 8192
    /// How long one client may take to send its request or read the answer.
    public static let ioTimeoutSeconds = 5
    /// How often the serving thread looks at `stop()` while no client connects.
    static let pollMilliseconds: Int32 = 200

    /// Where it listens, with the port the system gave for port 0.
    public let address: MetricsAddress
    private let listener: Int32
    private let render: @Sendable () -> [UInt8]
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    /// Listening once this returns; the thread serves until `stop()`. A taken port or an
    /// address of no interface throws an error that names the metrics listener.
    public init(address: MetricsAddress, render: @escaping @Sendable () -> [UInt8]) throws {
        self.render = render
        let opened = try Self.openListener(address)
        listener = opened.descriptor
        self.address = opened.address
        let thread = Thread { [self] in serve() }
        thread.name = "ssgd-metrics"
        thread.start()
    }

    /// Stop serving and close the socket; call it once the run is over (waits for the thread, at most one poll interval
    /// plus one client's timeout).
    public func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        finished.wait()
        close(listener)
    }

    private static func openListener(_ address: MetricsAddress) throws -> (descriptor: Int32, address: MetricsAddress) {
        guard let family = MetricsAddress.family(of: address.host) else { throw MetricsError("not a numeric address: \(address.host)") }
        #if canImport(Glibc)
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        let descriptor = socket(family, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw MetricsError("cannot open the metrics socket: \(errorText())") }
        var yes: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var storage = sockaddr_storage()
        let length: socklen_t
        if family == AF_INET {
            var v4 = sockaddr_in()
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = in_port_t(UInt16(address.port)).bigEndian
            inet_pton(AF_INET, address.host, &v4.sin_addr)
            withUnsafeBytes(of: v4) { bytes in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        } else {
            var v6 = sockaddr_in6()
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = in_port_t(UInt16(address.port)).bigEndian
            inet_pton(AF_INET6, address.host, &v6.sin6_addr)
            withUnsafeBytes(of: v6) { bytes in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0, listen(descriptor, 16) == 0 else {
            let code = errno
            close(descriptor)
            let hint = code == EADDRINUSE
                ? "the port is taken (another ssgd, or another exporter?): give --metrics-listen another port"
                : "give --metrics-listen an address of this machine"
            throw MetricsError("cannot listen for metrics (--metrics-listen) on \(address): \(String(cString: strerror(code))); \(hint)")
        }
        var actual = sockaddr_storage()
        var actualLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &actualLength) }
        }
        let port = withUnsafeBytes(of: actual) { bytes -> Int in
            // sin_port and sin6_port sit at the same offset, in network order.
            Int(UInt16(bigEndian: bytes.load(fromByteOffset: 2, as: UInt16.self)))
        }
        return (descriptor, MetricsAddress(host: address.host, port: port))
    }

    private func serve() {
        defer { finished.signal() }
        while !stopping.load(ordering: .acquiring) {
            var ready = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, Self.pollMilliseconds) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)  // not inherited by the workers `launch` starts
            answer(client)
            close(client)
        }
    }

    /// Read one request head and write one answer.
    private func answer(_ client: Int32) {
        var timeout = timeval(tv_sec: Self.ioTimeoutSeconds, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var head = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1024)
        while Self.endOfHead(head) == nil {
            guard head.count < Self.largestRequestBytes else {
                reply(client, status: "400 Bad Request", body: Array("request head larger than \(Self.largestRequestBytes) bytes\n".utf8))
                return
            }
            let count = recv(client, &chunk, chunk.count, 0)
            guard count > 0 else { return }  // closed, reset or timed out: nobody to answer
            head += chunk[0..<count]
        }
        if Self.isMetricsRequest(head) {
            reply(client, status: "200 OK", body: render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        } else {
            reply(client, status: "404 Not Found", body: Array("not found: ssgd serves GET /metrics only\n".utf8))
        }
    }

    /// Where the blank line that ends a request head is, if it has come.
    static func endOfHead(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        for i in 1..<bytes.count where bytes[i] == 10 {
            if bytes[i - 1] == 10 || (i >= 2 && bytes[i - 1] == 13 && bytes[i - 2] == 10) { return i }
        }
        return nil
    }

    /// `GET /metrics HTTP/1.x` (a query string is ignored).
    static func isMetricsRequest(_ head: [UInt8]) -> Bool {
        let line = head.prefix { $0 != 13 && $0 != 10 }.split(separator: 32)
        guard line.count == 3, String(decoding: line[0], as: UTF8.self) == "GET" else { return false }
        let target = String(decoding: line[1], as: UTF8.self)
        return (target == "/metrics" || target.hasPrefix("/metrics?")) && String(decoding: line[2], as: UTF8.self).hasPrefix("HTTP/1.")
    }

    private func reply(_ client: Int32, status: String, body: [UInt8], contentType: String = "text/plain; charset=utf-8") {
        let header = "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let message = Array(header.utf8) + body
        #if canImport(Glibc)
        let flags = Int32(MSG_NOSIGNAL)
        #else
        let flags: Int32 = 0
        #endif
        var sent = 0
        while sent < message.count {
            let count = message.withUnsafeBytes { send(client, $0.baseAddress! + sent, message.count - sent, flags) }
            guard count > 0 else { return }
            sent += count
        }
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}
