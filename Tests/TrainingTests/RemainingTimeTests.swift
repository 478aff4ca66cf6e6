import Foundation
import Testing
import TestSupport
@testable import Training

@Suite struct RemainingTimeTests {
    @Test func theStepsLeftAtThePaceSoFar() throws {
        let pace = RemainingTime(firstStep: 10, started: 100)
        // 4 steps in 20 s: 5 s a step, 6 steps left.
        #expect(pace.seconds(step: 14, end: 20, now: 120) == 30)
        #expect(pace.seconds(step: 10, end: 20, now: 120) == nil, "no step has run in this process yet")
        #expect(pace.seconds(step: 20, end: 20, now: 150) == nil, "nothing is left at the end")
    }

    @Test func shortAndLongSpansReadAsTwoUnits() {
        #expect(RemainingTime.text(0.4) == "0s")
        #expect(RemainingTime.text(45) == "45s")
        #expect(RemainingTime.text(725) == "12m05s")
        #expect(RemainingTime.text(3599.6) == "1h00m")
        #expect(RemainingTime.text(3 * 3600 + 7 * 60 + 20) == "3h07m")
        #expect(RemainingTime.text(2 * 86400 + 4 * 3600 + 59) == "2d04h")
    }

    @Test func progressLinesSayHowLongTheRunHasLeftExceptTheLast() throws {
        var config = Fixtures.syntheticConfig(epochs: 2)
        config.progressSeconds = 0
        let trainer = try Fixtures.trainer(config, runDirectory: Fixtures.temporaryDirectory())
        var lines = [String]()
        trainer.output = { lines.append($0) }
        try #require(try trainer.train() != nil)
        let progress = lines.filter { $0.hasPrefix("step ") }
        try #require(progress.count >= 3, "\(lines)")
        for line in progress.dropLast() {
            let left = try #require(line.split(separator: "|").last?.trimmingCharacters(in: .whitespaces), "\(line)")
            #expect(left.hasSuffix(" left") && left.first?.isNumber == true, "\(line)")
        }
        #expect(progress.last?.contains(" left") == false, "the last step has nothing left: \(progress.last ?? "")")
    }
}
