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

    func validate() throws {
        if let iterations, iterations < 1 { throw ValidationError("--iterations must be at least 1, got \(iterations)") }
        _ = try Bench.integers(batches, flag: "--batches")
        _ = try Bench.integers(threads, flag: "--threads")
    }

    static func integers(_ list: String, flag: String) throws -> [Int] {
        let values = list.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw ValidationError("\(flag) takes comma-separated positive integers, got '\(list)'")
        }
        return values.compactMap { $0 }
    }

    func run() throws {
        try reportingErrors {
            let names = models.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            var options = BenchmarkOptions(models: try names.map(BenchmarkModel.named))
            options.batches = try Bench.integers(batches, flag: "--batches")
            options.threads = try Bench.integers(threads, flag: "--threads")
            options.spectral = !noSpectral
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
}
