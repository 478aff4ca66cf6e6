import Data
import Engine
import Foundation
import Training

// `ssgd bench`: the machine's sgemm rate and each model's training throughput, measured in one
// run so the ratios compare like with like (DESIGN §8, MODELS.md conventions).
//
// - sgemm GFLOPS = 2·M·N·K / seconds, median of timed calls after one warm-up call.
// - A training step = zero gradients, forward, softmax cross-entropy, backward, and MODELS.md's
//   throughput-benchmark optimiser: heavy-ball momentum v ← 0.9 v + g, θ ← θ − 0.01 v
//   (PyTorch SGD, momentum 0.9, no Nesterov, no weight decay). BN uses one ghost batch of the
//   whole micro-batch, as PyTorch's BN does. Random Gaussian inputs, random labels.
// - Each step's process CPU time is recorded too: on a shared machine the wall time includes
//   waiting for a core, the CPU time (with one BLAS thread) does not.
// - images/s = batch / median step time; achieved GFLOPS = 3 × forward FLOPs × images/s
//   (MODELS.md: training ≈ 3 × forward); fraction = achieved / sgemm peak at the same thread
//   count, the peak being the fastest of the measured sgemm shapes.
// - With rounds R > 1 each model row is measured R times, the sgemm peak right before each
//   time, so both see the same load: the row's figures are medians over the rounds and its
//   fraction is the median of the rounds' fractions, with their range (this VM's rates move by
//   ±25 % over minutes, so a peak measured once at the start is not the row's peak).
// - Spectral overhead: one SpectralNormRegularizer.apply (one power iteration per weight
//   matrix, then the rank-1 gradient term) against one training step at the largest batch.

/// A network the benchmark can build, with the input it takes.
public struct BenchmarkModel {
    public var name: String
    public var inputShape: Shape
    public var classes: Int
    /// Builds the network for a micro-batch (BN's ghost batch is the micro-batch).
    public var make: (_ batch: Int) throws -> Network
    /// The training config of this model (model keys only), for steps through the lanes.
    public var config: TrainingConfig

    public init(
        name: String, inputShape: Shape, classes: Int, config: TrainingConfig = TrainingConfig(),
        make: @escaping (_ batch: Int) throws -> Network
    ) {
        self.name = name
        self.inputShape = inputShape
        self.classes = classes
        self.config = config
        self.make = make
    }

    public static let standardNames = ["mlp", "vgg16", "nin", "densenet40", "densenet22"]

    /// The reference networks of MODELS.md by name.
    public static func named(_ name: String) throws -> BenchmarkModel {
        var config = TrainingConfig()
        let shape: Shape
        let classes: Int
        switch name {
        case "mlp": (config.model, shape, classes) = (.mlp, Shape(1, 28, 28), 10)
        case "vgg16": (config.model, shape, classes) = (.vgg16, Shape(3, 32, 32), 10)
        case "nin": (config.model, shape, classes) = (.nin, Shape(3, 32, 32), 100)
        case "densenet40": (config.model, config.depth, shape, classes) = (.densenet, 40, Shape(3, 32, 32), 100)
        case "densenet22": (config.model, config.depth, shape, classes) = (.densenet, 22, Shape(3, 96, 96), 10)
        default:
            throw ConfigError(key: nil, "unknown model '\(name)'; choose from \(standardNames.joined(separator: ", "))")
        }
        let base = config
        return BenchmarkModel(name: name, inputShape: shape, classes: classes, config: config) { batch in
            var config = base
            config.ghostBatch = batch
            return try ModelFactory.make(config, inputShape: shape, classes: classes)
        }
    }
}

/// An sgemm shape C (M×N) = A (M×K) · B (K×N), row-major, no transposes.
public struct GemmShape: Codable, Sendable, Equatable, CustomStringConvertible {
    public var m: Int, n: Int, k: Int
    public var label: String

    public init(m: Int, n: Int, k: Int, label: String) {
        self.m = m
        self.n = n
        self.k = k
        self.label = label
    }

    public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
    public var description: String { "\(label) (M=\(m), N=\(n), K=\(k))" }

    /// 2048³, and VGG's second conv at micro-batch 64 as one im2col GEMM
    /// (O = 64, K = 64·3·3, N·P = 64·32·32).
    public static let standard = [
        GemmShape(m: 2048, n: 2048, k: 2048, label: "square 2048³"),
        GemmShape(m: 64, n: 65536, k: 576, label: "im2col vgg conv2 B=64"),
    ]
    public static let quick = [
        GemmShape(m: 256, n: 256, k: 256, label: "square 256³"),
        GemmShape(m: 16, n: 4096, k: 144, label: "im2col-like small"),
    ]
}

public struct BenchmarkOptions {
    public var models: [BenchmarkModel]
    public var batches: [Int] = [64, 128]
    public var threads: [Int] = [1, 2]
    /// Timed steps per (model, batch, threads); fewer when `timeBudget` runs out, never < `minimumIterations`.
    public var iterations = 5
    public var minimumIterations = 3
    public var warmupIterations = 1
    /// Seconds of timed steps per configuration after which timing stops early.
    public var timeBudget: Double = 12
    public var gemmShapes = GemmShape.standard
    public var gemmIterations = 5
    public var spectral = true
    public var spectralIterations = 5
    /// Samples per chunk of the micro-batch (the config key chunk_size; 0: automatic).
    public var chunkSize = 0
    /// The config key conv_algorithm of every model row.
    public var convAlgorithm = ConvolutionAlgorithm.winograd
    /// Measurements per model row, each right after its own sgemm peak (see the header).
    public var rounds = 1

    public init(models: [BenchmarkModel]) { self.models = models }

    /// Tiny iteration counts and sgemm shapes: a smoke test, not a measurement.
    public mutating func makeQuick() {
        iterations = 2
        minimumIterations = 1
        warmupIterations = 1
        timeBudget = 2
        gemmShapes = GemmShape.quick
        gemmIterations = 2
        spectralIterations = 2
    }
}

public struct GemmResult: Codable, Sendable {
    public var shape: GemmShape
    public var threads: Int
    public var seconds: Double
    public var gflops: Double
}

public struct ModelResult: Codable, Sendable {
    public var model: String
    public var batch: Int
    public var threads: Int
    public var iterations: Int
    public var forwardFLOPsPerImage: Int
    /// Median seconds per training step.
    public var stepSeconds: Double
    /// Median process CPU seconds per training step (all threads of the process).
    public var cpuSeconds: Double
    public var imagesPerSecond: Double
    /// 3 × forward FLOPs × images/s, in GFLOPS.
    public var achievedGFLOPS: Double
    /// achievedGFLOPS / sgemm peak at the same thread count (over rounds: the median of the
    /// rounds' fractions).
    public var fractionOfPeak: Double
    /// With several rounds: each round's fraction, in order (nil for one round).
    public var roundFractions: [Double]?
    /// Forward FLOPs per image the GEMMs perform (fewer than forwardFLOPsPerImage with Winograd
    /// convolutions; nil in reports written before they existed).
    public var executedFLOPsPerImage: Int?

    /// fractionOfPeak counted in the FLOPs the GEMMs perform.
    public var executedFractionOfPeak: Double {
        fractionOfPeak * Double(executedFLOPsPerImage ?? forwardFLOPsPerImage) / Double(max(forwardFLOPsPerImage, 1))
    }

    /// The smallest and largest of the rounds' fractions (nil for one round).
    public var fractionRange: [Double]? {
        roundFractions.flatMap { $0.isEmpty ? nil : [$0.min()!, $0.max()!] }
    }
}

public struct SpectralResult: Codable, Sendable {
    public var model: String
    public var threads: Int
    public var batch: Int
    public var matrices: Int
    public var regularizerSeconds: Double
    public var stepSeconds: Double
    /// regularizerSeconds / stepSeconds.
    public var fraction: Double
}

public struct BenchmarkReport: Codable, Sendable {
    public var coreName: String
    /// How the kernel was chosen (BLASThreads.coreChoice; nil in reports written before it).
    public var coreChoice: String?
    public var optimizer: String
    /// How the convolutions compute (nil in reports written before Winograd).
    public var convolutions: String?
    public var gemm: [GemmResult]
    /// Fastest sgemm GFLOPS per thread count, as [threads: GFLOPS] pairs.
    public var peaks: [PeakEntry]
    public var models: [ModelResult]
    public var spectral: [SpectralResult]
    /// Peak resident set size of the benchmarking process at the end of the run, in bytes.
    public var peakResidentBytes: Int = 0

    public struct PeakEntry: Codable, Sendable {
        public var threads: Int
        public var gflops: Double
    }

    public func peak(threads: Int) -> Double? { peaks.first { $0.threads == threads }?.gflops }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}

public enum Benchmark {
    public static let optimizerDescription = "SGD momentum 0.9, lr 0.01, no Nesterov (v ← 0.9 v + g; θ ← θ − lr·v)"

    public static func convolutionsDescription(_ algorithm: ConvolutionAlgorithm) -> String {
        switch algorithm {
        case .winograd:
            return "Winograd F(2×2, 3×3) for 3×3 stride-1 layers with ≥ \(Conv2d.winogradChannels) inputs and > "
                + "\(Conv2d.thinOutputs) outputs, else im2col or row shifts (GFLOPS count a convolution's standard "
                + "multiply-adds, 2.25 times what Winograd computes, so a row can pass the sgemm peak)"
        case .im2col:
            return "im2col or row shifts (conv_algorithm im2col)"
        }
    }

    /// Runs everything in `options`, calling `progress` with a line per measurement.
    public static func run(_ options: BenchmarkOptions, progress: (String) -> Void = { _ in }) throws -> BenchmarkReport {
        let originalThreads = BLASThreads.current
        defer { BLASThreads.set(originalThreads) }
        var report = BenchmarkReport(
            coreName: BLASThreads.coreName, coreChoice: BLASThreads.coreChoice, optimizer: optimizerDescription,
            convolutions: convolutionsDescription(options.convAlgorithm), gemm: [], peaks: [], models: [], spectral: [])
        progress("OpenBLAS core: \(coreLabel(report.coreName, report.coreChoice))")
        /// The fastest sgemm shape at `threads` threads (0 without shapes); `record` keeps its rows.
        func measurePeak(threads: Int, record: Bool) -> Double {
            guard !options.gemmShapes.isEmpty else { return 0 }
            BLASThreads.set(threads)
            var best = 0.0
            for shape in options.gemmShapes {
                let seconds = timeGemm(shape, iterations: options.gemmIterations)
                let result = GemmResult(shape: shape, threads: threads, seconds: seconds, gflops: shape.flops / seconds / 1e9)
                best = max(best, result.gflops)
                if record {
                    report.gemm.append(result)
                    progress("sgemm \(shape), \(threads) thread(s): \(format(result.gflops, 1)) GFLOPS")
                }
            }
            return best
        }
        for threads in options.threads where !options.gemmShapes.isEmpty {
            report.peaks.append(.init(threads: threads, gflops: measurePeak(threads: threads, record: true)))
        }
        let rounds = max(options.rounds, 1)
        for model in options.models {
            for batch in options.batches {
                let network = try model.make(batch)
                let flops = ModelInfo(network).forwardFLOPs
                for threads in options.threads {
                    // `threads` lanes, each with OpenBLAS at one thread, as `train --threads` runs.
                    BLASThreads.set(1)
                    let bench = try TrainingStepBench(
                        model: model, batch: batch, lanes: threads, chunkSize: options.chunkSize,
                        convAlgorithm: options.convAlgorithm)
                    let startPeak = report.peak(threads: threads) ?? 0
                    var result = try measureRow(
                        bench, model: model.name, forwardFLOPs: flops, threads: threads, options: options, progress: progress,
                        peak: { rounds == 1 ? startPeak : measurePeak(threads: threads, record: false) })
                    // The share the stepped network's GEMMs perform (its conv algorithm decides).
                    let stepped = ModelInfo(bench.network)
                    result.executedFLOPsPerImage = flops * stepped.executedMACs / stepped.forwardMACs
                    report.models.append(result)
                }
                if options.spectral, batch == options.batches.max() {
                    let regularizer = SpectralNormRegularizer(
                        matrices: network.weightMatrices, lambda: 0.01, seed: 1)
                    for threads in options.threads {
                        BLASThreads.set(threads)
                        guard let stepResult = report.models.last(where: {
                            $0.model == model.name && $0.batch == batch && $0.threads == threads
                        }) else { continue }
                        var samples = [Double]()
                        regularizer.apply(parameters: network.parameters, gradient: network.gradients)
                        for _ in 0..<options.spectralIterations {
                            let start = MonotonicClock.now()
                            regularizer.apply(parameters: network.parameters, gradient: network.gradients)
                            samples.append(MonotonicClock.now() - start)
                        }
                        let seconds = median(samples)
                        let result = SpectralResult(
                            model: model.name, threads: threads, batch: batch, matrices: regularizer.matrices.count,
                            regularizerSeconds: seconds, stepSeconds: stepResult.stepSeconds,
                            fraction: seconds / stepResult.stepSeconds)
                        report.spectral.append(result)
                        progress(
                            "spectral \(model.name) \(threads)T: \(format(seconds * 1000, 2)) ms per apply "
                                + "= \(format(100 * result.fraction, 2))% of the B=\(batch) step")
                    }
                }
            }
        }
        report.peakResidentBytes = ProcessMeasurements.peakResidentBytes()
        return report
    }

    /// One model row: `options.rounds` rounds, each the sgemm `peak` of that moment and then
    /// the timed steps (warm-up steps in the first round only); medians over the rounds, the
    /// fraction the median of the rounds' fractions.
    static func measureRow(
        _ bench: TrainingStepBench, model: String, forwardFLOPs flops: Int, threads: Int, options: BenchmarkOptions,
        progress: (String) -> Void, peak: () -> Double
    ) throws -> ModelResult {
        let rounds = max(options.rounds, 1)
        let batch = bench.batch
        var steps = [Double](), cpus = [Double](), fractions = [Double]()
        var iterations = 0
        var peakMeasured = false
        for round in 0..<rounds {
            let roundPeak = peak()
            peakMeasured = peakMeasured || roundPeak > 0
            BLASThreads.set(1)  // the lanes' setting, whatever the peak measurement left
            let (times, cpuTimes) = try bench.time(
                warmup: round == 0 ? options.warmupIterations : 0, iterations: options.iterations,
                minimum: options.minimumIterations, budget: options.timeBudget)
            let step = median(times)
            steps.append(step)
            cpus.append(median(cpuTimes))
            iterations += times.count
            let achieved = 3 * Double(flops) * Double(batch) / step / 1e9
            fractions.append(roundPeak > 0 ? achieved / roundPeak : 0)
            if rounds > 1 {
                progress("\(model) B=\(batch) \(threads)T round \(round + 1)/\(rounds): \(format(step * 1000, 1)) ms"
                    + (roundPeak > 0 ? ", sgemm peak \(format(roundPeak, 1)) GFLOPS, \(format(100 * fractions.last!, 1))% of it" : ""))
            }
        }
        let step = median(steps)
        let imagesPerSecond = Double(batch) / step
        let achieved = 3 * Double(flops) * imagesPerSecond / 1e9
        var result = ModelResult(
            model: model, batch: batch, threads: threads, iterations: iterations,
            forwardFLOPsPerImage: flops, stepSeconds: step, cpuSeconds: median(cpus),
            imagesPerSecond: imagesPerSecond, achievedGFLOPS: achieved, fractionOfPeak: median(fractions))
        if rounds > 1 { result.roundFractions = fractions }
        progress(
            "\(model) B=\(batch) \(threads)T: \(format(imagesPerSecond, 1)) img/s, "
                + "\(format(achieved, 1)) GFLOPS" + (peakMeasured ? " = \(format(100 * result.fractionOfPeak, 1))% of peak " : " ")
                + (rounds > 1 ? "(median of \(rounds) rounds of \(iterations / rounds) steps" : "(median of \(iterations) steps")
                + ", \(format(step * 1000, 1)) ms, CPU \(format(median(cpus) * 1000, 1)) ms)")
        return result
    }

    /// Median seconds of one C = A·B of `shape` (inputs filled with small values).
    static func timeGemm(_ shape: GemmShape, iterations: Int) -> Double {
        let a = FloatBuffer(count: shape.m * shape.k)
        let b = FloatBuffer(count: shape.k * shape.n)
        let c = FloatBuffer(count: shape.m * shape.n)
        for i in 0..<a.count { a[i] = Float(i % 7) * 0.01 }
        for i in 0..<b.count { b[i] = Float(i % 5) * 0.01 }
        func call() {
            gemm(.none, .none, m: shape.m, n: shape.n, k: shape.k, a.pointer, lda: shape.k, b.pointer,
                 ldb: shape.n, beta: 0, c.pointer, ldc: shape.n)
        }
        call()
        var samples = [Double]()
        for _ in 0..<max(iterations, 1) {
            let start = MonotonicClock.now()
            call()
            samples.append(MonotonicClock.now() - start)
        }
        return median(samples)
    }

    static func median(_ values: [Double]) -> Double {
        precondition(!values.isEmpty, "median of no values")
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// Fixed-point text with `digits` decimals.
    public static func format(_ value: Double, _ digits: Int) -> String {
        String(format: "%.\(digits)f", value)
    }

    /// "Haswell (OPENBLAS_CORETYPE=Haswell)", "Cooperlake (OpenBLAS's own choice)"; the name alone
    /// when the choice was not recorded.
    public static func coreLabel(_ name: String, _ choice: String?) -> String {
        choice.map { "\(name) (\($0))" } ?? name
    }

    /// The report as aligned text tables.
    public static func text(_ report: BenchmarkReport) -> String {
        var lines = [String]()
        lines.append("OpenBLAS core: \(coreLabel(report.coreName, report.coreChoice))")
        lines.append("optimizer: \(report.optimizer)")
        if let convolutions = report.convolutions { lines.append("convolutions: \(convolutions)") }
        lines.append("")
        lines.append(row(["sgemm shape", "threads", "ms", "GFLOPS"], widths: [40, 8, 10, 10]))
        for g in report.gemm {
            lines.append(row([g.shape.description, "\(g.threads)", format(g.seconds * 1000, 1), format(g.gflops, 1)],
                             widths: [40, 8, 10, 10]))
        }
        lines.append("")
        let ranged = report.models.contains { $0.fractionRange != nil }
        if ranged {
            lines.append("rounds: each row measured several times, the sgemm peak right before each; medians, "
                + "of peak = the median of the rounds' fractions, range = their smallest and largest")
        }
        // With Winograd layers the GEMMs perform fewer FLOPs than the model's count: say both.
        let executed = report.models.contains { ($0.executedFLOPsPerImage ?? $0.forwardFLOPsPerImage) != $0.forwardFLOPsPerImage }
        if executed {
            lines.append("executed: the fraction of peak in the FLOPs the GEMMs perform (Winograd layers: 4/9 of their count)")
        }
        let widths = [12, 6, 8, 12, 10, 12, 10, 10] + (ranged ? [14] : []) + (executed ? [10] : [])
        lines.append(row(["model", "batch", "threads", "step ms", "CPU ms", "images/s", "GFLOPS", "of peak"]
                            + (ranged ? ["range"] : []) + (executed ? ["executed"] : []), widths: widths))
        // Without an sgemm peak (--no-sgemm) there is no fraction to give: a dash, not 0 %.
        let peakMeasured = !report.peaks.isEmpty
        func percent(_ fraction: Double) -> String { peakMeasured ? format(100 * fraction, 1) + "%" : "—" }
        for m in report.models {
            let range = peakMeasured ? m.fractionRange.map { format(100 * $0[0], 1) + "–" + percent($0[1]) } ?? "—" : "—"
            lines.append(row([m.model, "\(m.batch)", "\(m.threads)", format(m.stepSeconds * 1000, 1),
                              format(m.cpuSeconds * 1000, 1), format(m.imagesPerSecond, 1), format(m.achievedGFLOPS, 1),
                              percent(m.fractionOfPeak)] + (ranged ? [range] : [])
                                + (executed ? [percent(m.executedFractionOfPeak)] : []), widths: widths))
        }
        if !report.spectral.isEmpty {
            lines.append("")
            for s in report.spectral {
                lines.append(
                    "spectral overhead \(s.model) (\(s.matrices) matrices) \(s.threads)T: "
                        + "\(format(s.regularizerSeconds * 1000, 2)) ms vs B=\(s.batch) step "
                        + "\(format(s.stepSeconds * 1000, 1)) ms = \(format(100 * s.fraction, 2))%")
            }
        }
        if report.peakResidentBytes > 0 {
            lines.append("")
            lines.append("peak resident memory: \(megabytes(report.peakResidentBytes)) MB")
        }
        return lines.joined(separator: "\n")
    }

    /// Bytes as megabytes (10⁶) with one decimal.
    public static func megabytes(_ bytes: Int) -> String { format(Double(bytes) / 1e6, 1) }

    static func row(_ cells: [String], widths: [Int]) -> String {
        zip(cells, widths).enumerated().map { index, pair in
            let (cell, width) = pair
            let padding = String(repeating: " ", count: max(width - cell.count, 0))
            return index == 0 ? cell + padding : padding + cell
        }.joined(separator: " ")
    }
}

/// One network's training step on fixed random data, with its own momentum buffer.
final class TrainingStepBench {
    let network: Network
    let batch: Int
    private let executor: LocalExecutor
    private let task: StepTask
    private let gradient: FloatBuffer  // (P) the step's gradient sum
    private let velocity: FloatBuffer  // same layout as the parameter arena
    private let learningRate: Float = 0.01
    private let momentum: Float = 0.9

    /// One step = a micro-batch of `batch` random samples as one unit (BN over the whole
    /// micro-batch, as PyTorch's BN does), cut into the automatic chunks and run on `lanes`
    /// lanes exactly as `train --threads` runs it, then the SGD-momentum update.
    init(
        model: BenchmarkModel, batch: Int, lanes: Int, chunkSize: Int = 0, convAlgorithm: ConvolutionAlgorithm = .winograd
    ) throws {
        self.batch = batch
        var config = model.config
        config.chunkSize = chunkSize
        config.convAlgorithm = convAlgorithm
        config.batchSize = batch
        config.ghostBatch = batch
        config.dataset = .synthetic
        let data = SyntheticData.make(
            shape: model.inputShape, classes: model.classes, trainSamples: batch, testSamples: 1, noise: 1, seed: 7)
        network = try ModelFactory.make(config, inputShape: model.inputShape, classes: model.classes)
        network.initializeParameters(seed: 1)
        executor = LocalExecutor(
            runner: try LaneRunner(network: network, data: data, config: config, lanes: lanes), unitsPerStep: 1)
        task = StepTask(step: 0, epoch: 0, indices: (0..<Int32(batch)).map { $0 })
        gradient = FloatBuffer(count: network.parameterCount)
        velocity = FloatBuffer(count: network.parameterCount)
    }

    func step() throws {
        _ = try executor.computeStep(task, parameters: network.parameters, gradientSum: gradient)
        VectorKernels.momentumStep(
            parameters: network.parameters.pointer, gradient: gradient.pointer, velocity: velocity.pointer,
            count: network.parameterCount, learningRate: learningRate, momentum: momentum, nesterov: false)
    }

    /// Wall and process CPU seconds of each timed step after `warmup` untimed ones:
    /// `iterations` steps, or fewer (at least `minimum`) once `budget` seconds are spent.
    func time(warmup: Int, iterations: Int, minimum: Int, budget: Double) throws -> (wall: [Double], cpu: [Double]) {
        for _ in 0..<warmup { try step() }
        var samples = [Double]()
        var cpuSamples = [Double]()
        var spent = 0.0
        while samples.count < max(iterations, 1) {
            if samples.count >= max(minimum, 1) && spent >= budget { break }
            let start = MonotonicClock.now()
            let cpuStart = ProcessMeasurements.cpuSeconds()
            try step()
            let elapsed = MonotonicClock.now() - start
            cpuSamples.append(ProcessMeasurements.cpuSeconds() - cpuStart)
            samples.append(elapsed)
            spent += elapsed
        }
        return (samples, cpuSamples)
    }
}
