import Foundation
import Synchronization
import Transport

// What `ssgd status` shows: a snapshot the coordinator updates after each step, served as JSON
// by a LocalReplyServer on its own thread (always loopback or ipc: status never leaves the
// node unencrypted).

public struct ClusterStatus: Codable, Sendable {
    public struct Reassignment: Codable, Sendable {
        public var step: Int
        public var shard: Int
        public var from: String
        public var to: String
        public var reason: String
    }

    public var step = 0
    public var epoch = 0
    public var liveWorkers: [String] = []
    public var lastStepSeconds = 0.0
    public var droppedMessages = 0
    public var ignoredResults = 0
    public var recentReassignments: [Reassignment] = []
    public var state = "starting"
    /// The last training step's cut: each worker's units, in unit order (nil before a step, or
    /// from a coordinator that does not say).
    public var unitsPerWorker: [WorkerUnits]?

    public struct WorkerUnits: Codable, Sendable, Equatable {
        public var worker: String
        public var units: Int
    }

    enum CodingKeys: String, CodingKey {
        case step, epoch, state
        case liveWorkers = "live_workers", lastStepSeconds = "last_step_seconds"
        case droppedMessages = "dropped_messages", ignoredResults = "ignored_results"
        case recentReassignments = "recent_reassignments", unitsPerWorker = "units_per_worker"
    }

    public var text: String {
        var lines = [
            "state \(state), step \(step), epoch \(epoch), last step \(String(format: "%.3f", lastStepSeconds)) s",
            "live workers (\(liveWorkers.count)): \(liveWorkers.joined(separator: ", "))",
            "dropped messages \(droppedMessages), ignored results \(ignoredResults)",
        ]
        if let unitsPerWorker, !unitsPerWorker.isEmpty {
            lines.append("units per worker in the last step: " + unitsPerWorker.map { "\($0.worker) \($0.units)" }.joined(separator: ", "))
        }
        if recentReassignments.isEmpty {
            lines.append("no reassignments")
        } else {
            lines.append("recent reassignments:")
            for r in recentReassignments { lines.append("  step \(r.step) shard \(r.shard): \(r.from) → \(r.to) (\(r.reason))") }
        }
        return lines.joined(separator: "\n")
    }

    /// The status endpoint that goes with a coordinator endpoint: tcp port + 1 on 127.0.0.1
    /// (any free port on 127.0.0.1 for a coordinator bound to `:*`), or the ipc path + ".status".
    public static func endpoint(forCoordinator endpoint: String) -> String? {
        if endpoint.hasPrefix("ipc://") { return endpoint + ".status" }
        guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":") else { return nil }
        let port = endpoint[endpoint.index(after: colon)...]
        if port == "*" { return "tcp://127.0.0.1:*" }
        return Int(port).map { "tcp://127.0.0.1:\($0 + 1)" }
    }
}

/// Serves the latest ClusterStatus as JSON on a LocalReplyServer.
final class StatusServer: Sendable {
    private final class Snapshot: Sendable {
        let current = Mutex(ClusterStatus())
    }

    private let snapshot: Snapshot
    private let server: LocalReplyServer

    var endpoint: String { server.endpoint }

    /// Listening once this returns; a bad or taken endpoint throws an error that says it is the
    /// status socket's.
    init(endpoint: String) throws {
        guard SecurityPolicy.isLocal(endpoint) else {
            throw ClusterError("the status endpoint \(endpoint) must be ipc:// or loopback tcp")
        }
        let snapshot = Snapshot()
        self.snapshot = snapshot
        do {
            server = try LocalReplyServer(endpoint: endpoint) {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                return (try? encoder.encode(snapshot.current.withLock { $0 })).map { [UInt8]($0) } ?? []
            }
        } catch {
            throw ClusterError("cannot open the status socket (for `ssgd status`; by default the coordinator's "
                + "tcp port + 1 on 127.0.0.1, or its ipc path + .status) at \(endpoint): \(error) "
                + "For the status socket, give --status-bind another endpoint (tcp://127.0.0.1:* takes any free port).")
        }
    }

    func update(_ body: (inout ClusterStatus) -> Void) {
        snapshot.current.withLock { body(&$0) }
    }

    func stop() { server.stop() }
}

public enum ClusterStatusClient {
    /// Ask a coordinator's status socket (client side of `ssgd status`).
    public static func query(_ endpoint: String, timeoutSeconds: Double = 5) throws -> ClusterStatus {
        guard let answer = try LocalReplyServer.ask(endpoint, request: Array("status".utf8), timeout: .milliseconds(Int64(timeoutSeconds * 1000))) else {
            throw ClusterError("no answer from a coordinator status socket at \(endpoint) within \(Int(timeoutSeconds)) s")
        }
        return try JSONDecoder().decode(ClusterStatus.self, from: Data(answer))
    }
}
