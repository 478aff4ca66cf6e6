import Cluster
import Testing
import Training

/// A worker's side of meeting another: the units it is granted, one at a time from its end;
/// far from the meeting point it claims the next before it computes the one it has.
@Suite struct ClaimedUnitsTests {
    /// Grants from a script; records when the worker asks and reads answers.
    final class Script {
        var grants: [(units: Range<Int>, claimAhead: Bool)?]
        var events: [String] = []

        init(_ grants: [(units: Range<Int>, claimAhead: Bool)?]) { self.grants = grants }

        var claims: UnitClaims {
            UnitClaims(
                ask: { self.events.append("ask") },
                answer: {
                    self.events.append("answer")
                    return self.grants.removeFirst()
                })
        }
    }

    @Test func whenTheGrantSaysSoTheNextUnitIsClaimedBeforeThisOneIsComputed() throws {
        let script = Script([(0..<1, true), (1..<2, true), (2..<3, false), (3..<4, false), nil])
        let units = ClaimedUnits(range: 0..<10, end: .left, claims: script.claims)
        var taken = [Int]()
        while let unit = try units.take(from: .left) {
            taken.append(unit)
            script.events.append("compute \(unit)")
        }
        #expect(taken == [0, 1, 2, 3] && units.units == 0..<4)
        #expect(script.events == [
            "ask", "answer", "ask", "compute 0",  // claim ahead
            "answer", "ask", "compute 1",  // the answer was already asked for; claim ahead again
            "answer", "compute 2",  // not ahead: ask when needed
            "ask", "answer", "compute 3",
            "ask", "answer",  // none left
        ], "\(script.events)")
    }

    @Test func fromTheRightEndUnitsComeDownward() throws {
        let script = Script([(9..<10, false), (8..<9, false), nil])
        let units = ClaimedUnits(range: 2..<10, end: .right, claims: script.claims)
        #expect(try units.take(from: .right) == 9)
        #expect(try units.take(from: .right) == 8)
        #expect(try units.take(from: .right) == nil)
        #expect(units.units == 8..<10)
    }

    /// A grant that does not continue the run from this task's end (or leaves its range) is a
    /// coordinator fault: refused with the reason, never summed out of order.
    @Test(arguments: [4..<5, 1..<2, 10..<11])
    func aGrantThatSkipsOrLeavesTheRangeIsRefused(wrong: Range<Int>) throws {
        let script = Script([(2..<3, false), (wrong, false)])
        let units = ClaimedUnits(range: 2..<10, end: .left, claims: script.claims)
        #expect(try units.take(from: .left) == 2)
        do {
            _ = try units.take(from: .left)
            Issue.record("granted \(wrong) after unit 2 was accepted")
        } catch {
            #expect("\(error)".contains("the coordinator granted units \(wrong.lowerBound)..<\(wrong.upperBound)"), "\(error)")
        }
    }
}
