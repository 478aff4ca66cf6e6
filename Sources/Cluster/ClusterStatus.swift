import Foundation
import Synchronization
import Training

// What `ssgd status` shows: a snapshot the coordinator updates after each step, served as JSON
// by a REP socket on its own thread (always bound to loopback or ipc: status never leaves the
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

    enum CodingKeys: String, CodingKey {
        case step, epoch, state
        case liveWorkers = "live_workers", lastStepSeconds = "last_step_seconds"
        case droppedMessages = "dropped_messages", ignoredResults = "ignored_results"
        case recentReassignments = "recent_reassignments"
    }

    public var text: String {
        var lines = [
            "state \(state), step \(step), epoch \(epoch), last step \(String(format: "%.3f", lastStepSeconds)) s",
            "live workers (\(liveWorkers.count)): \(liveWorkers.joined(separator: ", "))",
            "dropped messages \(droppedMessages), ignored results \(ignoredResults)",
        ]
        if recentReassignments.isEmpty {
            lines.append("no reassignments")
        } else {
            lines.append("recent reassignments:")
            for r in recentReassignments { lines.append("  step \(r.step) shard \(r.shard): \(r.from) → \(r.to) (\(r.reason))") }
        }
        return lines.joined(separator: "\n")
    }

    /// The status endpoint that goes with a coordinator endpoint: tcp port + 1 on 127.0.0.1,
    /// or the ipc path + ".status".
    public static func endpoint(forCoordinator endpoint: String) -> String? {
        if endpoint.hasPrefix("ipc://") { return endpoint + ".status" }
        guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":"),
              let port = Int(endpoint[endpoint.index(after: colon)...]) else { return nil }
        return "tcp://127.0.0.1:\(port + 1)"
    }
}

final class StatusServer: @unchecked Sendable {
    private let lock = NSLock()
    private var snapshot = ClusterStatus()
    private let stopRequested = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)
    let endpoint: String

    /// Binds on the caller's thread (so a bad endpoint fails at once), serves on its own.
    init(endpoint: String) throws {
        guard SecurityPolicy.isLocal(endpoint) else {
            throw ClusterError("the status endpoint \(endpoint) must be ipc:// or loopback tcp")
        }
        let probe = try ZMQSocket(.reply)
        try probe.bind(endpoint)
        self.endpoint = (try? probe.lastEndpoint) ?? endpoint
        probe.close()
        let thread = Thread { [self] in self.serve() }
        thread.name = "ssgd-status"
        thread.start()
    }

    func update(_ body: (inout ClusterStatus) -> Void) {
        lock.lock()
        body(&snapshot)
        lock.unlock()
    }

    private func current() -> ClusterStatus {
        lock.lock()
        defer { lock.unlock() }
        return snapshot
    }

    private func serve() {
        defer { finished.store(true, ordering: .relaxed) }
        guard let socket = try? ZMQSocket(.reply) else { return }
        defer { socket.close() }
        guard (try? socket.bind(endpoint)) != nil else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        while !stopRequested.load(ordering: .relaxed) {
            guard (try? socket.receive(timeout: .milliseconds(100))) != nil else { continue }
            let body = (try? encoder.encode(current())).map { [UInt8]($0) } ?? []
            try? socket.send([.bytes(body)])
        }
    }

    func stop() {
        stopRequested.store(true, ordering: .relaxed)
        let deadline = MonotonicClock.now() + 2
        while !finished.load(ordering: .relaxed) && MonotonicClock.now() < deadline { usleep(1000) }
    }

    /// Ask a coordinator's status socket (client side of `ssgd status`).
    static func query(_ endpoint: String, timeoutSeconds: Double) throws -> ClusterStatus {
        let socket = try ZMQSocket(.request)
        defer { socket.close() }
        try socket.connect(endpoint)
        try socket.send([.bytes(Array("status".utf8))])
        guard let frames = try socket.receive(timeout: .milliseconds(Int64(timeoutSeconds * 1000))), let frame = frames.first else {
            throw ClusterError("no answer from a coordinator status socket at \(endpoint) within \(Int(timeoutSeconds)) s")
        }
        return try JSONDecoder().decode(ClusterStatus.self, from: Data(frame.bytes))
    }
}

public enum ClusterStatusClient {
    public static func query(_ endpoint: String, timeoutSeconds: Double = 5) throws -> ClusterStatus {
        try StatusServer.query(endpoint, timeoutSeconds: timeoutSeconds)
    }
}
