import Synchronization

// Two lane groups share one contiguous range of a step's units: one takes units from the left
// end, the other from the right, until they meet. Each group's units stay one contiguous range,
// so each sums its part in the unit tree's aligned blocks, and where they meet never changes a
// bit (UnitTree) — it only lets the faster group take more, so neither waits for the other at
// the end of the step (a vCPU that another process or VM slows for a while no longer makes the
// other lane idle).

/// Where a lane group takes its units from, one at a time, until it says there are none.
public protocol UnitSource {
    /// The next unit from `end`, or nil once there is none left for this taker.
    func take(from end: MeetingCursor.End) throws -> Int?
}

public final class MeetingCursor: Sendable, UnitSource {
    public enum End: Sendable { case left, right }

    /// The units not taken yet: [left, right).
    private let open: Mutex<Range<Int>>

    public init(_ units: Range<Int>) { open = Mutex(units) }

    /// The next unit from `end`, or nil once the two ends have met.
    public func take(from end: End) -> Int? {
        take(from: end, upTo: 1)?.lowerBound
    }

    /// The next (at most) `count` units from `end`, or nil once the two ends have met.
    public func take(from end: End, upTo count: Int) -> Range<Int>? {
        open.withLock { open in
            guard !open.isEmpty else { return nil }
            let n = min(max(count, 1), open.count)
            switch end {
            case .left:
                defer { open = (open.lowerBound + n)..<open.upperBound }
                return open.lowerBound..<(open.lowerBound + n)
            case .right:
                defer { open = open.lowerBound..<(open.upperBound - n) }
                return (open.upperBound - n)..<open.upperBound
            }
        }
    }
}
