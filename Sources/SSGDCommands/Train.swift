import ArgumentParser
import Engine
import Runs
import Study
import Training

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train in this process (no workers).",
        discussion: "Writes config.yaml, metrics.jsonl, checkpoints/ and summary.json to the run directory. Ctrl-C stops after the current step and writes a checkpoint.")

    @OptionGroup var options: TrainingOptions

    func run() throws {
        try reportingErrors {
            ChildProcess.adoptRunnerIfAny()
            let prepared = try TrainingSession.prepare(options.request)
            // Lanes: `threads` single-threaded lanes, OpenBLAS at one thread in each (DESIGN §3).
            BLASThreads.set(1)
            StopRequest.installHandlers()
            let trainer = try TrainingSession.localTrainer(prepared)
            try trainer.train()
        }
    }
}
