import Cluster
import Engine
import Foundation
import TestSupport
import Testing
import Training
import Wire

/// Two workers that can meet share the step's units: one claims from the left, the other from
/// the right, and each computes what it was granted — played by the test over the in-process
/// transport so that who claims when is exactly as scripted. The real processes are in
/// ShardBalanceIntegrationTests.
@Suite struct MeetingWorkersTests {
    /// A scene with meeting workers a and b, step 0 computing in the background, and the two
    /// tasks they were sent.
    static func twoMeeting() throws -> (
        scene: InProcessScene, a: ScriptedWorker, b: ScriptedWorker, outcome: StepOutcome,
        left: (task: TaskMessage, envelope: WireEnvelope), right: (task: TaskMessage, envelope: WireEnvelope)
    ) {
        let scene = try InProcessScene()
        let workers = try scene.join(["a", "b"], meeting: true)
        let outcome = scene.computeStepInBackground()
        return (scene, workers[0], workers[1], outcome, try workers[0].nextTask(), try workers[1].nextTask())
    }

    /// A range of units as the whole task the scripted worker answers for.
    static func task(_ like: TaskMessage, _ units: Range<Int>) -> TaskMessage {
        var task = like
        (task.firstUnit, task.unitCount, task.end) = (UInt32(units.lowerBound), UInt32(units.count), .whole)
        return task
    }

    /// a is fast and takes four of the six units, b two; the step's gradient is the unit tree's
    /// sum of the blocks of [0, 4) and [4, 6), its statistics those of the six units in order.
    @Test func theFasterWorkerTakesMoreAndTheSumIsTheTrees() throws {
        let (scene, a, b, outcome, (left, leftEnvelope), (right, rightEnvelope)) = try Self.twoMeeting()
        defer { scene.executor.shutdown() }
        let unitLoss: [Double] = [1, 0, 1e100, 0, -1e100, 0]
        #expect(left.end == .left && right.end == .right)
        #expect(left.firstUnit == 0 && left.unitCount == 6 && right.firstUnit == 0 && right.unitCount == 6)
        #expect(scene.lines.contains { $0.contains("a and b meet within each step") }, "\(scene.lines)")
        #expect(try a.claim(leftEnvelope) == 0..<1)
        #expect(!a.lastClaimAhead, "no worker is measured yet")
        #expect(try b.claim(rightEnvelope) == 5..<6)
        #expect(try a.claim(leftEnvelope) == 1..<2)
        #expect(try a.claim(leftEnvelope) == 2..<3)
        #expect(try a.claim(leftEnvelope) == 3..<4)
        #expect(try b.claim(rightEnvelope) == 4..<5)
        #expect(try a.claim(leftEnvelope) == nil)
        #expect(try b.claim(rightEnvelope) == nil)
        // A result for units it was not granted would be refused; these are the granted ones.
        try b.answer(Self.task(right, 4..<6), rightEnvelope, unitLoss: unitLoss)
        try a.answer(Self.task(left, 0..<4), leftEnvelope, unitLoss: unitLoss)
        let statistics = try outcome.wait()

        #expect(statistics.lossSum == 0, "unit order, not arrival order")
        #expect(statistics.batchStatistics == scene.expectedNormalization(units: 6))
        #expect(scene.gradient.toArray() == (try scene.expectedGradient([Self.task(left, 0..<4), Self.task(right, 4..<6)])))
        #expect(scene.executor.ignoredResults == 0)
    }

    /// Once each worker's pace is measured (three steps: a 1 s a unit, b 10 s), a is told to
    /// claim its next unit ahead while the open units would last b more than two of a's units,
    /// and b — slow beside a — never is.
    @Test func farFromTheMeetingPointAWorkerIsToldToClaimAhead() throws {
        let scene = try InProcessScene()
        defer { scene.executor.shutdown() }
        let workers = try scene.join(["a", "b"], meeting: true)
        let (a, b) = (workers[0], workers[1])
        for step in 0..<3 {
            let outcome = scene.computeStepInBackground(step: step)
            let (left, leftEnvelope) = try a.nextTask()
            let (right, rightEnvelope) = try b.nextTask()
            for _ in 0..<5 { _ = try a.claim(leftEnvelope) }
            _ = try b.claim(rightEnvelope)
            #expect(try a.claim(leftEnvelope) == nil && b.claim(rightEnvelope) == nil)
            try a.answer(Self.task(left, 0..<5), leftEnvelope, unitLoss: nil, computeSeconds: 5)
            try b.answer(Self.task(right, 5..<6), rightEnvelope, unitLoss: nil, computeSeconds: 10)
            _ = try outcome.wait()
        }
        let outcome = scene.computeStepInBackground(step: 3)
        let (left, leftEnvelope) = try a.nextTask()
        let (right, rightEnvelope) = try b.nextTask()
        var ahead = [Bool]()
        for _ in 0..<4 {
            _ = try a.claim(leftEnvelope)
            ahead.append(a.lastClaimAhead)
        }
        // Open after each grant: 5, 4, 3, 2 units, lasting b 5·10/11 = 4.5, 3.6, 2.7, 1.8 of a's units.
        #expect(ahead == [true, true, true, false])
        #expect(try b.claim(rightEnvelope) == 5..<6)
        #expect(!b.lastClaimAhead, "one open unit lasts a a tenth of b's")
        #expect(try a.claim(leftEnvelope) == 4..<5 && a.claim(leftEnvelope) == nil && b.claim(rightEnvelope) == nil)
        try a.answer(Self.task(left, 0..<5), leftEnvelope, unitLoss: nil, computeSeconds: 5)
        try b.answer(Self.task(right, 5..<6), rightEnvelope, unitLoss: nil, computeSeconds: 10)
        _ = try outcome.wait()
        #expect(scene.gradient.toArray() == (try scene.expectedGradient([Self.task(left, 0..<5), Self.task(right, 5..<6)])))
    }

    /// Workers whose frames cross a link (here a wrapper that says so) keep a range each: where
    /// two meet is rarely an aligned node of the unit tree, and the extra gradient block each
    /// would return costs link time.
    @Test func workersAcrossALinkDoNotMeet() throws {
        let scene = try InProcessScene(through: { HoldingServer($0) })
        defer { scene.executor.shutdown() }
        let workers = try scene.join(["a", "b"], meeting: true)
        let outcome = scene.computeStepInBackground()
        let tasks = try workers.map { try $0.nextTask() }
        #expect(tasks.map(\.task.end) == [.whole, .whole])
        #expect(tasks.map(\.task.unitCount) == [3, 3])
        for (worker, (task, envelope)) in zip(workers, tasks) { try worker.answer(task, envelope, unitLoss: nil) }
        _ = try outcome.wait()
        #expect(!scene.lines.contains { $0.contains("meet within each step") }, "\(scene.lines)")
    }

    /// A worker granted nothing (the other took every unit) answers with no units, and the
    /// step is the other's.
    @Test func aWorkerGrantedNothingAnswersWithNoUnits() throws {
        let (scene, a, b, outcome, (left, leftEnvelope), (right, rightEnvelope)) = try Self.twoMeeting()
        defer { scene.executor.shutdown() }
        for unit in 0..<6 { #expect(try a.claim(leftEnvelope) == unit..<(unit + 1)) }
        #expect(try b.claim(rightEnvelope) == nil)
        #expect(try a.claim(leftEnvelope) == nil)
        try b.answer(Self.task(right, 6..<6), rightEnvelope, unitLoss: nil)
        try a.answer(Self.task(left, 0..<6), leftEnvelope, unitLoss: nil)
        _ = try outcome.wait()
        #expect(scene.gradient.toArray() == (try scene.expectedGradient([Self.task(left, 0..<6)])))
    }

    /// a leaves (ERROR) after it was granted units 0 and 1: they go to b as a whole task, b
    /// goes on claiming down to unit 2, and the step is the tree's sum of [0, 2) and [2, 6).
    /// A result before the shared units ran out, or for units not granted, is refused.
    @Test func aLostWorkersGrantedUnitsAreComputedAgainAndItsPartnerTakesTheRest() throws {
        let (scene, a, b, outcome, (left, leftEnvelope), (right, rightEnvelope)) = try Self.twoMeeting()
        defer { scene.executor.shutdown() }
        #expect(try a.claim(leftEnvelope) == 0..<1)
        #expect(try a.claim(leftEnvelope) == 1..<2)
        #expect(try b.claim(rightEnvelope) == 5..<6)
        try a.send(.error(ErrorMessage(code: .internalError, message: "lost its GPU")))
        let (reissued, reissuedEnvelope) = try b.nextTask()
        #expect(reissued.end == .whole && reissued.firstUnit == 0 && reissued.unitCount == 2)
        #expect(reissuedEnvelope.shardID == leftEnvelope.shardID)
        // b goes on from the right, down to where a stopped.
        #expect(try b.claim(rightEnvelope) == 4..<5)
        #expect(try b.claim(rightEnvelope) == 3..<4)
        #expect(try b.claim(rightEnvelope) == 2..<3)
        #expect(try b.claim(rightEnvelope) == nil)
        try b.answer(reissued, reissuedEnvelope, unitLoss: nil)
        try b.answer(Self.task(right, 2..<6), rightEnvelope, unitLoss: nil)
        _ = try outcome.wait()
        #expect(scene.gradient.toArray() == (try scene.expectedGradient([Self.task(left, 0..<2), Self.task(right, 2..<6)])))
        #expect(scene.lines.contains { $0.contains("shard 0 re-issued to b") }, "\(scene.lines)")
    }

    /// Both meeting workers are lost mid-step: what each was granted, and the units neither
    /// was, are computed again as whole tasks by the worker left (however the coordinator saw
    /// the two losses: one at a time, or both at once), and the step is the tree's sum.
    @Test func whenBothMeetingWorkersAreLostTheUngrantedUnitsAreNotForgotten() throws {
        let scene = try InProcessScene()
        defer { scene.executor.shutdown() }
        let workers = try scene.join(["a", "b", "c"], meeting: true)
        let (a, b, c) = (workers[0], workers[1], workers[2])

        let outcome = scene.computeStepInBackground()
        let (left, leftEnvelope) = try a.nextTask()
        let (right, rightEnvelope) = try b.nextTask()
        let (alone, aloneEnvelope) = try c.nextTask()
        // Six units over three: a and b share [0, 4), c computes [4, 6) whole.
        #expect(left.end == .left && right.end == .right && alone.end == .whole)
        #expect(left.firstUnit == 0 && left.unitCount == 4 && alone.firstUnit == 4 && alone.unitCount == 2)
        #expect(try a.claim(leftEnvelope) == 0..<1)
        #expect(try b.claim(rightEnvelope) == 3..<4)
        try a.send(.error(ErrorMessage(code: .internalError, message: "gone")))
        try b.send(.error(ErrorMessage(code: .internalError, message: "gone too")))
        try c.answer(alone, aloneEnvelope, unitLoss: nil)
        let redone = [try c.nextTask(), try c.nextTask()].sorted { $0.task.firstUnit < $1.task.firstUnit }
        let ranges = redone.map { Int($0.task.firstUnit)..<Int($0.task.firstUnit + $0.task.unitCount) }
        #expect(redone.allSatisfy { $0.task.end == .whole })
        #expect(ranges[0].lowerBound == 0 && ranges[0].upperBound == ranges[1].lowerBound && ranges[1].upperBound == 4,
                "together the two tasks cover [0, 4) once: \(ranges)")
        #expect(ranges[0].contains(0) && ranges[1].contains(3), "each holds the unit its lost worker was granted")
        for (task, envelope) in redone { try c.answer(task, envelope, unitLoss: nil) }
        _ = try outcome.wait()
        #expect(scene.gradient.toArray() == (try scene.expectedGradient(redone.map(\.task) + [alone])))
    }
}
