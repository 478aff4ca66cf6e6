import Foundation
import Monitoring
import Testing
import TestSupport

/// The /metrics responder over a real loopback socket, and the rules for where it may listen.
struct MetricsServerTests {
    static func server(_ body: String = "ssgd_step 7\n") throws -> MetricsServer {
        try MetricsServer(address: MetricsAddress(host: "127.0.0.1", port: 0)) { Array(body.utf8) }
    }

    @Test func getMetricsAnswersTheExpositionAndAnythingElseIsNotFound() throws {
        let server = try Self.server()
        defer { server.stop() }
        let port = server.address.port
        #expect(port > 0)
        let metrics = try LoopbackHTTP.get(port: port, path: "/metrics")
        #expect(metrics.status == 200, "\(metrics.headers)")
        #expect(metrics.headers.contains("Content-Type: text/plain; version=0.0.4"))
        #expect(metrics.headers.contains("Content-Length: 12"))
        #expect(metrics.body == "ssgd_step 7\n")
        #expect(try LoopbackHTTP.get(port: port, path: "/metrics?name[]=ssgd_step").status == 200)
        #expect(try LoopbackHTTP.get(port: port, path: "/").status == 404)
        #expect(try LoopbackHTTP.get(port: port, path: "/metricsx").status == 404)
        let post = try LoopbackHTTP.exchange(port: port, request: Array("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n".utf8))
        #expect(post.status == 404)
        // HTTP/1.1 with headers, as Prometheus sends it.
        let scrape = try LoopbackHTTP.exchange(port: port, request: Array(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain;version=0.0.4\r\nUser-Agent: Prometheus/2.42.0\r\n\r\n".utf8))
        #expect(scrape.status == 200 && scrape.body == "ssgd_step 7\n")
    }

    @Test func anOversizedRequestIsRefusedAndTheServerServesOn() throws {
        let server = try Self.server()
        defer { server.stop() }
        let huge = "GET /metrics HTTP/1.1\r\nX-Padding: " + String(repeating: "a", count: 2 * MetricsServer.largestRequestBytes) + "\r\n\r\n"
        let answer = try LoopbackHTTP.exchange(port: server.address.port, request: Array(huge.utf8))
        #expect(answer.status == 400)
        #expect(try LoopbackHTTP.get(port: server.address.port, path: "/metrics").status == 200)
    }

    @Test func aTakenPortIsAnErrorNamingTheMetricsListener() throws {
        let first = try Self.server()
        defer { first.stop() }
        let taken = MetricsAddress(host: "127.0.0.1", port: first.address.port)
        let error = #expect(throws: MetricsError.self) { try MetricsServer(address: taken) { [] } }
        let text = error?.description ?? ""
        #expect(text.contains("--metrics-listen") && text.contains("127.0.0.1:\(first.address.port)") && text.contains("taken"), "\(text)")
    }

    @Test func onlyLoopbackServesWithoutTheAcknowledgement() throws {
        for loopback in ["127.0.0.1:9464", "localhost:9464", "[::1]:9464", "127.3.2.1:0"] {
            let address = try MetricsAddress(parsing: loopback)
            #expect(address.isLoopback, "\(loopback)")
            #expect(try address.checkExposure(insecure: false) == nil)
        }
        for exposed in ["0.0.0.0:9464", "[::]:9464", "10.1.2.3:9464"] {
            let address = try MetricsAddress(parsing: exposed)
            #expect(!address.isLoopback, "\(exposed)")
            let refusal = #expect(throws: MetricsError.self) { try address.checkExposure(insecure: false) }
            #expect(refusal?.description.contains("--metrics-insecure") == true)
            #expect(try address.checkExposure(insecure: true)?.contains("--metrics-insecure") == true)
        }
        for bad in ["9464", "127.0.0.1", "127.0.0.1:65536", "example.org:9464", ":9464", "127.0.0.1:x"] {
            #expect(throws: MetricsError.self, "\(bad)") { try MetricsAddress(parsing: bad) }
        }
        #expect(try MetricsAddress(parsing: "[::1]:9464").description == "[::1]:9464")
    }
}
