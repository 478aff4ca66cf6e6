import ArgumentParser
import Cluster
import Foundation
import Study
import Training

struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Run every cell of an experiment plan, analyse the runs and write the report.",
        discussion: """
            A plan (YAML) names base config(s) and the axes to sweep; its cells are the cartesian \
            product. Each cell runs as a child ssgd process in OUTPUT/runs/CELL (output in \
            OUTPUT/logs/CELL.log); finished cells are skipped and begun ones resumed, so rerunning \
            the same command continues. A failed cell is recorded in OUTPUT/experiment.json and the \
            others go on. Ctrl-C asks the running cells to checkpoint and stop. See docs/experiment.md.
            """)

    @Argument(help: "The plan file (YAML).")
    var plan: String

    @Option(name: .long, help: "Output folder (default: the plan's output:, else experiments/NAME).")
    var output: String?

    @Option(name: .long, help: "Cells to run at once; each gets cores / K lanes unless --threads says otherwise.")
    var parallel = 1

    @Option(name: .long, help: "Lanes per cell (per worker with --launch-workers); default cores / (parallel × workers).")
    var threads: Int?

    @Option(name: .long, help: "Run each cell through `ssgd launch` with this many worker processes.")
    var launchWorkers: Int?

    @Flag(name: .long, help: "Do not run `ssgd analyze` on finished runs.")
    var noAnalyze = false

    @Option(name: .long, help: "`ssgd analyze --samples` for each run (default: analyze's own).")
    var analyzeSamples: Int?

    @Option(name: .long, help: "Seconds between summary lines (cells done/running/left, ETA).")
    var progressSeconds: Double = 30

    @Option(name: .long, help: "Generalization-gap threshold of the report (default: the plan's alpha:, else per data set).")
    var alpha: Double?

    @Flag(name: .long, help: "List the cells and what a run would do with each; run nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Only write the report from the cells' run directories.")
    var reportOnly = false

    func validate() throws {
        guard parallel >= 1 else { throw ValidationError("--parallel must be at least 1, got \(parallel)") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if let launchWorkers, launchWorkers < 1 { throw ValidationError("--launch-workers must be at least 1, got \(launchWorkers)") }
        if let analyzeSamples, analyzeSamples < 1 { throw ValidationError("--analyze-samples must be at least 1, got \(analyzeSamples)") }
        guard progressSeconds > 0 else { throw ValidationError("--progress-seconds must be positive") }
        if let alpha, !(alpha >= 0 && alpha < 1) { throw ValidationError("--alpha is a test accuracy in [0, 1), got \(alpha)") }
        if dryRun && reportOnly { throw ValidationError("--dry-run and --report-only exclude each other") }
    }

    func run() throws {
        try reportingErrors {
            let loaded = try ExperimentPlan.load(path: plan, output: output)
            var options = ExperimentOptions(executable: ProcessSupervisor.currentExecutable)
            options.parallel = parallel
            options.threads = threads
            options.launchWorkers = launchWorkers ?? 0
            options.analyze = !noAnalyze
            options.analyzeSamples = analyzeSamples
            options.progressSeconds = progressSeconds
            options.alpha = alpha
            let runner = ExperimentRunner(plan: loaded, options: options, rerunCommand: rerunCommand)
            if dryRun {
                Console.line("plan \(plan): \(loaded.cells.count) cells → \(loaded.output)")
                for line in runner.describeCells() { Console.line(line) }
                return
            }
            if reportOnly {
                let report = try runner.writeReport()
                for warning in report.warnings { Console.error("warning: \(warning)") }
                Console.line(report.table.markdown)
                Console.line("report of \(report.runs.count) run(s) in \(runner.reportDirectory)/index.md")
                return
            }
            StopRequest.installHandlers()
            switch try runner.run() {
            case .interrupted: throw ExitCode(130)
            case .completed(let failed): if failed > 0 { throw ExitCode(1) }
            }
        }
    }

    /// This command again, as the user gave it (flags that change what runs kept).
    private var rerunCommand: String {
        var words = ["ssgd", "experiment", plan]
        if let output { words += ["--output", output] }
        if parallel != 1 { words += ["--parallel", String(parallel)] }
        if let threads { words += ["--threads", String(threads)] }
        if let launchWorkers { words += ["--launch-workers", String(launchWorkers)] }
        if noAnalyze { words.append("--no-analyze") }
        return words.joined(separator: " ")
    }
}
