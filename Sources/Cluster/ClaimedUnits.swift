import Training
import Wire

// A train task with an end (TaskEnd.left or .right) shares its range with another worker's task:
// each takes units from its end, claiming them one at a time from the coordinator, until the two
// meet — so the faster worker computes more and neither waits for the other at the end of the
// step, as two lane groups of one process do (MeetingCursor). Far from the meeting point a
// worker claims its next unit while it computes one, when its grant says so.
//
// This is the worker's side: the units granted must continue this task's run of units from its
// end, within its range; any other grant is a coordinator fault, refused with the reason rather
// than summed out of order.

/// A worker's way to claim units of its task: `ask` sends a CLAIM for one unit, `answer` waits
/// for its GRANT (nil: none left), which says whether to claim the next unit ahead.
public struct UnitClaims {
    public let ask: () throws -> Void
    public let answer: () throws -> (units: Range<Int>, claimAhead: Bool)?

    public init(ask: @escaping () throws -> Void, answer: @escaping () throws -> (units: Range<Int>, claimAhead: Bool)?) {
        self.ask = ask
        self.answer = answer
    }
}

package final class ClaimedUnits: UnitSource {
    package let range: Range<Int>
    package let end: MeetingCursor.End
    private let claims: UnitClaims
    /// Whether a CLAIM is out whose GRANT has not been read.
    private var asked = false
    /// Units handed out so far, contiguous from this task's end.
    private(set) var taken = 0
    /// Units granted and not handed out yet.
    private var granted = 0..<0

    package init(range: Range<Int>, end: MeetingCursor.End, claims: UnitClaims) {
        self.range = range
        self.end = end
        self.claims = claims
    }

    /// The units granted, as one range (empty at this task's end if none were).
    package var units: Range<Int> {
        end == .left ? range.lowerBound..<(range.lowerBound + taken) : (range.upperBound - taken)..<range.upperBound
    }

    package func take(from end: MeetingCursor.End) throws -> Int? {
        precondition(end == self.end, "a claimed task takes from its own end")
        if granted.isEmpty {
            if !asked { try claims.ask() }
            asked = false
            guard let (grant, claimAhead) = try claims.answer(), !grant.isEmpty else { return nil }
            let next = end == .left ? units.upperBound : units.lowerBound - 1
            let expected = end == .left ? next..<(next + grant.count) : (next + 1 - grant.count)..<(next + 1)
            guard grant == expected, range.contains(grant.lowerBound), range.contains(grant.upperBound - 1) else {
                throw WorkerTaskError(description: "the coordinator granted units \(grant.lowerBound)..<\(grant.upperBound), "
                    + "this task takes \(end == .left ? "from the left of" : "from the right of") \(range.lowerBound)..<\(range.upperBound) "
                    + "and has \(taken) unit(s) already")
            }
            granted = grant
            // Far from the meeting point (the coordinator judges), the next claim's round trip
            // — a wake-up of the coordinator's process, milliseconds on a busy host — overlaps
            // this unit.
            if claimAhead {
                try claims.ask()
                asked = true
            }
        }
        taken += 1
        if end == .left {
            defer { granted = granted.dropFirst() }
            return granted.lowerBound
        }
        defer { granted = granted.dropLast() }
        return granted.upperBound - 1
    }
}
