import Data
import Foundation
import Runs
import Training

#if canImport(Glibc)
import Glibc
#endif

// `ssgd experiment PLAN`: runs every cell of a plan as child `ssgd` processes, `parallel` at
// once, each in OUTPUT/runs/CELL with its output in OUTPUT/logs/CELL.log; then `ssgd analyze` on
// each finished run, and the report (Study.Report) into OUTPUT/report. Finished cells are
// skipped and begun ones resumed, so rerunning the same command continues; a cell that fails
// is recorded in experiment.json and the others go on. One loop on the calling thread starts
// children, reaps them (waitpid, never blocking), reads their logs and prints events and a
// periodic summary; a stop request (SIGINT/SIGTERM, StopRequest) is forwarded once to every
// running child, which checkpoints, and the runner waits for them.

public struct ExperimentOptions: Sendable {
    /// The `ssgd` executable the cells run (the runner's own).
    public var executable: String
    /// Cells at once.
    public var parallel = 1
    /// Lanes per cell (per worker with `launchWorkers`); nil: cores / (parallel × workers).
    public var threads: Int?
    /// Run each cell through `ssgd launch` with this many workers (0: `ssgd train`).
    public var launchWorkers = 0
    public var analyze = true
    /// `ssgd analyze --samples` (nil: its default).
    public var analyzeSamples: Int?
    /// Seconds between summary lines.
    public var progressSeconds: Double = 30
    /// The report's generalization-gap threshold (nil: the plan's, else per data set).
    public var alpha: Double?

    public init(executable: String) { self.executable = executable }

    public var cores: Int { ProcessInfo.processInfo.activeProcessorCount }

    public var threadsPerProcess: Int {
        threads ?? max(1, cores / (max(1, parallel) * max(1, launchWorkers)))
    }
}

public enum ExperimentOutcome: Equatable, Sendable {
    /// Every cell was attempted; `failed` of them failed (training or analysis).
    case completed(failed: Int)
    /// Stopped on request; rerunning continues.
    case interrupted
}

public final class ExperimentRunner {
    public let plan: ExperimentPlan
    public let options: ExperimentOptions
    /// Where event and summary lines go (stdout by default).
    public var output: (String) -> Void = Console.line

    private var records: [CellRecord]
    private var rerunCommand: String

    /// A child at work for a cell: its training or its analysis.
    private struct Job {
        enum Phase { case train, analyze }
        var cell: Int
        var phase: Phase
        var child: ChildProcess
        var tail: LogTail?
        var progress: CellProgress
    }

    private var running: [Job] = []
    private var estimator = ETAEstimator()

    public init(plan: ExperimentPlan, options: ExperimentOptions, rerunCommand: String = "ssgd experiment PLAN") {
        self.plan = plan
        self.options = options
        self.rerunCommand = rerunCommand
        let previous = ExperimentRecord.read(output: plan.output)
        records = plan.cells.map { cell in
            let attempts = previous?.cells.first { $0.name == cell.name }?.attempts ?? 0
            return CellRecord(
                name: cell.name, values: cell.values, runDirectory: Self.runDirectory(plan, cell), log: Self.logPath(plan, cell),
                status: .pending, step: nil, totalSteps: Self.expectedSteps(cell.config), attempts: attempts, error: nil, testAccuracy: nil,
                wallSeconds: nil, analysis: .pending, analysisError: nil)
        }
    }

    // MARK: - Layout

    static func runDirectory(_ plan: ExperimentPlan, _ cell: ExperimentCell) -> String {
        "\(plan.output)/runs/\(cell.name)"
    }

    static func logPath(_ plan: ExperimentPlan, _ cell: ExperimentCell) -> String {
        "\(plan.output)/logs/\(cell.name).log"
    }

    static func configPath(_ plan: ExperimentPlan, _ cell: ExperimentCell) -> String {
        "\(plan.output)/configs/\(cell.name).yaml"
    }

    public var reportDirectory: String { "\(plan.output)/report" }

    // MARK: - Dry run

    /// One line per cell: its name, what a run would do with it, and its values.
    public func describeCells() -> [String] {
        let width = plan.cells.map(\.name.count).max() ?? 0
        return plan.cells.map { cell in
            let state: String
            switch CellState.inspect(cell, runDirectory: Self.runDirectory(plan, cell)) {
            case .new: state = "new"
            case .resumable(let step): state = "resume from step \(step ?? 0)"
            case .finished(let accuracy, _, _): state = String(format: "finished (test accuracy %.2f%%)", 100 * accuracy)
            case .conflicting: state = "CONFLICT (another config in its run directory)"
            }
            let values = cell.values.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            let padded = cell.name.padding(toLength: width, withPad: " ", startingAt: 0)
            return "\(padded)  \(state)  [\(((cell.source as NSString).lastPathComponent))\(values.isEmpty ? "" : " " + values)]"
        }
    }

    // MARK: - Run

    /// Run every cell not finished yet, analyse, and write the report. The caller installs the
    /// stop handlers (StopRequest) first.
    public func run() throws -> ExperimentOutcome {
        let manager = FileManager.default
        for folder in ["runs", "logs", "configs"] {
            do {
                try manager.createDirectory(atPath: "\(plan.output)/\(folder)", withIntermediateDirectories: true)
            } catch {
                throw PlanError("cannot create \(plan.output)/\(folder): \(RunDirectory.reason(error))")
            }
        }
        // One runner per output folder (the lock file is OUTPUT/lock, held until exit).
        try RunLock.acquire(RunDirectory(path: plan.output))
        var queue: [(cell: Int, phase: Job.Phase)] = []
        var counts = (finished: 0, resume: 0, new: 0)
        for (index, cell) in plan.cells.enumerated() {
            switch CellState.inspect(cell, runDirectory: records[index].runDirectory) {
            case .new:
                counts.new += 1
                queue.append((index, .train))
            case .resumable(let step):
                counts.resume += 1
                records[index].step = step
                queue.append((index, .train))
            case .finished(let accuracy, let steps, let wall):
                counts.finished += 1
                markFinished(index, accuracy: accuracy, steps: steps, wall: wall)
                if options.analyze && CellState.needsAnalysis(runDirectory: records[index].runDirectory) {
                    queue.append((index, .analyze))
                } else {
                    records[index].analysis = options.analyze ? .done : .skipped
                }
            case .conflicting(let reason):
                records[index].status = .failed
                records[index].error = reason
                event(index, "not run: \(reason)")
            }
        }
        let threads = options.threadsPerProcess
        let mode = options.launchWorkers > 0 ? "ssgd launch with \(options.launchWorkers) worker(s) of \(threads) lane(s)" : "ssgd train with \(threads) lane(s)"
        output("experiment \(plan.name): \(plan.cells.count) cells (\(counts.finished) finished, \(counts.resume) to resume, "
            + "\(counts.new) new) in \(plan.output); \(options.parallel) at a time, each \(mode)")
        let perCell = max(1, options.launchWorkers) * threads
        if options.parallel * perCell > options.cores {
            output("experiment: warning: \(options.parallel) cell(s) × \(perCell) lane(s) exceed the \(options.cores) core(s); cells will share cores")
        }
        try saveRecords()

        var forwarded = false
        var lastSummary = MonotonicClock.now()
        while true {
            if StopRequest.requested && !forwarded {
                forwarded = true
                if !running.isEmpty {
                    output("experiment: stopping: asking \(running.count) running cell(s) to checkpoint and stop (a second Ctrl-C exits at once)")
                }
                for job in running { job.child.send(SIGINT) }
            }
            try reapFinished(queue: &queue)
            while !StopRequest.requested && running.count < max(1, options.parallel) && !queue.isEmpty {
                let next = queue.removeFirst()
                try start(next.cell, next.phase)
            }
            if running.isEmpty && (queue.isEmpty || StopRequest.requested) { break }
            readLogs()
            let now = MonotonicClock.now()
            if now - lastSummary >= options.progressSeconds {
                output(summaryLine())
                lastSummary = now
            }
            usleep(100_000)
        }
        for (index, record) in records.enumerated() where record.status == .pending || record.status == .running {
            records[index].status = .interrupted
        }
        try saveRecords()
        if StopRequest.requested {
            output("experiment: stopped; \(records.filter { $0.status == .finished }.count) of \(records.count) cells finished; continue with: \(rerunCommand)")
            return .interrupted
        }
        let failed = records.filter { $0.status == .failed || $0.analysis == .failed }.count
        output(summaryLine())
        writeReportReportingErrors()
        if failed > 0 {
            output("experiment: \(failed) cell(s) failed; their errors are in \(plan.output)/\(ExperimentRecord.fileName) and their logs; rerunning retries them")
        }
        return .completed(failed: failed)
    }

    private func markFinished(_ index: Int, accuracy: Double, steps: Int, wall: Double) {
        records[index].status = .finished
        records[index].error = nil
        records[index].step = steps
        records[index].totalSteps = steps
        records[index].testAccuracy = accuracy
        records[index].wallSeconds = wall
    }

    private func event(_ index: Int, _ text: String) { output("[\(records[index].name)] \(text)") }

    private func saveRecords() throws {
        let formatter = ISO8601DateFormatter()
        try ExperimentRecord(plan: plan.path, output: plan.output, updated: formatter.string(from: Date()), cells: records).write()
    }

    // MARK: - Children

    private func arguments(_ index: Int, _ phase: Job.Phase) throws -> [String] {
        let cell = plan.cells[index]
        let directory = records[index].runDirectory
        let threads = String(options.threadsPerProcess)
        switch phase {
        case .analyze:
            return ["analyze", directory, "--threads", threads] + (options.analyzeSamples.map { ["--samples", String($0)] } ?? [])
        case .train:
            let command = options.launchWorkers > 0 ? ["launch", "--workers", String(options.launchWorkers)] : ["train"]
            if case .resumable = CellState.inspect(cell, runDirectory: directory) {
                return command + ["--resume", directory, "--threads", threads, "--max-steps", String(cell.config.maxSteps)]
            }
            let configFile = Self.configPath(plan, cell)
            try AtomicFileWriter.write(cell.config.yaml(), to: configFile)
            return command + ["--config", configFile, "--run-dir", directory, "--threads", threads]
        }
    }

    private func start(_ index: Int, _ phase: Job.Phase) throws {
        let arguments = try arguments(index, phase)
        let log = records[index].log
        let offset = LogTail.size(of: log)
        let banner = "==> \(ISO8601DateFormatter().string(from: Date())) ssgd \(arguments.joined(separator: " "))\n"
        let descriptor = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        if descriptor >= 0 {
            _ = banner.withCString { write(descriptor, $0, strlen($0)) }
            close(descriptor)
        }
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(executable: options.executable, arguments: arguments, log: log)
        } catch {
            fail(index, phase, "\(error)")
            try saveRecords()
            return
        }
        var progress = CellProgress(started: MonotonicClock.now())
        progress.startStep = records[index].step ?? 0
        progress.step = progress.startStep
        running.append(Job(cell: index, phase: phase, child: child, tail: LogTail(path: log, from: offset + banner.utf8.count), progress: progress))
        switch phase {
        case .train:
            records[index].status = .running
            records[index].attempts += 1
            let how = arguments.contains("--resume") ? "resumed from step \(records[index].step ?? 0)" : "started"
            event(index, "\(how) (pid \(child.pid), \(arguments[0]), log \(log))")
        case .analyze:
            records[index].analysis = .running
            event(index, "analysing (pid \(child.pid))")
        }
        try saveRecords()
    }

    private func fail(_ index: Int, _ phase: Job.Phase, _ reason: String) {
        switch phase {
        case .train:
            records[index].status = .failed
            records[index].error = reason
            event(index, "FAILED: \(reason) (log \(records[index].log))")
        case .analyze:
            records[index].analysis = .failed
            records[index].analysisError = reason
            event(index, "analysis FAILED: \(reason) (log \(records[index].log))")
        }
    }

    private func readLogs() {
        let now = MonotonicClock.now()
        for position in running.indices {
            for line in running[position].tail?.lines() ?? [] { running[position].progress.read(line, at: now) }
            let job = running[position]
            if job.phase == .train {
                records[job.cell].step = job.progress.step
                if let total = job.progress.totalSteps { records[job.cell].totalSteps = total }
                if let rate = job.progress.secondsPerStep(now: now) { estimator.record(plan.cells[job.cell].config, secondsPerStep: rate) }
            }
        }
    }

    private func reapFinished(queue: inout [(cell: Int, phase: Job.Phase)]) throws {
        var position = 0
        while position < running.count {
            guard let ending = running[position].child.poll() else {
                position += 1
                continue
            }
            readLogs()
            let job = running.remove(at: position)
            let now = MonotonicClock.now()
            let seconds = now - job.progress.started
            let index = job.cell
            let cell = plan.cells[index]
            switch job.phase {
            case .train:
                if case .finished(let accuracy, let steps, let wall) = CellState.inspect(cell, runDirectory: records[index].runDirectory) {
                    markFinished(index, accuracy: accuracy, steps: steps, wall: wall)
                    if steps > job.progress.startStep {
                        estimator.record(cell.config, secondsPerStep: seconds / Double(steps - job.progress.startStep))
                    }
                    event(index, String(format: "finished: test accuracy %.2f%%, %d steps, %@", 100 * accuracy, steps, ETAEstimator.text(seconds: seconds)))
                    if options.analyze {
                        if !StopRequest.requested {
                            try start(index, .analyze)
                        } else {
                            records[index].analysis = .pending
                        }
                    } else {
                        records[index].analysis = .skipped
                    }
                } else if StopRequest.requested || ending == .exited(130) {
                    records[index].status = .interrupted
                    event(index, "interrupted at step \(records[index].step ?? 0)\(records[index].totalSteps.map { " of \($0)" } ?? ""); rerunning resumes it")
                } else {
                    fail(index, .train, "\(ending)" + (job.progress.failureText.map { ": \($0)" } ?? ""))
                }
            case .analyze:
                if ending == .exited(0) {
                    records[index].analysis = .done
                    records[index].analysisError = nil
                    estimator.recordAnalysis(seconds: seconds)
                    event(index, "analysed (\(ETAEstimator.text(seconds: seconds)))")
                } else if StopRequest.requested {
                    records[index].analysis = .interrupted
                    event(index, "analysis interrupted; rerunning redoes it")
                } else {
                    fail(index, .analyze, "ssgd analyze \(ending)" + (job.progress.failureText.map { ": \($0)" } ?? ""))
                }
            }
            try saveRecords()
        }
    }

    // MARK: - Progress

    private func summaryLine() -> String {
        let done = records.filter { $0.status == .finished || $0.status == .failed }.count
        let failed = records.filter { $0.status == .failed }.count
        let left = records.count - done - running.filter { $0.phase == .train }.count
        var work: [(config: TrainingConfig, steps: Int, analyses: Int)] = []
        for (index, cell) in plan.cells.enumerated() {
            let record = records[index]
            let analyses = options.analyze && record.analysis != .done && record.status != .failed ? 1 : 0
            switch record.status {
            case .finished: work.append((cell.config, 0, record.analysis == .running ? 0 : analyses))
            case .failed: continue
            case .pending, .running, .interrupted:
                let total = record.totalSteps ?? Self.expectedSteps(cell.config)
                work.append((cell.config, max(0, total - (record.step ?? 0)), analyses))
            }
        }
        let eta = estimator.remaining(work, slots: options.parallel).map { "ETA \(ETAEstimator.text(seconds: $0))" } ?? "ETA unknown until a step is measured"
        var line = "experiment: \(done)/\(records.count) cells done\(failed > 0 ? " (\(failed) failed)" : ""), "
            + "\(running.count) running, \(left) left; \(eta)"
        let active = running.map { job -> String in
            let record = records[job.cell]
            if job.phase == .analyze { return "\(record.name) analysing" }
            return "\(record.name) step \(record.step ?? 0)/\(record.totalSteps.map(String.init) ?? "?")"
        }
        if !active.isEmpty { line += " | " + active.joined(separator: ", ") }
        return line
    }

    /// Total steps of a cell from its config: epochs × ⌊train samples / B⌋ (capped by max_steps).
    static func expectedSteps(_ config: TrainingConfig) -> Int {
        let samples = DatasetLoader.expectedTrainSampleCount(config.dataSpec)
        let total = config.epochs * (samples / max(1, config.batchSize))
        return config.maxSteps > 0 ? min(total, config.maxSteps) : total
    }

    // MARK: - Report

    /// The report of every cell that has evaluations, into OUTPUT/report.
    public func writeReport() throws -> Report {
        let directories = records.map(\.runDirectory).filter {
            FileManager.default.fileExists(atPath: RunDirectory(path: $0).metricsPath)
        }
        guard !directories.isEmpty else { throw PlanError("no cell of \(plan.path) has evaluations yet: nothing to report") }
        let report = try Report.load(runDirectories: directories, options: ReportOptions(alpha: options.alpha ?? plan.alpha))
        _ = try report.write(to: reportDirectory)
        return report
    }

    private func writeReportReportingErrors() {
        do {
            let report = try writeReport()
            output(report.table.markdown)
            output("experiment: report of \(report.runs.count) run(s) in \(reportDirectory)/index.md")
        } catch {
            output("experiment: no report: \(error)")
        }
    }
}
