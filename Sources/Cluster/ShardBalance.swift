import Transport

// Shard sizes by measured speed (DESIGN §4): a step lasts as long as its slowest shard, so an
// equal split lets the slowest worker set the pace — a node of another type, one whose host is
// busy, or one with fewer lanes. The coordinator therefore cuts the step's units in proportion
// to each worker's measured speed. The bits do not move: shards stay contiguous unit ranges in
// member order, and the unit tree combines their aligned blocks to the same bytes however the
// ranges are cut (UnitTree); only how long the step takes changes.
//
// Model: a worker with g lane groups (lanes / chunks per unit) computes u units in ⌈u / g⌉
// rounds of s seconds each. s is the median of its last three train results' compute seconds
// per round, and a worker counts as measured only once it has three, so one slow step (a
// first step's one-time costs, a burst on its host) does not move the plan. The cut minimizes the predicted slowest
// worker (greedy: each unit goes where it finishes soonest, which is optimal for step costs that
// grow with u); every worker keeps at least one unit, so each stays measured. The equal cut is
// kept until every worker is measured and whenever the balanced one is predicted to save less
// than `minimumGain` of the step or `minimumSavingSeconds`: uneven ranges cost a few more
// gradient blocks per worker (copies and additions of P floats), and equal workers should not
// trade units back and forth over noise — which, in steps of milliseconds, is most of the time.
// For the same reason the previous step's uneven cut stays while it is that close to the best.

package struct ShardBalance {
    /// The fraction of the equal cut's predicted time a balanced cut must save to be used…
    package static let minimumGain = 0.02
    /// … and the seconds.
    package static let minimumSavingSeconds = 0.05
    /// Train results per worker whose median is its round time.
    package static let window = 3

    /// A live worker as the plan sees it: its lane groups and its measured round time.
    package struct Worker: Equatable {
        package var groups: Int
        /// Median seconds per round of ⌈units / groups⌉ (nil before a measured result).
        package var roundSeconds: Double?

        package init(groups: Int, roundSeconds: Double?) {
            self.groups = groups
            self.roundSeconds = roundSeconds
        }
    }

    /// Each worker's recent round times, newest last.
    private var rounds: [PeerID: [Double]] = [:]

    package init() {}

    /// Notes a train result of `peer`: `units` units on `groups` lane groups in `computeSeconds`.
    package mutating func record(_ peer: PeerID, groups: Int, units: Int, computeSeconds: Double) {
        guard units > 0, groups > 0, computeSeconds.isFinite, computeSeconds > 0 else { return }
        let perRound = computeSeconds / Double((units + groups - 1) / groups)
        var recent = rounds[peer, default: []]
        recent.append(perRound)
        if recent.count > Self.window { recent.removeFirst(recent.count - Self.window) }
        rounds[peer] = recent
    }

    /// Drops what was measured of `peer` (it left; if it comes back it is measured anew).
    package mutating func forget(_ peer: PeerID) { rounds[peer] = nil }

    /// The median round time of `peer` over its last `window` results (nil before it has that many).
    package func roundSeconds(of peer: PeerID) -> Double? {
        guard let recent = rounds[peer], recent.count >= Self.window else { return nil }
        let sorted = recent.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// Contiguous unit ranges, one per worker in order (fewer if there are fewer units): the
    /// balanced cut when every worker is measured and it is worth it, else the equal one.
    /// `previous` (units per worker of the last cut of these workers) stays if it is about as good.
    package static func ranges(units: Int, workers: [Worker], previous: [Int]? = nil) -> [Range<Int>] {
        let equal = ShardPlan.ranges(units: units, workers: workers.count)
        guard units > workers.count, workers.count > 1 else { return equal }
        let measured = workers.compactMap { worker in worker.roundSeconds.map { (groups: max(1, worker.groups), seconds: $0) } }
        guard measured.count == workers.count else { return equal }
        func seconds(_ worker: Int, _ count: Int) -> Double {
            let (groups, perRound) = measured[worker]
            return Double((count + groups - 1) / groups) * perRound
        }
        var counts = Array(repeating: 1, count: workers.count)
        for _ in workers.count..<units {
            var best = 0
            var bestSeconds = Double.infinity
            for worker in workers.indices {
                let finish = seconds(worker, counts[worker] + 1)
                if finish < bestSeconds {
                    best = worker
                    bestSeconds = finish
                }
            }
            counts[best] += 1
        }
        func slowest(_ counts: [Int]) -> Double { counts.indices.map { seconds($0, counts[$0]) }.max() ?? 0 }
        /// Whether the cut taking `slower` seconds is not worth leaving for one taking `faster`.
        func closeEnough(_ slower: Double, _ faster: Double) -> Bool {
            faster >= (1 - minimumGain) * slower || slower - faster < minimumSavingSeconds
        }
        let balanced = slowest(counts)
        if closeEnough(slowest(equal.map(\.count)), balanced) { return equal }
        if let previous, previous.count == workers.count, previous.allSatisfy({ $0 >= 1 }), previous.reduce(0, +) == units,
           closeEnough(slowest(previous), balanced) {
            counts = previous
        }
        var first = 0
        return counts.map { count in
            defer { first += count }
            return first..<(first + count)
        }
    }
}
