import Foundation
import Training

// The distributed row of `ssgd bench --compare` (issue 8): the step time of one large batch in
// one process with N lanes (`ssgd train --threads N`) against N worker processes of one lane each
// (`ssgd launch --workers N --threads 1`), and PyTorch's counterpart in the same run — one
// N-thread process against DistributedDataParallel with N single-thread ranks
// (tools/pytorch_ddp_bench.py). A ratio launch / train ≤ 1 means the processes cost nothing;
// DDP's ratio is the yardstick. Both sides run the reference model on random data, ghost batches
// (micro-batches) of 128, one warm-up step and the median of the rest.

/// One round of a distributed row: each side's median step over its timed steps.
public struct DistributedRound: Codable, Sendable, Equatable {
    public var trainSeconds: Double
    public var launchSeconds: Double
    /// PyTorch's: one N-thread process, and DDP with N ranks (nil without --python).
    public var torchSingleSeconds: Double?
    public var torchDDPSeconds: Double?

    public init(trainSeconds: Double, launchSeconds: Double, torchSingleSeconds: Double? = nil, torchDDPSeconds: Double? = nil) {
        self.trainSeconds = trainSeconds
        self.launchSeconds = launchSeconds
        self.torchSingleSeconds = torchSingleSeconds
        self.torchDDPSeconds = torchDDPSeconds
    }

    public var ssgdRatio: Double { launchSeconds / trainSeconds }
    public var torchRatio: Double? { torchDDPSeconds.flatMap { ddp in torchSingleSeconds.map { ddp / $0 } } }
    /// ssgd's N processes against PyTorch's N ranks, step for step (< 1: ssgd faster).
    public var launchOverDDP: Double? { torchDDPSeconds.map { launchSeconds / $0 } }
}

/// A model's distributed row over one or more rounds (ssgd's pair, then PyTorch's, each round):
/// the step times are medians over the rounds, and each ratio is the median of the rounds'
/// ratios, so a load change between rounds moves both sides of a ratio alike.
public struct DistributedRow: Codable, Sendable {
    public var model: String
    public var batch: Int
    public var processes: Int
    public var rounds: [DistributedRound]

    public init(model: String, batch: Int, processes: Int, rounds: [DistributedRound]) {
        precondition(!rounds.isEmpty, "a distributed row needs at least one round")
        self.model = model
        self.batch = batch
        self.processes = processes
        self.rounds = rounds
    }

    public init(model: String, batch: Int, processes: Int, trainSeconds: Double, launchSeconds: Double) {
        self.init(model: model, batch: batch, processes: processes,
                  rounds: [DistributedRound(trainSeconds: trainSeconds, launchSeconds: launchSeconds)])
    }

    public var trainSeconds: Double { Benchmark.median(rounds.map(\.trainSeconds)) }
    public var launchSeconds: Double { Benchmark.median(rounds.map(\.launchSeconds)) }
    public var torchSingleSeconds: Double? { Self.median(rounds.map(\.torchSingleSeconds)) }
    public var torchDDPSeconds: Double? { Self.median(rounds.map(\.torchDDPSeconds)) }
    public var ssgdRatio: Double { Benchmark.median(rounds.map(\.ssgdRatio)) }
    public var torchRatio: Double? { Self.median(rounds.map(\.torchRatio)) }
    public var launchOverDDP: Double? { Self.median(rounds.map(\.launchOverDDP)) }
    public var ssgdRatioRange: ClosedRange<Double> { Self.range(rounds.map(\.ssgdRatio)) }
    public var torchRatioRange: ClosedRange<Double>? {
        let ratios = rounds.compactMap(\.torchRatio)
        return ratios.isEmpty ? nil : Self.range(ratios)
    }

    private static func median(_ values: [Double?]) -> Double? {
        let present = values.compactMap { $0 }
        return present.isEmpty ? nil : Benchmark.median(present)
    }

    private static func range(_ values: [Double]) -> ClosedRange<Double> { values.min()!...values.max()! }
}

public enum DistributedComparison {
    public static let unitSize = 128

    /// A synthetic-data config of `model` whose steps are `batch` samples in units of 128, with
    /// `steps` steps in its epoch and a progress line after every step.
    public static func config(_ model: BenchmarkModel, batch: Int, steps: Int) -> TrainingConfig {
        var config = model.config
        config.name = "bench-distributed-\(model.name)"
        config.dataset = .synthetic
        config.syntheticShape = model.inputShape.dimensions
        config.syntheticClasses = model.classes
        config.syntheticTrainSamples = batch * steps
        config.syntheticTestSamples = unitSize
        config.batchSize = batch
        config.ghostBatch = min(unitSize, batch)
        config.epochs = 1
        config.maxSteps = steps
        config.checkpointEverySteps = 0
        config.progressSeconds = 0.001
        return config
    }

    /// Seconds per step from a run's progress lines ("step K/N … | step 1.234s = …"), the first
    /// (warm-up) step left out.
    public static func stepSeconds(fromOutput output: String) -> [Double] {
        var seconds = [Double]()
        for line in output.split(separator: "\n") where line.hasPrefix("step ") {
            guard let bar = line.range(of: "| step "), let unit = line[bar.upperBound...].firstIndex(of: "s"),
                  let value = Double(line[bar.upperBound..<unit]) else { continue }
            seconds.append(value)
        }
        return Array(seconds.dropFirst())
    }

    /// ssgd's two step times for `model`: `train --threads N` and `launch --workers N --threads 1`,
    /// in that order, or launch first when `reversed`.
    public static func measureSSGD(
        executable: String, model: BenchmarkModel, batch: Int, processes: Int, iterations: Int, reversed: Bool = false
    ) throws -> (train: Double, launch: Double) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ssgd-bench-distributed-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let configPath = folder + "/config.yaml"
        try config(model, batch: batch, steps: iterations + 1).yaml().write(toFile: configPath, atomically: true, encoding: .utf8)
        func medianStepSeconds(_ arguments: [String], runDirectory: String) throws -> Double {
            let output = try MeasuringProcess.run(
                executable: executable, arguments: arguments + ["--config", configPath, "--run-dir", folder + "/" + runDirectory])
            let seconds = stepSeconds(fromOutput: output)
            guard !seconds.isEmpty else {
                throw BenchProcessError(command: "\(executable) \(arguments.joined(separator: " "))", status: 0,
                                        output: output + "\n(no step lines after the first step)")
            }
            return Benchmark.median(seconds)
        }
        let train = { try medianStepSeconds(["train", "--threads", String(processes)], runDirectory: "train") }
        let launch = { try medianStepSeconds(["launch", "--workers", String(processes), "--threads", "1"], runDirectory: "launch") }
        if reversed {
            let launchSeconds = try launch()
            return (try train(), launchSeconds)
        }
        let trainSeconds = try train()
        return (trainSeconds, try launch())
    }

    /// PyTorch's two step times (tools/pytorch_ddp_bench.py): one process, then DDP, or DDP
    /// first when `reversed`.
    public static func measureTorch(
        python: String, script: String, model: String, batch: Int, processes: Int, iterations: Int, reversed: Bool = false
    ) throws -> (single: Double, ddp: Double) {
        struct Output: Decodable {
            struct Result: Decodable {
                var single_step_s: Double
                var ddp_step_s: Double
            }
            var results: [Result]
        }
        let data = try MeasuringProcess.runForJSON(executable: python, arguments: [
            script, "--models", model, "--batch", String(batch), "--micro", String(unitSize),
            "--processes", String(processes), "--iterations", String(iterations),
        ] + (reversed ? ["--ddp-first"] : []))
        guard let result = try JSONDecoder().decode(Output.self, from: data).results.first else {
            throw BenchProcessError(command: "\(python) \(script)", status: 0, output: "its JSON has no result")
        }
        return (result.single_step_s, result.ddp_step_s)
    }

    /// Each model's row over `rounds` rounds: per round ssgd's pair (`ssgd`) and PyTorch's
    /// (`torch`, when given), so the two sides of each ratio run back to back. Every second
    /// round runs the four in the reverse order (`reversed` true: PyTorch's pair first, each
    /// pair's second side first), so a steady drift in the host's speed favours neither side of
    /// a ratio. `progress` gets a line per measurement.
    public static func run(
        models: [String], batch: Int, processes: Int, rounds: Int,
        ssgd: (_ model: String, _ reversed: Bool) throws -> (train: Double, launch: Double),
        torch: ((_ model: String, _ reversed: Bool) throws -> (single: Double, ddp: Double))?,
        progress: (String) -> Void = { _ in }
    ) throws -> [DistributedRow] {
        try models.map { model in
            var measured = [DistributedRound]()
            for round in 0..<max(rounds, 1) {
                let tag = rounds > 1 ? " (round \(round + 1)/\(rounds))" : ""
                let reversed = round % 2 == 1
                var one = DistributedRound(trainSeconds: 0, launchSeconds: 0)
                func measureSSGD() throws {
                    (one.trainSeconds, one.launchSeconds) = try ssgd(model, reversed)
                    progress(String(format: "ssgd    %@%@: train --threads %d %.3f s/step, launch --workers %d %.3f s/step, launch/train %.2f%@",
                                    model, tag, processes, one.trainSeconds, processes, one.launchSeconds, one.ssgdRatio,
                                    reversed ? " (launch ran first)" : ""))
                }
                func measureTorch(_ torch: (String, Bool) throws -> (single: Double, ddp: Double)) throws {
                    let (single, ddp) = try torch(model, reversed)
                    (one.torchSingleSeconds, one.torchDDPSeconds) = (single, ddp)
                    progress(String(format: "pytorch %@%@: one process %.3f s/step, DDP %.3f s/step, DDP/single %.2f%@",
                                    model, tag, single, ddp, ddp / single, reversed ? " (DDP ran first)" : ""))
                }
                if reversed, let torch { try measureTorch(torch) }
                try measureSSGD()
                if !reversed, let torch { try measureTorch(torch) }
                measured.append(one)
            }
            return DistributedRow(model: model, batch: batch, processes: processes, rounds: measured)
        }
    }

    public static func text(_ rows: [DistributedRow]) -> String {
        func seconds(_ value: Double?) -> String { value.map { String(format: "%.3f", $0) } ?? "—" }
        func ratio(_ value: Double?, _ range: ClosedRange<Double>?, rounds: Int) -> String {
            guard let value else { return "—" }
            guard rounds > 1, let range else { return String(format: "%.2f", value) }
            return String(format: "%.2f (%.2f–%.2f)", value, range.lowerBound, range.upperBound)
        }
        var lines = [String]()
        if let most = rows.map(\.rounds.count).max(), most > 1 {
            lines.append("\(most) rounds per row (ssgd's pair and PyTorch's, every second round in reverse order): step times are medians; "
                + "each ratio is the median of the rounds' ratios, (range) their smallest and largest.")
            lines.append("")
        }
        lines += ["| model | B | ssgd train, N lanes s/step | ssgd launch, N × 1 lane s/step | launch / train | PyTorch 1 process s/step | PyTorch DDP s/step | DDP / single | ssgd launch / PyTorch DDP |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in rows {
            let count = row.rounds.count
            lines.append("| \(row.model) | \(row.batch) | \(seconds(row.trainSeconds)) | \(seconds(row.launchSeconds)) | "
                + "\(ratio(row.ssgdRatio, row.ssgdRatioRange, rounds: count)) | "
                + "\(seconds(row.torchSingleSeconds)) | \(seconds(row.torchDDPSeconds)) | \(ratio(row.torchRatio, row.torchRatioRange, rounds: count)) | "
                + "\(ratio(row.launchOverDDP, nil, rounds: 1)) |")
        }
        return lines.joined(separator: "\n")
    }
}
