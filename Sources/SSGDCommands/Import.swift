import ArgumentParser
import Runs
import Training

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Start a new run from weights in a safetensors file (PyTorch names and layouts).",
        discussion: """
            Creates the run directory for --config (as `train` would), loads every parameter and BN \
            running statistic of the model from FILE (each name and shape is checked), and writes \
            them as the run's step-0 checkpoint with zero momentum. Then train from them with \
            `ssgd train --resume RUN_DIR` (or `ssgd launch --resume RUN_DIR`).
            """)

    @Argument(help: "A .safetensors file, e.g. from `ssgd export` or safetensors.torch.save_file.")
    var file: String

    @OptionGroup var options: TrainingOptions

    func validate() throws {
        if options.resume != nil { throw ValidationError("import starts a new run: give --config (and optionally --run-dir), not --resume") }
    }

    func run() throws {
        try reportingErrors {
            let prepared = try TrainingSession.prepare(options.request)
            let path = try CheckpointImport.startRun(from: file, prepared: prepared)
            Console.line("imported \(file) as \(path); train from it with: ssgd train --resume \(prepared.run.path)")
        }
    }
}
