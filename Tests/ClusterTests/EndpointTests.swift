import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Endpoints as users write them, with real processes: tcp ports outside 1–65535 are refused,
/// `localhost` and `[::1]` are this machine, and the status socket listens in every start, says
/// so when its port is taken, and takes any free port for `:*`.
@Suite(.serialized) struct EndpointTests {
    static let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "vanilla", epochs: 1))

    /// A tcp port on loopback that nothing listens on now (with `andNext`, the next one too).
    static func freePort(ipv6: Bool = false, andNext: Bool = false) throws -> Int {
        for _ in 0..<50 {
            let port = try bindable(0, ipv6: ipv6)
            if !andNext || (try? bindable(port + 1, ipv6: ipv6)) != nil { return port }
        }
        throw PortError()
    }

    struct PortError: Error {}

    /// Binds a plain socket to `port` (0: any) on the loopback address and closes it; the port.
    static func bindable(_ port: Int, ipv6: Bool) throws -> Int {
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw PortError() }
        defer { close(fd) }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let bound: Int32 = withUnsafeMutablePointer(to: &storage) { pointer in
            if ipv6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                    address.pointee.sin6_family = sa_family_t(AF_INET6)
                    address.pointee.sin6_port = in_port_t(UInt16(port).bigEndian)
                    address.pointee.sin6_addr = in6addr_loopback
                    return address.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
                }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                address.pointee.sin_family = sa_family_t(AF_INET)
                address.pointee.sin_port = in_port_t(UInt16(port).bigEndian)
                address.pointee.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
                return address.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard bound == 0 else { throw PortError() }
        let named: Int32 = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw PortError() }
        return withUnsafePointer(to: &storage) { pointer in
            ipv6 ? pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
                 : pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }

    /// The status endpoint a coordinator printed ("…, status on ENDPOINT)").
    static func statusEndpoint(in output: String) -> String? {
        guard let range = output.range(of: "status on ") else { return nil }
        return output[range.upperBound...].prefix { $0 != ")" && $0 != "\n" }.description
    }

    @Test func aTCPPortOutsideTheRangeIsRefusedWithAClearError() throws {
        let coordinator = try SSGDProcess.run(["coordinator", "--config", Self.config, "--bind", "tcp://127.0.0.1:99999",
                                               "--run-dir", Fixtures.temporaryDirectory() + "/run"], timeout: 30)
        #expect(coordinator.status != 0 && coordinator.status != nil)
        #expect(coordinator.output.contains("--bind"), "\(coordinator.output)")
        #expect(coordinator.output.contains("from 1 to 65535, got '99999'"))
        #expect(!coordinator.output.contains("listening"))
        let worker = try SSGDProcess.run(["worker", "--connect", "tcp://127.0.0.1:0"], timeout: 30)
        #expect(worker.status != 0 && worker.status != nil)
        #expect(worker.output.contains("--connect"), "\(worker.output)")
    }

    @Test(arguments: ["localhost", "[::1]"])
    func localhostAndTheIPv6LoopbackAreThisMachine(host: String) throws {
        let port = try Self.freePort(ipv6: host == "[::1]")
        let endpoint = "tcp://\(host):\(port)"
        let run = Fixtures.temporaryDirectory("ssgd-loopback") + "/run"
        let coordinator = try SSGDProcess(["coordinator", "--config", Self.config, "--bind", endpoint, "--run-dir", run,
                                           "--threads", "1", "--status-bind", "tcp://127.0.0.1:*"])
        let worker = try SSGDProcess.run(["worker", "--connect", endpoint, "--threads", "1", "--name", "near"], timeout: 120)
        #expect(worker.status == 0, "\(worker.output)")
        #expect(coordinator.wait(timeout: 60) == 0, "\(coordinator.output)")
        #expect(coordinator.output.contains("worker near joined"))
        #expect(SSGDProcess.parametersHash(runDirectory: run) != nil)
    }

    /// 20 starts, half on a fixed port (status on port + 1), half on `:*` (status on any free
    /// port, printed): `ssgd status` answers every time.
    @Test func theStatusSocketAnswersInEveryStart() throws {
        for start in 0..<20 {
            let bind = start % 2 == 0 ? "tcp://127.0.0.1:\(try Self.freePort(andNext: true))" : "tcp://127.0.0.1:*"
            let coordinator = try SSGDProcess(["coordinator", "--config", Self.config, "--bind", bind,
                                               "--run-dir", Fixtures.temporaryDirectory() + "/run", "--threads", "1"])
            defer { coordinator.wait(timeout: 0) }
            #expect(coordinator.waitForOutput("waiting for", timeout: 60), "\(coordinator.output)")
            let status = try #require(Self.statusEndpoint(in: coordinator.output), "start \(start): \(coordinator.output)")
            #expect(!status.hasSuffix(":*"))
            let asked = try SSGDProcess.run(["status", "--endpoint", status], timeout: 30)
            #expect(asked.status == 0, "start \(start) (\(bind), status \(status)): \(asked.output)")
            #expect(asked.output.contains("state starting"))
            if start % 2 == 0 {
                let derived = try SSGDProcess.run(["status", "--coordinator", bind], timeout: 30)
                #expect(derived.status == 0, "start \(start): \(derived.output)")
            }
        }
    }

    @Test func aTakenStatusPortIsNamedAsTheStatusPort() throws {
        let port = try Self.freePort(andNext: true)
        let holder = try SSGDProcess(["coordinator", "--config", Self.config, "--bind", "ipc://\(NSTemporaryDirectory())ssgd-holder-\(port).sock",
                                      "--status-bind", "tcp://127.0.0.1:\(port + 1)", "--run-dir", Fixtures.temporaryDirectory() + "/run"])
        defer { holder.wait(timeout: 0) }
        #expect(holder.waitForOutput("waiting for", timeout: 60), "\(holder.output)")
        let clash = try SSGDProcess.run(["coordinator", "--config", Self.config, "--bind", "tcp://127.0.0.1:\(port)",
                                         "--run-dir", Fixtures.temporaryDirectory() + "/run"], timeout: 30)
        #expect(clash.status == 1)
        #expect(clash.output.contains("cannot open the status socket"), "\(clash.output)")
        #expect(clash.output.contains("127.0.0.1:\(port + 1)"))
        #expect(clash.output.contains("in use"))
        #expect(clash.output.contains("--status-bind"))
    }
}
