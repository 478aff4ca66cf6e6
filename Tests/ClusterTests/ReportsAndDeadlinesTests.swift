import Cluster
import Testing
import Transport

/// The two rules the coordinator applies by the clock, checked with explicit times: how long a
/// shard may take (StepDeadline) and how often a peer's refusals and drops are logged
/// (RepeatedReports).
@Suite struct ReportsAndDeadlinesTests {
    @Test func theDeadlineIsTheFactorTimesTheMedianUnitTimeOfTheLast64ResultsWithAFloor() {
        var deadline = StepDeadline(factor: 10, floorSeconds: 2)
        #expect(deadline.medianUnitSeconds(.train) == nil)
        #expect(deadline.seconds(.train, units: 1000) == .infinity)  // nothing measured: no deadline
        deadline.record(.train, computeSeconds: 3, units: 3)  // 1 s per unit
        deadline.record(.train, computeSeconds: 0.5, units: 1)
        deadline.record(.train, computeSeconds: 40, units: 2)  // one slow result does not move the median
        #expect(deadline.medianUnitSeconds(.train) == 1)
        #expect(deadline.seconds(.train, units: 3) == 30)
        #expect(deadline.seconds(.train, units: 0) == 2)
        for _ in 0..<StepDeadline.window { deadline.record(.train, computeSeconds: 0.01, units: 1) }
        #expect(deadline.medianUnitSeconds(.train) == 0.01)  // only the last 64 count
        #expect(deadline.seconds(.train, units: 4) == 2)
    }

    @Test func eachMissDoublesAShardsAllowanceAndEvaluationsUseTheTrainMedianUntilMeasured() {
        var deadline = StepDeadline(factor: 10, floorSeconds: 2)
        deadline.record(.train, computeSeconds: 1, units: 1)
        #expect(deadline.seconds(.train, units: 1, misses: 0) == 10)
        #expect(deadline.seconds(.train, units: 1, misses: 1) == 20)
        #expect(deadline.seconds(.train, units: 1, misses: 3) == 80)
        #expect(deadline.seconds(.evaluate, units: 2) == 20)  // a train unit bounds an evaluation chunk
        deadline.record(.evaluate, computeSeconds: 0.5, units: 1)
        #expect(deadline.seconds(.evaluate, units: 2) == 10)
        #expect(deadline.seconds(.train, units: 1) == 10)
    }

    @Test func aPeerGetsOneLinePerIntervalAndItsNextLineCountsWhatWasHeldBack() {
        var reports = RepeatedReports(intervalSeconds: 5, linesPerInterval: 20)
        let peer = PeerID(Array("p".utf8))
        #expect(reports.report("refused a worker: old", topic: "refused", from: peer, at: 0) == "refused a worker: old")
        for t in 1...99 { #expect(reports.report("refused a worker: old", topic: "refused", from: peer, at: Double(t) / 100) == nil) }
        // Another kind of line from the same peer has its own allowance.
        #expect(reports.report("dropped junk", topic: "dropped", from: peer, at: 1) == "dropped junk")
        #expect(reports.report("refused a worker: old", topic: "refused", from: peer, at: 5)
            == "refused a worker: old (+99 more from this peer since its last line)")
        #expect(reports.report("refused a worker: new", topic: "refused", from: peer, at: 6) == nil)
        #expect(reports.flush(at: 7).isEmpty)  // its interval has not passed
        #expect(reports.flush(at: 10) == ["+1 more refused from peer p since its last line, the latest: refused a worker: new"])
        #expect(reports.flush(at: 20).isEmpty)
    }

    @Test func atMostTwentyLinesPerIntervalInAllAndTheRestAreCounted() {
        var reports = RepeatedReports(intervalSeconds: 5, linesPerInterval: 20)
        let printed = (0..<100).compactMap { k in
            reports.report("dropped junk", topic: "dropped", from: PeerID([0, UInt8(k)]), at: 1)
        }
        #expect(printed.count == 20)
        #expect(reports.flush(at: 2, all: true) == ["+80 more refused or dropped messages from other peers (over 20 lines in 5 s)"])
        #expect(reports.report("dropped junk", topic: "dropped", from: PeerID([0, 99]), at: 6) == "dropped junk")
        #expect(RepeatedReports.name(PeerID([0, 99])) == "0x0063")
    }
}
