import Data
import Engine
import Foundation
import Training

// Everything between "the user asked to train" and the loop: resolve the config (file, flags,
// or a run directory being resumed), prepare the run directory, load data, build the model.
// `train`, `launch` and `coordinator` all start here.

public struct RunRequest: Sendable {
    public var configPath: String?
    public var resumeDirectory: String?
    public var runDirectory: String?
    public var overrides: [(key: String, value: String)] = []

    public init(configPath: String?, resumeDirectory: String?, runDirectory: String?, overrides: [(key: String, value: String)]) {
        self.configPath = configPath
        self.resumeDirectory = resumeDirectory
        self.runDirectory = runDirectory
        self.overrides = overrides
    }
}

public struct PreparedRun {
    public let config: TrainingConfig
    public let run: RunDirectory
    public let resuming: Bool

    public init(config: TrainingConfig, run: RunDirectory, resuming: Bool) {
        self.config = config
        self.run = run
        self.resuming = resuming
    }
}

public enum TrainingSession {
    /// Resolve and validate the config and create (or reopen) the run directory. Nothing heavy
    /// happens before validation, so a bad config fails in milliseconds.
    public static func prepare(_ request: RunRequest) throws -> PreparedRun {
        var config: TrainingConfig
        if let resume = request.resumeDirectory {
            let run = RunDirectory(path: resume)
            guard FileManager.default.fileExists(atPath: run.configPath) else {
                throw RunDirectoryError("\(resume) is not a run directory (no config.yaml); pass the folder a previous run printed")
            }
            config = try TrainingConfig.load(path: run.configPath)
            for (key, value) in request.overrides { try config.set(key, value: value) }
            try config.validate()
            try MemoryBudget.check(config)
            try RunLock.acquire(run)
            return PreparedRun(config: config, run: run, resuming: true)
        } else {
            guard let path = request.configPath else {
                throw ConfigError(key: nil, "give --config FILE for a new run, or --resume RUN_DIR to continue one")
            }
            config = try TrainingConfig.load(path: path)
        }
        for (key, value) in request.overrides { try config.set(key, value: value) }
        try config.validate()
        try MemoryBudget.check(config)
        let directory = RunDirectory(path: request.runDirectory ?? RunDirectory.defaultPath(name: config.name, method: config.method.rawValue))
        if try directory.createForNewRun() {
            Console.line("reusing run directory \(directory.path): its earlier start wrote no checkpoint")
        }
        try AtomicFileWriter.write(config.yaml(), to: directory.configPath)
        return PreparedRun(config: config, run: directory, resuming: false)
    }

    /// Data and model for a config; checks the model fits the data set.
    public static func loadDataAndModel(_ config: TrainingConfig) throws -> (DatasetPair, Network) {
        try MemoryBudget.check(config)
        let data = try DatasetLoader.load(config)
        let network = try ModelFactory.make(config, inputShape: data.shape, classes: data.classes)
        return (data, network)
    }

    /// The in-process trainer for a prepared run, initialised fresh or from its last checkpoint.
    public static func localTrainer(_ prepared: PreparedRun) throws -> Trainer {
        let (data, network) = try loadDataAndModel(prepared.config)
        let runner = try LaneRunner(network: network, data: data, config: prepared.config, lanes: prepared.config.lanes)
        let executor = LocalExecutor(runner: runner, unitsPerStep: prepared.config.unitsPerStep)
        let trainer = try Trainer(config: prepared.config, data: data, network: network, executor: executor, run: prepared.run)
        if prepared.resuming { try trainer.restoreLatestCheckpoint() } else { trainer.initializeFresh() }
        return trainer
    }
}
