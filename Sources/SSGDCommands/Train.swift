import ArgumentParser
import Engine
import Runs
import Training

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train in this process (no workers).",
        discussion: "Writes config.yaml, metrics.jsonl, checkpoints/ and summary.json to the run directory. Ctrl-C stops after the current step and writes a checkpoint.")

    @OptionGroup var options: TrainingOptions

    func run() throws {
        try reportingErrors {
            let prepared = try TrainingSession.prepare(options.request)
            BLASThreads.set(prepared.config.threads)
            StopRequest.installHandlers()
            let trainer = try TrainingSession.localTrainer(prepared)
            try trainer.train()
        }
    }
}
