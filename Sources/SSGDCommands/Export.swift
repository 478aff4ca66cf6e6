import ArgumentParser
import Runs
import Training

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a run's checkpoint as a PyTorch-readable file.",
        discussion: """
            Builds the model from RUN_DIR/config.yaml (the data set is not needed), reads the newest \
            checkpoint that verifies (or --checkpoint PATH) and writes every parameter and every BN \
            running statistic under PyTorch's names and shapes. Load it in PyTorch with \
            safetensors.torch.load_file(FILE) and model.load_state_dict(tensors, strict=False) \
            (ssgd writes no num_batches_tracked).
            """)

    @Argument(help: "Run directory (holds config.yaml and checkpoints/).")
    var runDirectory: String

    @Option(name: .long, help: "Checkpoint file to export (default: the newest good one in RUN_DIR/checkpoints).")
    var checkpoint: String?

    @Option(name: .long, help: "Output format; only safetensors.")
    var format: String

    @Option(name: .long, help: "File to write.")
    var output: String

    func validate() throws {
        guard format == "safetensors" else {
            throw ValidationError("unknown --format '\(format)'; the only format is safetensors")
        }
    }

    func run() throws {
        try reportingErrors {
            let restored = try CheckpointExport.restore(run: RunDirectory(path: runDirectory), checkpoint: checkpoint)
            for problem in restored.skipped { Console.line("warning: skipped \(problem)") }
            try CheckpointExport.writeSafetensors(restored, to: output)
            let tensors = restored.network.parameterTable.count + restored.network.stateTable.count
            Console.line("exported \(restored.path) (step \(restored.step), \(tensors) tensors) to \(output)")
        }
    }
}
