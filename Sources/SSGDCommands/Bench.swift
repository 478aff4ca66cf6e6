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
            """)

    @Option(name: .long, help: "Comma-separated models: mlp, vgg16, nin, densenet40, densenet22.")
    var models = "mlp,vgg16,nin,densenet40"

    @Option(name: .long, help: "Comma-separated micro-batch sizes.")
    var batches = "64,128"

    @Option(name: .long, help: "Comma-separated BLAS thread counts.")
    var threads = "1,2"

    @Option(name: .long, help: "Timed steps per configuration (median reported; fewer if a configuration passes its time budget, at least 3).")
    var iterations: Int?

    @Option(name: .long, help: "Also write the results as JSON to this file.")
    var json: String?

    @Flag(name: .long, help: "Tiny iteration counts and sgemm shapes: a smoke test, not a measurement.")
    var quick = false

    @Flag(name: .long, help: "Skip the spectral-norm regulariser timing.")
    var noSpectral = false

    @Flag(name: .long, help: "Skip the sgemm peak measurement (fractions of peak are then 0).")
    var noSgemm = false

    @Flag(name: .long, help: "Compare with PyTorch CPU row by row (needs --python).")
    var compare = false

    @Option(name: .long, help: "Python interpreter with PyTorch installed, for --compare.")
    var python: String?

    @Option(name: .long, help: "The PyTorch side of --compare.")
    var script = "tools/pytorch_bench.py"

    static let pythonHint = """
        --compare needs a Python with PyTorch (CPU build), e.g.:
            python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0+cpu numpy
        then: ssgd bench --compare --python /tmp/torchenv/bin/python
        """

    func validate() throws {
        if let iterations, iterations < 1 { throw ValidationError("--iterations must be at least 1, got \(iterations)") }
        _ = try Bench.integers(batches, flag: "--batches")
        _ = try Bench.integers(threads, flag: "--threads")
        if compare {
            guard let python else { throw ValidationError(Bench.pythonHint) }
            guard FileManager.default.isExecutableFile(atPath: python) else {
                throw ValidationError("--python \(python) is not an executable file.\n" + Bench.pythonHint)
            }
            guard FileManager.default.fileExists(atPath: script) else {
                throw ValidationError(
                    "--compare runs \(script), which is not there: run from the repository root or pass --script PATH.")
            }
        } else if python != nil {
            throw ValidationError("--python is for --compare.")
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
        try reportingErrors {
            let names = models.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            var options = BenchmarkOptions(models: try names.map(BenchmarkModel.named))
            options.batches = try Bench.integers(batches, flag: "--batches")
            options.threads = try Bench.integers(threads, flag: "--threads")
            options.spectral = !noSpectral
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
                configurations, coreName: BLASThreads.coreName, ssgd: ssgd.measure, pytorch: pytorch.measure
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
