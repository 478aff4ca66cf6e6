import Transport
import Wire

// Scheduling (DESIGN §6): a step's work units are cut into contiguous shards over the live
// workers (ShardPlan); a ShardRound tracks who computes each shard, by when, and which results
// are in. A shard whose worker dies, or that is not back by its deadline (StepDeadline), goes
// to the live worker with the fewest open shards, with the same step and shard id. A result
// counts only if it answers the shard's current assignment — same job, step, shard, sender,
// task kind and unit range — so a late or duplicate result (e.g. from a worker whose shard was
// re-issued) is ignored, never counted twice.

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
    /// When each assignment's result is overdue (monotonic seconds), how long it was allowed,
    /// and how many of the shard's assignments missed their deadline.
    private var deadlines: [Double]
    private var allowances: [Double]
    private(set) var misses: [Int]
    private(set) var results: [ResultMessage?]
    private(set) var missing: Int

    init(tasks: [TaskMessage], step: Int, kind: TaskKind, jobID: Digest32) {
        self.tasks = tasks
        self.step = step
        self.kind = kind
        self.jobID = jobID
        assignees = Array(repeating: nil, count: tasks.count)
        deadlines = Array(repeating: .infinity, count: tasks.count)
        allowances = Array(repeating: .infinity, count: tasks.count)
        misses = Array(repeating: 0, count: tasks.count)
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

    /// Work units of the shards assigned to `peer` whose result is not in.
    func openUnits(of peer: PeerID) -> Int {
        tasks.indices.filter { assignees[$0]?.peer == peer && results[$0] == nil }.reduce(0) { $0 + Int(tasks[$1].unitCount) }
    }

    /// Who should compute a shard: member `planned` if it exists, else the member with the fewest
    /// open shards (the first of them on a tie). `members` must not be empty.
    func target(planned: Int?, among members: [Member]) -> Member {
        if let planned, planned < members.count { return members[planned] }
        let loads = members.map { openShards(of: $0.peer) }
        return members[loads.indices.min { loads[$0] < loads[$1] } ?? 0]
    }

    /// Records that `shard` was sent to `member` at `now`, its result due `seconds` later;
    /// returns the previous assignee, if any.
    @discardableResult
    mutating func assign(_ shard: Int, to member: Member, at now: Double = 0, allowing seconds: Double = .infinity) -> Member? {
        defer {
            assignees[shard] = member
            allowances[shard] = seconds
            deadlines[shard] = now + seconds
        }
        return assignees[shard]
    }

    /// The seconds the current assignment of `shard` was allowed.
    func allowance(of shard: Int) -> Double { allowances[shard] }

    /// Open shards whose deadline has passed, in shard order; each counts as one more miss.
    mutating func overdue(at now: Double) -> [Int] {
        let late = tasks.indices.filter { results[$0] == nil && assignees[$0] != nil && deadlines[$0] < now }
        for shard in late {
            misses[shard] += 1
            deadlines[shard] = .infinity  // counted once; the re-issue sets a new deadline
        }
        return late
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

/// How long a shard may take (DESIGN §6): a worker whose main thread hangs keeps heartbeating,
/// so silence never reveals it. A shard is overdue after max(floor, factor × the median per-unit
/// compute time of recent results of its kind × the units queued on its worker), doubled for
/// each time this shard has already missed its deadline in the step (so a legitimately slow
/// step cannot be re-issued forever). Evaluation units (forward only) use the train median
/// until evaluations are measured; before any measurement there is no deadline (a first step
/// or evaluation of unknown length is never cut short).
package struct StepDeadline {
    package let factor: Double
    package let floorSeconds: Double
    /// Per-unit compute seconds of the most recent results of each kind.
    private var train = Ring()
    private var evaluate = Ring()
    package static let window = 64

    /// The last `window` values.
    private struct Ring {
        var values: [Double] = []
        var next = 0

        mutating func add(_ value: Double) {
            if values.count < StepDeadline.window {
                values.append(value)
            } else {
                values[next] = value
                next = (next + 1) % StepDeadline.window
            }
        }

        var median: Double? {
            guard !values.isEmpty else { return nil }
            let sorted = values.sorted()
            let middle = sorted.count / 2
            return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        }
    }

    package init(factor: Double, floorSeconds: Double) {
        self.factor = factor
        self.floorSeconds = floorSeconds
    }

    /// Notes a result's compute time over its units.
    package mutating func record(_ kind: TaskKind, computeSeconds: Double, units: Int) {
        guard units > 0, computeSeconds.isFinite, computeSeconds >= 0 else { return }
        switch kind {
        case .train: train.add(computeSeconds / Double(units))
        case .evaluate: evaluate.add(computeSeconds / Double(units))
        }
    }

    /// The median per-unit compute time for tasks of `kind` (nil before any measurement).
    package func medianUnitSeconds(_ kind: TaskKind) -> Double? {
        kind == .evaluate ? evaluate.median ?? train.median : train.median
    }

    /// Seconds a worker with `units` queued units of `kind` may take when this shard has
    /// missed its deadline `misses` times already (infinity before any measurement).
    package func seconds(_ kind: TaskKind, units: Int, misses: Int = 0) -> Double {
        guard let median = medianUnitSeconds(kind) else { return .infinity }
        return max(floorSeconds, factor * median * Double(units)) * Double(1 << min(misses, 20))
    }
}
