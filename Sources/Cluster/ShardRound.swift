import Transport
import Wire

// Scheduling (DESIGN §6): a step's work units are cut into contiguous shards over the live
// workers (ShardPlan); a ShardRound tracks who computes each shard and which results are in.
// A shard whose worker dies goes to the live worker with the fewest open shards, with the same
// step and shard id. A result counts only if it answers the shard's current assignment —
// same job, step, shard, sender, task kind and unit range — so a late or duplicate result
// (e.g. from a worker whose shard was re-issued) is ignored, never counted twice.

/// Contiguous, balanced ranges of work units, one per worker (fewer if there are fewer units).
public enum ShardPlan {
    public static func ranges(units: Int, workers: Int) -> [Range<Int>] {
        let shards = max(1, min(units, workers))
        return (0..<shards).map { k in (k * units / shards)..<((k + 1) * units / shards) }
    }
}

struct ShardRound {
    enum Verdict: Equatable {
        case accepted
        /// Not an answer to an open assignment (stale, duplicate, foreign, re-issued).
        case ignored
        /// An answer that cannot be used (the sender should be declared dead).
        case invalid(String)
    }

    let tasks: [TaskMessage]
    let step: Int
    let kind: TaskKind
    let jobID: Digest32
    private(set) var assignees: [Member?]
    private(set) var results: [ResultMessage?]
    private(set) var missing: Int

    init(tasks: [TaskMessage], step: Int, kind: TaskKind, jobID: Digest32) {
        self.tasks = tasks
        self.step = step
        self.kind = kind
        self.jobID = jobID
        assignees = Array(repeating: nil, count: tasks.count)
        results = Array(repeating: nil, count: tasks.count)
        missing = tasks.count
    }

    var isComplete: Bool { missing == 0 }

    /// The results, in shard order (complete rounds only).
    var completed: [ResultMessage] { results.compactMap { $0 } }

    /// Shards assigned to `peer` whose result is not in.
    func openShards(of peer: PeerID) -> Int {
        tasks.indices.filter { assignees[$0]?.peer == peer && results[$0] == nil }.count
    }

    /// Who should compute a shard: member `planned` if it exists, else the member with the fewest
    /// open shards (the first of them on a tie). `members` must not be empty.
    func target(planned: Int?, among members: [Member]) -> Member {
        if let planned, planned < members.count { return members[planned] }
        let loads = members.map { openShards(of: $0.peer) }
        return members[loads.indices.min { loads[$0] < loads[$1] } ?? 0]
    }

    /// Records that `shard` was sent to `member`; returns the previous assignee, if any.
    @discardableResult
    mutating func assign(_ shard: Int, to member: Member) -> Member? {
        defer { assignees[shard] = member }
        return assignees[shard]
    }

    /// Takes `result`, which `peer` sent with the header fields of `envelope`. `problem` says why
    /// a matching result cannot be used (nil if it can).
    mutating func offer(
        _ result: ResultMessage, envelope: WireEnvelope, from peer: PeerID,
        problem: (ResultMessage, TaskMessage) -> String?
    ) -> Verdict {
        let shard = Int(envelope.shardID)
        guard envelope.jobID == jobID, Int(envelope.step) == step, shard < tasks.count,
              assignees[shard]?.peer == peer, results[shard] == nil, result.taskKind == kind,
              result.firstUnit == tasks[shard].firstUnit, result.unitCount == tasks[shard].unitCount
        else { return .ignored }
        if let problem = problem(result, tasks[shard]) { return .invalid(problem) }
        results[shard] = result
        missing -= 1
        return .accepted
    }

    /// Open shards whose assignee is no longer a member, in shard order.
    func orphans(in membership: Membership) -> [Int] {
        tasks.indices.filter { shard in
            guard results[shard] == nil, let owner = assignees[shard] else { return false }
            return !membership.contains(owner.peer)
        }
    }
}
