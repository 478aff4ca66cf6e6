import Bench
import Foundation
import Testing
import TestSupport

// The distributed row of `ssgd bench` (issue 8): its config, the reading of step times from a
// run's progress lines, and one real tiny run of `train` and `launch` through it. No timing
// thresholds: only that both step times are read and positive.
@Suite struct DistributedComparisonTests {
    @Test func configIsTheModelOnRandomDataInUnitsOf128WithALineEveryStep() throws {
        let config = DistributedComparison.config(try BenchmarkModel.named("vgg16"), batch: 4096, steps: 4)
        #expect(config.batchSize == 4096 && config.ghostBatch == 128)
        #expect(config.unitsPerStep == 32)
        #expect(config.syntheticShape == [3, 32, 32] && config.syntheticTrainSamples == 4 * 4096)
        #expect(config.maxSteps == 4 && config.progressSeconds < 0.01)
        try config.validate()
    }

    @Test func stepSecondsAreReadFromProgressLinesWithoutTheWarmUp() {
        let output = """
            training mlp …
            step 1/4 epoch 0.25 loss 2.3 acc 10.00% lr 0.1 100 img/s workers 2 | step 9.000s = compute 8.9s + transfer 0.1s + reduce/update 0.0s
            step 2/4 epoch 0.50 loss 2.3 acc 10.00% lr 0.1 100 img/s workers 2 | step 0.250s = compute 0.2s + transfer 0.05s + reduce/update 0.0s | 1.00 MB moved per step
            [worker 0] step 3 is not a progress line
            step 3/4 epoch 0.75 loss 2.3 acc 10.00% lr 0.1 100 img/s workers 2 | step 0.350s = compute 0.3s + transfer 0.05s + reduce/update 0.0s
            """
        #expect(DistributedComparison.stepSeconds(fromOutput: output) == [0.25, 0.35])
    }

    @Test func roundsAlternateTheTwoSidesAndEachRatioIsTheMedianOfTheRounds() throws {
        var calls = [String]()
        var ssgdTimes: [(Double, Double)] = [(1.0, 1.2), (1.0, 0.9), (2.0, 2.0)]  // ratios 1.2, 0.9, 1.0
        var torchTimes: [(Double, Double)] = [(1.0, 0.8), (1.0, 1.1), (1.0, 0.95)]  // ratios 0.8, 1.1, 0.95
        var lines = [String]()
        let rows = try DistributedComparison.run(
            models: ["mlp"], batch: 4096, processes: 2, rounds: 3,
            ssgd: { model, reversed in
                calls.append("ssgd \(model)" + (reversed ? " reversed" : ""))
                return ssgdTimes.removeFirst()
            },
            torch: { model, reversed in
                calls.append("torch \(model)" + (reversed ? " reversed" : ""))
                return torchTimes.removeFirst()
            }) { lines.append($0) }
        // Every second round in reverse: PyTorch's pair first, each pair's second side first.
        #expect(calls == ["ssgd mlp", "torch mlp", "torch mlp reversed", "ssgd mlp reversed", "ssgd mlp", "torch mlp"])
        let row = try #require(rows.first)
        #expect(row.rounds.count == 3)
        #expect(abs(row.ssgdRatio - 1.0) < 1e-12, "the median of 1.2, 0.9, 1.0 — not launch/train of the medians (1.2/1.0)")
        #expect(row.ssgdRatioRange == 0.9...1.2)
        #expect(abs((row.torchRatio ?? 0) - 0.95) < 1e-12 && row.torchRatioRange == 0.8...1.1)
        #expect(row.trainSeconds == 1.0 && row.launchSeconds == 1.2)
        try #require(lines.count == 6)
        #expect(lines[0].contains("(round 1/3)"))
        #expect(lines[2].contains("(DDP ran first)") && lines[3].contains("(launch ran first)") && !lines[0].contains("first"), "\(lines)")
        let table = DistributedComparison.text(rows)
        #expect(table.contains("3 rounds per row") && table.contains("1.00 (0.90–1.20)") && table.contains("0.95 (0.80–1.10)"), "\(table)")
        // Without PyTorch: its columns are dashes.
        let alone = try DistributedComparison.run(
            models: ["vgg16"], batch: 256, processes: 2, rounds: 1, ssgd: { _, _ in (2, 1) }, torch: nil)
        #expect(alone.first?.torchRatio == nil && DistributedComparison.text(alone).contains("| vgg16 | 256 | 2.000 | 1.000 | 0.50 | — | — | — | — |"))
        // ssgd's processes against DDP's ranks: the median of the rounds' launch / DDP (1.2/0.8, 0.9/1.1, 2.0/0.95).
        #expect(abs((row.launchOverDDP ?? 0) - 1.5) < 1e-12 && table.contains("| 1.50 |"), "\(table)")
    }

    @Test func aTinyRealRunMeasuresTrainAndLaunch() throws {
        let (train, launch) = try DistributedComparison.measureSSGD(
            executable: SSGDProcess.binary, model: try BenchmarkModel.named("mlp"), batch: 256, processes: 2, iterations: 2,
            reversed: true)
        #expect(train > 0 && launch > 0)
        let row = DistributedRow(model: "mlp", batch: 256, processes: 2, trainSeconds: train, launchSeconds: launch)
        let table = DistributedComparison.text([row])
        #expect(table.contains("| mlp | 256 |"))
        #expect(table.contains(String(format: "%.2f", launch / train)))
    }
}
