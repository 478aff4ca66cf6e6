import Cluster
import Testing
import Transport

/// How the coordinator cuts a step's units by measured speed (ShardBalance): the pure plan.
/// That any cut gives the same bits is shown with real processes (ShardBalanceIntegrationTests)
/// and by the unit tree's tests.
@Suite struct ShardBalanceTests {
    typealias Worker = ShardBalance.Worker

    static func counts(_ ranges: [Range<Int>]) -> [Int] { ranges.map(\.count) }

    /// The ranges tile 0..<units in order, each non-empty.
    static func tiles(_ ranges: [Range<Int>], _ units: Int) -> Bool {
        ranges.first?.lowerBound == 0 && ranges.last?.upperBound == units
            && zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound } && ranges.allSatisfy { !$0.isEmpty }
    }

    @Test func aWorkerTwiceAsSlowGetsAboutAThirdOfTheUnits() {
        let ranges = ShardBalance.ranges(units: 32, workers: [Worker(groups: 1, roundSeconds: 1), Worker(groups: 1, roundSeconds: 2)])
        // Both finish the step after 22 s; the equal cut after 32 s.
        #expect([[21, 11], [22, 10]].contains(Self.counts(ranges)))
        #expect(Self.tiles(ranges, 32))
    }

    @Test func aWorkerWithTwoLaneGroupsGetsTwiceTheUnitsOfOneWithOne() {
        // ⌈u / 2⌉ rounds against u rounds of the same length: 21 + 11 and 22 + 10 both finish
        // after 11 rounds; no cut finishes within 10.
        let ranges = ShardBalance.ranges(units: 32, workers: [Worker(groups: 2, roundSeconds: 1), Worker(groups: 1, roundSeconds: 1)])
        #expect([[21, 11], [22, 10]].contains(Self.counts(ranges)))
        #expect(Self.tiles(ranges, 32))
    }

    @Test func equalWorkersKeepTheEqualCut() {
        let equal = ShardPlan.ranges(units: 32, workers: 3)
        #expect(ShardBalance.ranges(units: 32, workers: Array(repeating: Worker(groups: 1, roundSeconds: 1), count: 3)) == equal)
        // 1 % apart: a balanced cut would save less than minimumGain.
        #expect(ShardBalance.ranges(units: 32, workers: [Worker(groups: 1, roundSeconds: 1), Worker(groups: 1, roundSeconds: 1.01), Worker(groups: 1, roundSeconds: 1)]) == equal)
    }

    @Test func theLastUnevenCutStaysWhileItIsAboutAsGoodAsTheBest() {
        // 22 + 10 finish after 22 s, 21 + 11 after 22.2 s: within minimumGain, so a step cut
        // 21 + 11 keeps that cut, and noise in the measurements does not move a unit back and forth.
        let workers = [Worker(groups: 1, roundSeconds: 1), Worker(groups: 1, roundSeconds: 2.02)]
        #expect(Self.counts(ShardBalance.ranges(units: 32, workers: workers)) == [22, 10])
        #expect(Self.counts(ShardBalance.ranges(units: 32, workers: workers, previous: [21, 11])) == [21, 11])
        // Not a previous cut of these units and workers, or clearly worse: the best one.
        #expect(Self.counts(ShardBalance.ranges(units: 32, workers: workers, previous: [20, 12])) == [22, 10])
        #expect(Self.counts(ShardBalance.ranges(units: 32, workers: workers, previous: [21, 10])) == [22, 10])
        #expect(Self.counts(ShardBalance.ranges(units: 32, workers: workers, previous: [32, 0])) == [22, 10])
        // The equal cut as the previous one is left once a balanced cut is worth it.
        #expect(Self.counts(ShardBalance.ranges(units: 32, workers: workers, previous: [16, 16])) == [22, 10])
    }

    @Test func theEqualCutUntilEveryWorkerIsMeasured() {
        #expect(ShardBalance.ranges(units: 32, workers: [Worker(groups: 1, roundSeconds: 1), Worker(groups: 1, roundSeconds: nil)])
                == ShardPlan.ranges(units: 32, workers: 2))
    }

    @Test func theEqualCutWhenTheSavingIsBelowFiftyMilliseconds() {
        // Four times as slow, but the whole step takes 16 ms.
        let fast = [Worker(groups: 1, roundSeconds: 0.000_5), Worker(groups: 1, roundSeconds: 0.002)]
        #expect(ShardBalance.ranges(units: 8, workers: fast) == ShardPlan.ranges(units: 8, workers: 2))
        let slow = [Worker(groups: 1, roundSeconds: 0.05), Worker(groups: 1, roundSeconds: 0.2)]
        #expect(Self.counts(ShardBalance.ranges(units: 8, workers: slow)) == [7, 1])
    }

    @Test func everyWorkerKeepsAUnitAndFewUnitsAreCutEqually() {
        let ranges = ShardBalance.ranges(units: 8, workers: [Worker(groups: 1, roundSeconds: 1), Worker(groups: 1, roundSeconds: 100)])
        #expect(Self.counts(ranges) == [7, 1])
        let few = [Worker(groups: 1, roundSeconds: 1), Worker(groups: 1, roundSeconds: 100), Worker(groups: 1, roundSeconds: 1)]
        #expect(ShardBalance.ranges(units: 3, workers: few) == ShardPlan.ranges(units: 3, workers: 3))
        #expect(ShardBalance.ranges(units: 2, workers: few) == ShardPlan.ranges(units: 2, workers: 3))
        #expect(ShardBalance.ranges(units: 5, workers: [Worker(groups: 1, roundSeconds: 1)]) == [0..<5])
    }

    @Test func aRoundIsTheMedianOfTheLastThreeResultsPerLaneGroupRoundOnceThereAreThree() {
        var balance = ShardBalance()
        let peer = PeerID(Array("a".utf8))
        #expect(balance.roundSeconds(of: peer) == nil)
        // 5 units on 2 groups: 3 rounds.
        balance.record(peer, groups: 2, units: 5, computeSeconds: 3)
        balance.record(peer, groups: 1, units: 2, computeSeconds: 100)  // one slow step
        // Not measured until it has three results.
        #expect(balance.roundSeconds(of: peer) == nil)
        balance.record(peer, groups: 1, units: 4, computeSeconds: 8)
        #expect(balance.roundSeconds(of: peer) == 2)
        // Nothing measured: ignored.
        balance.record(peer, groups: 1, units: 4, computeSeconds: 0)
        balance.record(peer, groups: 1, units: 0, computeSeconds: 1)
        balance.record(peer, groups: 1, units: 4, computeSeconds: .nan)
        #expect(balance.roundSeconds(of: peer) == 2)
        // The first result leaves the window of three.
        balance.record(peer, groups: 1, units: 1, computeSeconds: 50)
        #expect(balance.roundSeconds(of: peer) == 50)
        balance.forget(peer)
        #expect(balance.roundSeconds(of: peer) == nil)
    }
}
