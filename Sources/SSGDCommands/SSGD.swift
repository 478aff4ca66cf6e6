import ArgumentParser
import Cluster
import Engine
import Runs
import Synchronization
import Training
import Transport

// The `ssgd` command line. The executable (Sources/ssgd/main.swift) only calls `SSGD.main()`;
// the fault-injection test binary (Tests/FaultInjection) calls `SSGD.main(workerFaultHooks:)`.

public struct SSGD: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ssgd",
        abstract: "Distributed synchronous SGD with spectral norm regularization (Yoshida & Miyato 2017).",
        discussion: """
            Start with: ssgd launch --config configs/quickstart.yaml --workers 2
            Every config key is documented in docs/configuration.md.
            """,
        subcommands: [
            Train.self, Launch.self, CoordinatorCommand.self, WorkerCommand.self, AggregatorCommand.self, KeygenCommand.self,
            StatusCommand.self, ModelCommand.self, DataCommand.self, Export.self, Import.self, Bench.self, Plan.self, Analyze.self, Report.self,
            ExperimentCommand.self,
        ])

    public init() {}

    /// Runs the command line (the process's whole life), first setting what every command
    /// shares: freed memory is kept for reuse (Transport/HeapPolicy.swift).
    public static func main() {
        HeapPolicy.keepFreedMemory()
        main(nil)
    }

    /// Runs the command line with fault hooks in every worker this process runs (tests only).
    public static func main(workerFaultHooks: WorkerFaultHooks) {
        installedWorkerFaultHooks.withLock { $0 = workerFaultHooks }
        main()
    }

    /// What `worker` gives its Worker: none unless `main(workerFaultHooks:)` installed some.
    static var workerFaultHooks: WorkerFaultHooks { installedWorkerFaultHooks.withLock { $0 } }
    private static let installedWorkerFaultHooks = Mutex(WorkerFaultHooks())
}

/// Flags shared by every command that trains (train, launch, coordinator).
struct TrainingOptions: ParsableArguments {
    @Option(name: .long, help: "Experiment config (YAML). See configs/ and docs/configuration.md.")
    var config: String?

    @Option(name: .long, help: "Continue the run in this directory from its last good checkpoint.")
    var resume: String?

    @Option(name: .long, help: "Run directory for a new run (default: runs/NAME-METHOD-TIMESTAMP).")
    var runDir: String?

    @Option(name: .long, help: "Random seed (overrides the config's seed).")
    var seed: Int?

    @Option(name: .long, help: "Number of epochs (overrides the config; sets the LR schedule).")
    var epochs: Int?

    @Option(name: .long, help: "Stop after this many steps in total (smoke runs; 0 = no limit). The LR schedule still follows --epochs.")
    var maxSteps: Int?

    @Option(name: .long, help: "Lanes (single-threaded compute contexts, OpenBLAS at one thread each): train runs this many, launch gives each worker this many (0: the cores shared out), coordinator uses this many OpenBLAS threads for its own update. Never changes the result.")
    var threads: Int?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override any config key, e.g. --set lr=0.5 (repeatable).", valueName: "key=value"))
    var assignments: [String] = []

    func validate() throws {
        if config == nil && resume == nil {
            throw ValidationError("give --config FILE for a new run, or --resume RUN_DIR to continue one")
        }
        if config != nil && resume != nil {
            throw ValidationError("--config and --resume exclude each other: a resumed run keeps the config in its run directory")
        }
        if resume != nil && runDir != nil {
            throw ValidationError("--run-dir is for new runs; --resume already names the run directory")
        }
        for assignment in assignments where !assignment.contains("=") {
            throw ValidationError("--set takes key=value, got '\(assignment)'")
        }
    }

    var request: RunRequest {
        var overrides: [(key: String, value: String)] = assignments.map { assignment in
            let parts = assignment.split(separator: "=", maxSplits: 1)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
        if let seed { overrides.append(("seed", String(seed))) }
        if let epochs { overrides.append(("epochs", String(epochs))) }
        if let maxSteps { overrides.append(("max_steps", String(maxSteps))) }
        if let threads { overrides.append(("threads", String(threads))) }
        return RunRequest(configPath: config, resumeDirectory: resume, runDirectory: runDir, overrides: overrides)
    }
}

/// Run a command body, turning any error into one clear line on stderr and exit status 1.
/// A run stopped by Ctrl-C or SIGTERM (after writing its checkpoint, if a step ran) exits with
/// status 130.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
        if StopRequest.requested { throw ExitCode(130) }
    } catch let error as ExitCode {
        throw error
    } catch is StopRequestedError {
        throw ExitCode(130)
    } catch {
        Console.error("ssgd: error: \(error)")
        throw ExitCode(1)
    }
}
