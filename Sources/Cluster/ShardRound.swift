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

    /// One per shard; a meeting shard whose worker is lost becomes a whole task (see `settle`).
    private(set) var tasks: [TaskMessage]
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
    /// Pairs of shards that share a unit range (a left-end task, then its right-end partner):
    /// the units neither has been granted yet. Shard s's meeting is `meetingOf[s]`.
    private var meetings: [Meeting] = []
    private var meetingOf: [Int?]

    struct Meeting {
        let left: Int
        let right: Int
        let range: Range<Int>
        /// Units not granted yet: the left shard has range.lowerBound..<open.lowerBound, the
        /// right one open.upperBound..<range.upperBound.
        var open: Range<Int>
    }

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
        meetingOf = Array(repeating: nil, count: tasks.count)
        // A left-end task and the right-end task right after it, over the same range, meet.
        for shard in tasks.indices.dropLast() where tasks[shard].end == .left {
            let (left, right) = (tasks[shard], tasks[shard + 1])
            precondition(right.end == .right && right.firstUnit == left.firstUnit && right.unitCount == left.unitCount,
                         "a left-end task is followed by its right-end partner over the same units")
            let range = Int(left.firstUnit)..<(Int(left.firstUnit) + Int(left.unitCount))
            meetingOf[shard] = meetings.count
            meetingOf[shard + 1] = meetings.count
            meetings.append(Meeting(left: shard, right: shard + 1, range: range, open: range))
        }
        precondition(tasks.indices.allSatisfy { tasks[$0].end == .whole || meetingOf[$0] != nil }, "every end task has a partner")
    }

    /// The units `shard` computes: its task's range, or for a meeting shard the units granted
    /// to it so far.
    func units(of shard: Int) -> Range<Int> {
        guard let index = meetingOf[shard], tasks[shard].end != .whole else {
            return Int(tasks[shard].firstUnit)..<(Int(tasks[shard].firstUnit) + Int(tasks[shard].unitCount))
        }
        let meeting = meetings[index]
        return shard == meeting.left
            ? meeting.range.lowerBound..<meeting.open.lowerBound : meeting.open.upperBound..<meeting.range.upperBound
    }

    /// Seconds per unit of each worker as measured in earlier steps (ShardBalance), for claiming ahead.
    var unitSeconds: [PeerID: Double] = [:]

    /// The next (at most `count`) units for meeting shard `shard` from its end, claimed by
    /// `peer` (empty once the two ends have met), and whether it should claim its next unit
    /// before computing these: only while, at both workers' measured pace, the units still open
    /// would last the partner more than two of this worker's units — so a worker's claim's round
    /// trip overlaps its unit far from the meeting point, and near it (or with a partner much
    /// faster) the last units still go to whoever is free first. nil if `peer` has no such claim
    /// to make (not its assignee, not a meeting shard, or its result is in).
    mutating func grant(_ shard: Int, to peer: PeerID, count: Int) -> (units: Range<Int>, claimAhead: Bool)? {
        guard shard < tasks.count, let index = meetingOf[shard], tasks[shard].end != .whole,
              assignees[shard]?.peer == peer, results[shard] == nil else { return nil }
        let meeting = meetings[index]
        let open = meeting.open
        let n = min(max(count, 1), open.count)
        let granted: Range<Int>
        if shard == meeting.left {
            meetings[index].open = (open.lowerBound + n)..<open.upperBound
            granted = open.lowerBound..<(open.lowerBound + n)
        } else {
            meetings[index].open = open.lowerBound..<(open.upperBound - n)
            granted = (open.upperBound - n)..<open.upperBound
        }
        let partner = shard == meeting.left ? meeting.right : meeting.left
        var claimAhead = false
        if let mine = unitSeconds[peer], let theirs = assignees[partner].flatMap({ unitSeconds[$0.peer] }), mine > 0, theirs > 0 {
            // Open units at both paces last open · mine · theirs / (mine + theirs) seconds.
            claimAhead = Double(open.count - n) * theirs / (mine + theirs) > 2
        }
        return (granted, claimAhead)
    }

    /// Turns meeting shard `shard`, whose worker was lost, into a whole task over the units it
    /// was granted — and, unless its partner still claims units (a member of `membership`
    /// whose result is not in), the units neither was granted. Returns false when that leaves
    /// it nothing to compute: it is then complete with an empty result. A shard that does not
    /// meet is left as it is (true).
    mutating func settle(_ shard: Int, in membership: Membership) -> Bool {
        guard let index = meetingOf[shard], tasks[shard].end != .whole else { return true }
        let other = shard == meetings[index].left ? meetings[index].right : meetings[index].left
        let partnerComputing = tasks[other].end != .whole && results[other] == nil
            && assignees[other].map { membership.contains($0.peer) } == true
        var range = units(of: shard)
        let open = meetings[index].open
        if !partnerComputing {
            range = shard == meetings[index].left ? range.lowerBound..<open.upperBound : open.lowerBound..<range.upperBound
            meetings[index].open = shard == meetings[index].left ? open.upperBound..<open.upperBound : open.lowerBound..<open.lowerBound
        }
        var task = tasks[shard]
        let whole = Int(task.firstUnit)..<(Int(task.firstUnit) + Int(task.unitCount))
        let size = Int(task.unitSize)
        task.end = .whole
        task.firstUnit = UInt32(range.lowerBound)
        task.unitCount = UInt32(range.count)
        task.sampleIndices = Array(task.sampleIndices[((range.lowerBound - whole.lowerBound) * size)..<((range.upperBound - whole.lowerBound) * size)])
        tasks[shard] = task
        guard range.isEmpty else { return true }
        results[shard] = ResultMessage(
            taskKind: kind, firstUnit: UInt32(range.lowerBound), unitCount: 0, lossSums: [], correctCounts: [], sampleCounts: [],
            gradientBlocks: [], statisticsPerUnit: 0, batchStatistics: .empty, computeSeconds: 0)
        missing -= 1
        return false
    }

    /// Whether `shard` is a meeting shard.
    func meets(_ shard: Int) -> Bool { tasks[shard].end != .whole }

    var isComplete: Bool { missing == 0 }

    /// The results, in shard order (complete rounds only).
    var completed: [ResultMessage] { results.compactMap { $0 } }

    /// Shards assigned to `peer` whose result is not in.
    func openShards(of peer: PeerID) -> Int {
        tasks.indices.filter { assignees[$0]?.peer == peer && results[$0] == nil }.count
    }

    /// Work units of the shards assigned to `peer` whose result is not in (a meeting shard's
    /// whole shared range: it may take all of it).
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
              assignees[shard]?.peer == peer, results[shard] == nil, result.taskKind == kind
        else { return .ignored }
        let units = units(of: shard)
        guard result.firstUnit == units.lowerBound || units.isEmpty, result.unitCount == units.count else {
            return meets(shard)
                ? .invalid("a result for units \(result.firstUnit)..<\(result.firstUnit + result.unitCount), it was granted \(units.lowerBound)..<\(units.upperBound)")
                : .ignored
        }
        if meets(shard), let index = meetingOf[shard], !meetings[index].open.isEmpty {
            return .invalid("a result before its shared units ran out (\(meetings[index].open.count) not granted yet)")
        }
        var task = tasks[shard]
        (task.firstUnit, task.unitCount) = (result.firstUnit, result.unitCount)
        if let problem = problem(result, task) { return .invalid(problem) }
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
