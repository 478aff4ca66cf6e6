// How long a run has left, for its progress lines: the steps still to go at the pace of the
// steps this process has run so far. The pace is wall time over steps, so evaluations and
// checkpoints between steps count in it, as they will in the time left.

public struct RemainingTime: Sendable {
    /// Where and when this process's timed stretch began.
    public let firstStep: Int
    public let started: Double

    public init(firstStep: Int, started: Double) {
        self.firstStep = firstStep
        self.started = started
    }

    /// Seconds left to reach `end` from `step` at `now` (nil before a step has run or at the end).
    public func seconds(step: Int, end: Int, now: Double) -> Double? {
        guard step > firstStep, step < end, now > started else { return nil }
        return (now - started) / Double(step - firstStep) * Double(end - step)
    }

    /// `seconds` as "45s", "12m05s", "3h07m" or "2d04h".
    public static func text(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        switch whole {
        case ..<60: return "\(max(whole, 0))s"
        case ..<3600: return "\(whole / 60)m" + twoDigits(whole % 60) + "s"
        case ..<86400: return "\(whole / 3600)h" + twoDigits(whole % 3600 / 60) + "m"
        default: return "\(whole / 86400)d" + twoDigits(whole % 86400 / 3600) + "h"
        }
    }

    private static func twoDigits(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
}
