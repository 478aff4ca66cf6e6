import ArgumentParser
import Bench
import Engine
import Foundation
import Training

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure sgemm GFLOPS and each model's training images/s in one run.",
        discussion: """
            Prints the sgemm rate at each thread count, then per model, micro-batch and thread \
            count the median training-step time (forward, backward, SGD-momentum update), \
            images/s and the achieved GFLOPS (3 × forward FLOPs × images/s) as a fraction of the \
            sgemm peak at the same thread count, and the spectral-norm regulariser's cost against \
            the step at the largest batch. Set OPENBLAS_CORETYPE in the environment to try another \
            OpenBLAS kernel (see docs/performance.md).

            With --compare --python PYTHON it measures ssgd against PyTorch CPU instead: for each \
            model × batch × threads, ssgd's row (a child `ssgd bench`) then PyTorch's \
            (tools/pytorch_bench.py), each in its own process, and prints both images/s, their \
            ratio, the CPU time per step and each process's peak resident memory.

            With --distributed it measures the step of one large batch (--distributed-batch, \
            default 4096, in units of 128) in `ssgd train --threads N` against `ssgd launch \
            --workers N --threads 1` (N = --processes), on random data; with --python also PyTorch's \
            one N-thread process against DDP with N single-thread ranks \
            (tools/pytorch_ddp_bench.py), and prints both ratios.
            """)

    @Option(name: .long, help: "Comma-separated models: mlp, vgg16, nin, densenet40, densenet22.")
    var models = "mlp,vgg16,nin,densenet40"

    @Option(name: .long, help: "Comma-separated micro-batch sizes.")
    var batches = "64,128"

    @Option(name: .long, help: "Comma-separated lane counts (as train --threads: lanes of one OpenBLAS thread each); the sgemm peak is measured with that many OpenBLAS threads.")
    var threads = "1,2"

    @Option(name: .long, help: "Timed steps per configuration (median reported; fewer if a configuration passes its time budget, at least 3).")
    var iterations: Int?

    @Option(name: .long, help: "Also write the results as JSON to this file.")
    var json: String?

    @Option(name: .long, help: "Samples per chunk of each micro-batch (the config key chunk_size); 0: automatic, as a config leaves it. Must divide every batch.")
    var chunkSize = 0

    @Option(name: .long, help: "How 3×3 convolutions compute (the config key conv_algorithm): winograd or im2col.")
    var convAlgorithm = "winograd"

    @Flag(name: .long, help: "Tiny iteration counts and sgemm shapes: a smoke test, not a measurement.")
    var quick = false

    @Flag(name: .long, help: "Skip the spectral-norm regulariser timing.")
    var noSpectral = false

    @Flag(name: .long, help: "Skip the sgemm peak measurement (the of-peak columns then show —).")
    var noSgemm = false

    @Flag(name: .long, help: "Compare with PyTorch CPU row by row (needs --python).")
    var compare = false

    @Option(name: .long, help: "Python interpreter with PyTorch installed, for --compare.")
    var python: String?

    @Option(name: .long, help: "Measure each row this many times and report medians, with the range of the ratio: --compare runs ssgd then PyTorch each time (ratio = the median of the rounds' ratios); --distributed runs train, launch (and PyTorch's pair) each time; a plain run measures the sgemm peak right before each time (of peak = the median of the rounds' fractions). Steadier on a shared machine.")
    var rounds = 1

    @Option(name: .long, help: "The PyTorch side of --compare.")
    var script = "tools/pytorch_bench.py"

    @Flag(name: .long, help: "Measure one process of N lanes against N worker processes (and PyTorch DDP with --python).")
    var distributed = false

    @Option(name: .long, help: "Models of --distributed.")
    var distributedModels = "mlp,vgg16"

    @Option(name: .long, help: "Global batch of --distributed.")
    var distributedBatch = 4096

    @Option(name: .long, help: "N of --distributed: lanes of the one process, worker processes, DDP ranks.")
    var processes = 2

    @Option(name: .long, help: "The PyTorch side of --distributed.")
    var ddpScript = "tools/pytorch_ddp_bench.py"

    static let pythonHint = """
        --compare needs a Python with PyTorch (CPU build), e.g.:
            python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0+cpu numpy
        then: ssgd bench --compare --python /tmp/torchenv/bin/python
        """

    func validate() throws {
        if let iterations, iterations < 1 { throw ValidationError("--iterations must be at least 1, got \(iterations)") }
        let batchSizes = try Bench.integers(batches, flag: "--batches")
        _ = try Bench.integers(threads, flag: "--threads")
        if chunkSize < 0 || (chunkSize > 0 && batchSizes.contains { $0 % chunkSize != 0 }) {
            throw ValidationError("--chunk-size \(chunkSize) must be 0 (automatic) or divide every batch of --batches \(batches)")
        }
        if rounds < 1 { throw ValidationError("--rounds must be at least 1, got \(rounds)") }
        if chunkSize > 0 && compare {
            throw ValidationError("--chunk-size is for a plain bench run; --compare measures the automatic chunks a config gets")
        }
        guard let algorithm = ConvolutionAlgorithm(rawValue: convAlgorithm) else {
            throw ValidationError("--conv-algorithm must be winograd or im2col, got \(convAlgorithm)")
        }
        if algorithm != .winograd && (compare || distributed) {
            throw ValidationError("--conv-algorithm is for a plain bench run; --compare and --distributed measure the default (winograd)")
        }
        if distributed {
            guard !compare else { throw ValidationError("--compare and --distributed are separate runs: give one of them") }
            guard processes >= 1, distributedBatch >= 1 else { throw ValidationError("--processes and --distributed-batch must be positive") }
            for name in distributedModels.split(separator: ",") { _ = try BenchmarkModel.named(String(name)) }
            if let python {
                guard FileManager.default.isExecutableFile(atPath: python) else {
                    throw ValidationError("--python \(python) is not an executable file.\n" + Bench.pythonHint)
                }
                guard FileManager.default.fileExists(atPath: ddpScript) else {
                    throw ValidationError("--distributed runs \(ddpScript), which is not there: run from the repository root or pass --ddp-script PATH.")
                }
            }
        } else if compare {
            guard let python else { throw ValidationError(Bench.pythonHint) }
            guard FileManager.default.isExecutableFile(atPath: python) else {
                throw ValidationError("--python \(python) is not an executable file.\n" + Bench.pythonHint)
            }
            guard FileManager.default.fileExists(atPath: script) else {
                throw ValidationError(
                    "--compare runs \(script), which is not there: run from the repository root or pass --script PATH.")
            }
        } else if python != nil {
            throw ValidationError("--python is for --compare or --distributed.")
        }
    }

    static func integers(_ list: String, flag: String) throws -> [Int] {
        let values = list.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw ValidationError("\(flag) takes comma-separated positive integers, got '\(list)'")
        }
        return values.compactMap { $0 }
    }

    func run() throws {
        if compare {
            try runComparison()
            return
        }
        if distributed {
            try runDistributed()
            return
        }
        try reportingErrors {
            let names = models.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            var options = BenchmarkOptions(models: try names.map(BenchmarkModel.named))
            options.batches = try Bench.integers(batches, flag: "--batches")
            options.threads = try Bench.integers(threads, flag: "--threads")
            options.spectral = !noSpectral
            options.chunkSize = chunkSize
            options.convAlgorithm = ConvolutionAlgorithm(rawValue: convAlgorithm) ?? .winograd
            options.rounds = rounds
            if noSgemm { options.gemmShapes = [] }
            if quick { options.makeQuick() }
            if let iterations {
                options.iterations = iterations
                options.minimumIterations = min(options.minimumIterations, iterations)
            }
            let report = try Benchmark.run(options) { Console.line($0) }
            Console.line("")
            Console.line(Benchmark.text(report))
            if let json {
                try report.json().write(to: URL(fileURLWithPath: json), options: .atomic)
                Console.line("\nwrote \(json)")
            }
        }
    }

    /// One process of N lanes against N worker processes, and PyTorch's single process against DDP.
    private func runDistributed() throws {
        try reportingErrors {
            let steps = iterations ?? 3
            let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? CommandLine.arguments[0]
            Console.line("distributed step, B = \(distributedBatch) in units of \(DistributedComparison.unitSize), N = \(processes), OpenBLAS \(Benchmark.coreLabel(BLASThreads.coreName, BLASThreads.coreChoice)), \(steps) timed step(s) after one warm-up")
            let models = distributedModels.split(separator: ",").map(String.init)
            let (batch, processes) = (distributedBatch, self.processes)
            let torch: ((String, Bool) throws -> (single: Double, ddp: Double))? = python.map { python in
                { name, reversed in
                    try DistributedComparison.measureTorch(
                        python: python, script: ddpScript, model: name, batch: batch, processes: processes, iterations: steps,
                        reversed: reversed)
                }
            }
            let rows = try DistributedComparison.run(
                models: models, batch: batch, processes: processes, rounds: rounds,
                ssgd: { name, reversed in
                    try DistributedComparison.measureSSGD(
                        executable: executable, model: try BenchmarkModel.named(name), batch: batch, processes: processes,
                        iterations: steps, reversed: reversed)
                },
                torch: torch) { Console.line($0) }
            Console.line("")
            Console.line(DistributedComparison.text(rows))
            if let json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try encoder.encode(rows).write(to: URL(fileURLWithPath: json), options: .atomic)
                Console.line("\nwrote \(json)")
            }
        }
    }

    /// ssgd and PyTorch row by row, each configuration in its own pair of processes.
    private func runComparison() throws {
        try reportingErrors {
            guard let python else { throw ValidationError(Bench.pythonHint) }
            let names = models.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            for name in names { _ = try BenchmarkModel.named(name) }
            let configurations = ComparisonConfiguration.grid(
                models: names, batches: try Bench.integers(batches, flag: "--batches"),
                threads: try Bench.integers(threads, flag: "--threads"))
            let steps = iterations ?? 3
            let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? CommandLine.arguments[0]
            let ssgd = SSGDRunner(executable: executable, iterations: steps)
            let pytorch = PyTorchRunner(python: python, script: script, iterations: steps)
            let report = try Comparison.run(
                configurations, coreName: BLASThreads.coreName, coreChoice: BLASThreads.coreChoice, rounds: rounds, ssgd: ssgd.measure, pytorch: pytorch.measure
            ) { Console.line($0) }
            Console.line("")
            Console.line(Comparison.text(report))
            if let json {
                try report.json().write(to: URL(fileURLWithPath: json), options: .atomic)
                Console.line("\nwrote \(json)")
            }
        }
    }
}
