import ArgumentParser
import Engine
import Foundation
import Runs
import Study
import Training

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a trained run's sensitivity: input-gradient norms, Hessian eigenvalue, weight spectra.",
        discussion: """
            Loads RUN_DIR's data set and its newest checkpoint that verifies (or --checkpoint PATH), \
            evaluates in inference mode (BN running statistics, no dropout) on the first --samples \
            examples of the training and test sets, and writes RUN_DIR/analysis.json (or --output): \
            the mean, median and max of the per-example ‖∇ₓ loss‖₂, the largest eigenvalue of the mean \
            loss's Hessian by power iteration on finite-difference Hessian-vector products, and every \
            singular value of every regularised weight matrix. docs/analysis.md gives the formulas.
            """)

    @Argument(help: "Run directory (holds config.yaml and checkpoints/).")
    var runDirectory: String

    @Option(name: .long, help: "Checkpoint file to analyse (default: the newest good one in RUN_DIR/checkpoints).")
    var checkpoint: String?

    @Option(name: .long, help: "Examples per split: the first N of the training set and of the test set.")
    var samples: Int = 1000

    @Option(name: .long, help: "Power iterations (Hessian-vector products) per split; at least 2.")
    var hessianIterations: Int = 20

    @Option(name: .long, help: "File to write (default: RUN_DIR/analysis.json).")
    var output: String?

    @Option(name: .long, help: "BLAS threads (0 = OpenBLAS's default).")
    var threads: Int = 0

    func validate() throws {
        guard samples > 0 else { throw ValidationError("--samples must be at least 1, got \(samples)") }
        guard hessianIterations >= 2 else {
            throw ValidationError("--hessian-iterations must be at least 2 (the relative change compares the last two), got \(hessianIterations)")
        }
        guard threads >= 0 else { throw ValidationError("--threads must be 0 or more, got \(threads)") }
    }

    func run() throws {
        try reportingErrors {
            // Analysis has no checkpoint: a cell's analysis ends with its runner (a rerun redoes it).
            ChildProcess.adoptRunnerIfAny(onRunnerGone: { Foundation.exit(1) })
            BLASThreads.set(threads)
            let run = RunDirectory(path: runDirectory)
            let started = MonotonicClock.now()
            let options = AnalysisOptions(samples: samples, hessianIterations: hessianIterations)
            let (result, restored) = try RunAnalysis.analyze(run: run, checkpoint: checkpoint, options: options)
            for problem in restored.skipped { Console.line("warning: skipped \(problem)") }
            let destination = output ?? run.file("analysis.json")
            try result.write(to: destination)
            for line in Analyze.summary(result) { Console.line(line) }
            Console.line(String(format: "wrote %@ (%.1f s)", destination, MonotonicClock.now() - started))
        }
    }

    static func summary(_ result: AnalysisResult) -> [String] {
        let norms = result.inputGradientNorm
        let hessian = result.hessianMaxEigenvalue
        var lines = [
            "analysed \(result.checkpoint) (step \(result.step)) on \(norms.train.samples) train and \(norms.test.samples) test examples",
            String(format: "input gradient norm  train: mean %.4g median %.4g max %.4g | test: mean %.4g median %.4g max %.4g",
                   norms.train.mean, norms.train.median, norms.train.max, norms.test.mean, norms.test.median, norms.test.max),
            String(format: "hessian max eigenvalue  train: %.4g (relative change %.2g after %d) | test: %.4g (relative change %.2g after %d)",
                   hessian.train.value, hessian.train.relativeChange, hessian.train.iterations,
                   hessian.test.value, hessian.test.relativeChange, hessian.test.iterations),
        ]
        for (name, sigma) in result.sigmaMax.sorted(by: { $0.key < $1.key }) {
            let count = result.singularValues[name]?.count ?? 0
            lines.append(String(format: "sigma_max %@ %.4f (%d singular values)", name, sigma, count))
        }
        return lines
    }
}
