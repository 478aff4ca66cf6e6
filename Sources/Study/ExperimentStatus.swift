import Foundation
import Runs
import Training

// The state of an experiment's cells. What a cell's run directory holds decides what happens
// to it (finished: skipped; begun: resumed from its checkpoint; a different config: refused);
// experiment.json records, for the user, what the runner last saw and did — statuses, steps,
// errors, final accuracies — and is rewritten (atomically) after every event.

/// Where a cell's run stands, read from its run directory.
enum CellState: Equatable {
    /// No run yet (no config.yaml): start it with `--config`.
    case new
    /// Begun and not finished: `--resume` (from its newest checkpoint, step 0 if none).
    case resumable(checkpointStep: Int?)
    /// summary.json is there and complete (as many steps as the cell asks for).
    case finished(testAccuracy: Double, steps: Int, wallSeconds: Double)
    /// The folder holds a run of another config (the plan changed since it ran).
    case conflicting(String)

    static func inspect(_ cell: ExperimentCell, runDirectory path: String) -> CellState {
        let run = RunDirectory(path: path)
        let manager = FileManager.default
        guard manager.fileExists(atPath: run.configPath) else { return .new }
        let stored: TrainingConfig
        do {
            stored = try TrainingConfig.load(path: run.configPath)
        } catch {
            return .conflicting("its config.yaml does not load (\(error)); move \(path) away to rerun the cell")
        }
        guard stored.trajectoryHash == cell.config.trajectoryHash else {
            return .conflicting("\(path) holds a run of another config (trajectory hash \(stored.trajectoryHash.prefix(12)), the plan's cell is \(cell.config.trajectoryHash.prefix(12))); move it away to rerun the cell, or restore the plan")
        }
        if let data = manager.contents(atPath: run.summaryPath),
           let summary = try? JSONDecoder().decode(TrainingSummary.self, from: data) {
            let end = cell.config.maxSteps > 0 ? min(cell.config.maxSteps, summary.totalSteps) : summary.totalSteps
            if summary.steps >= end {
                return .finished(testAccuracy: summary.testAccuracy, steps: summary.steps, wallSeconds: summary.wallSeconds)
            }
        }
        let newest = Checkpoint.list(directory: run.checkpointsPath).compactMap { file -> Int? in
            Int(((file as NSString).lastPathComponent as NSString).deletingPathExtension.drop { !$0.isNumber })
        }.max()
        return .resumable(checkpointStep: newest)
    }

    /// Whether analysis.json is missing or older than summary.json.
    static func needsAnalysis(runDirectory path: String) -> Bool {
        let run = RunDirectory(path: path)
        func modified(_ file: String) -> Date? {
            (try? FileManager.default.attributesOfItem(atPath: file))?[.modificationDate] as? Date
        }
        guard let analysed = modified(run.file("analysis.json")) else { return true }
        guard let finished = modified(run.summaryPath) else { return true }
        return analysed < finished
    }
}

/// experiment.json: one entry per cell.
public struct ExperimentRecord: Codable, Sendable {
    public var plan: String
    public var output: String
    public var updated: String
    public var cells: [CellRecord]

    public static let fileName = "experiment.json"

    public static func read(output: String) -> ExperimentRecord? {
        let path = (output as NSString).appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(ExperimentRecord.self, from: data)
    }

    func write() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let text = String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
        try AtomicFileWriter.write(text, to: (output as NSString).appendingPathComponent(Self.fileName))
    }
}

public struct CellRecord: Codable, Sendable {
    public enum Status: String, Codable, Sendable {
        case pending, running, finished, failed, interrupted
    }

    public enum AnalysisStatus: String, Codable, Sendable {
        case pending, running, done, failed, skipped, interrupted
    }

    public var name: String
    public var values: [CellValue]
    public var runDirectory: String
    public var log: String
    public var status: Status
    /// The step the run has reached (its newest progress line, checkpoint or summary).
    public var step: Int?
    public var totalSteps: Int?
    /// Processes started for this cell's training, over every invocation.
    public var attempts: Int
    public var error: String?
    public var testAccuracy: Double?
    public var wallSeconds: Double?
    public var analysis: AnalysisStatus
    public var analysisError: String?

    enum CodingKeys: String, CodingKey {
        case name, values, log, status, step, attempts, error, analysis
        case runDirectory = "run_directory", totalSteps = "total_steps", testAccuracy = "test_accuracy"
        case wallSeconds = "wall_seconds", analysisError = "analysis_error"
    }
}
