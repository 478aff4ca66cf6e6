import Training
import Wire

// A train task with an end (TaskEnd.left or .right) shares its range with another worker's task:
// each takes units from its end, claiming them one at a time from the coordinator, until the two
// meet — so the faster worker computes more and neither waits for the other at the end of the
// step, as two lane groups of one process do (MeetingCursor). This is the worker's side: the
// units granted must continue this task's run of units from its end, within its range; any
// other grant is a coordinator fault, refused with the reason rather than summed out of order.

final class ClaimedUnits: UnitSource {
    let range: Range<Int>
    let end: MeetingCursor.End
    /// Asks the coordinator for at most `count` more units; nil: none are left.
    private let claim: (Int) throws -> Range<Int>?
    /// Units granted so far, contiguous from this task's end.
    private(set) var taken = 0
    private var granted: [Int] = []

    init(range: Range<Int>, end: MeetingCursor.End, claim: @escaping (Int) throws -> Range<Int>?) {
        self.range = range
        self.end = end
        self.claim = claim
    }

    /// The units granted, as one range (empty at this task's end if none were).
    var units: Range<Int> {
        end == .left ? range.lowerBound..<(range.lowerBound + taken) : (range.upperBound - taken)..<range.upperBound
    }

    func take(from end: MeetingCursor.End) throws -> Int? {
        precondition(end == self.end, "a claimed task takes from its own end")
        if granted.isEmpty {
            guard let grant = try claim(1), !grant.isEmpty else { return nil }
            let next = end == .left ? units.upperBound : units.lowerBound - 1
            let expected = end == .left ? next..<(next + grant.count) : (next + 1 - grant.count)..<(next + 1)
            guard grant == expected, range.contains(grant.lowerBound), range.contains(grant.upperBound - 1) else {
                throw WorkerTaskError(description: "the coordinator granted units \(grant.lowerBound)..<\(grant.upperBound), "
                    + "this task takes \(end == .left ? "from the left of" : "from the right of") \(range.lowerBound)..<\(range.upperBound) "
                    + "and has \(taken) unit(s) already")
            }
            granted = end == .left ? Array(grant) : grant.reversed()
        }
        taken += 1
        return granted.removeFirst()
    }
}
