import Foundation
import Runs
import Training

// One run directory as `ssgd report` sees it: config.yaml and metrics.jsonl (required),
// summary.json (absent while a run is unfinished) and analysis.json (written by `ssgd analyze`;
// optional, decoded tolerantly so a newer or partial file never stops a report).

public struct ReportRun: Sendable {
    public var path: String
    public var config: TrainingConfig
    public var summary: TrainingSummary?
    /// Evaluations in file order (one per metrics.jsonl line that decodes).
    public var records: [EvaluationRecord]
    public var analysis: ReportedAnalysis?
    /// Problems that did not stop loading (an undecodable metrics line, a broken analysis.json).
    public var warnings: [String]

    public init(path: String, config: TrainingConfig, summary: TrainingSummary? = nil,
                records: [EvaluationRecord], analysis: ReportedAnalysis? = nil, warnings: [String] = []) {
        self.path = path
        self.config = config
        self.summary = summary
        self.records = records
        self.analysis = analysis
        self.warnings = warnings
    }

    /// Final test accuracy: summary.json's, else the last evaluation's.
    public var testAccuracy: Double? { summary?.testAccuracy ?? records.last?.testAccuracy }
    public var trainAccuracy: Double? { summary?.trainAccuracy ?? records.last?.trainAccuracy }

    /// The config hash recorded in summary.json, else the one computed from config.yaml (equal
    /// for runs written by this version).
    public var configHash: String { summary?.configHash ?? config.trajectoryHash }

    /// Largest singular value per weight matrix: analysis.json's `sigma_max` (many power
    /// iterations) when present, else the last evaluation's `sigma`.
    public var sigmaMax: [String: Double] {
        if let fromAnalysis = analysis?.sigmaMax, !fromAnalysis.isEmpty { return fromAnalysis }
        return (records.last?.sigma ?? [:]).mapValues(Double.init)
    }

    /// Read a run directory. Throws `ReportError.unusableRun` naming the directory and the
    /// missing or broken file.
    public static func load(path: String) throws -> ReportRun {
        let run = RunDirectory(path: path)
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ReportError.unusableRun(path: path, reason: "not a directory")
        }
        guard manager.fileExists(atPath: run.configPath) else {
            throw ReportError.unusableRun(path: path, reason: "no config.yaml (is this a run directory?)")
        }
        let config: TrainingConfig
        do {
            config = try TrainingConfig.load(path: run.configPath)
        } catch {
            throw ReportError.unusableRun(path: path, reason: "config.yaml: \(error)")
        }
        guard let metricsData = manager.contents(atPath: run.metricsPath) else {
            throw ReportError.unusableRun(path: path, reason: "no metrics.jsonl (has the run evaluated yet?)")
        }
        var warnings: [String] = []
        let decoder = JSONDecoder()
        var records: [EvaluationRecord] = []
        var badLines: [Int] = []
        for (index, line) in String(decoding: metricsData, as: UTF8.self).split(separator: "\n").enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            if let record = try? decoder.decode(EvaluationRecord.self, from: Data(trimmed.utf8)) {
                records.append(record)
            } else {
                badLines.append(index + 1)
            }
        }
        if !badLines.isEmpty {
            warnings.append("\(run.metricsPath): skipped \(badLines.count) line(s) that are not evaluation records (line \(badLines.map(String.init).joined(separator: ", ")))")
        }
        guard !records.isEmpty else {
            throw ReportError.unusableRun(path: path, reason: "metrics.jsonl holds no evaluation records")
        }
        var summary: TrainingSummary?
        if let data = manager.contents(atPath: run.summaryPath) {
            do {
                summary = try decoder.decode(TrainingSummary.self, from: data)
            } catch {
                warnings.append("\(run.summaryPath): not a training summary, ignored (\(error))")
            }
        }
        var analysis: ReportedAnalysis?
        let analysisPath = run.file("analysis.json")
        if let data = manager.contents(atPath: analysisPath) {
            do {
                analysis = try decoder.decode(ReportedAnalysis.self, from: data)
            } catch {
                warnings.append("\(analysisPath): not JSON, ignored (\(error))")
            }
        }
        return ReportRun(path: path, config: config, summary: summary, records: records,
                         analysis: analysis, warnings: warnings)
    }
}

public enum ReportError: Error, CustomStringConvertible, Equatable {
    case unusableRun(path: String, reason: String)
    case noUsableRuns([String])
    case noRunDirectories

    public var description: String {
        switch self {
        case .unusableRun(let path, let reason):
            return "run directory \(path): \(reason)"
        case .noUsableRuns(let problems):
            return "no run directory could be read:\n  " + problems.joined(separator: "\n  ")
        case .noRunDirectories:
            return "give at least one run directory (each holds config.yaml and metrics.jsonl)"
        }
    }
}

/// RUN_DIR/analysis.json as written by `ssgd analyze`. Every field is optional and a field of
/// an unexpected type is read as absent, so the report works with older, newer or partial files.
public struct ReportedAnalysis: Decodable, Sendable, Equatable {
    public struct NormStatistics: Decodable, Sendable, Equatable {
        public var mean: Double?
        public var median: Double?
        public var max: Double?

        enum CodingKeys: String, CodingKey { case mean, median, max }
        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            mean = container.lenient(Double.self, .mean)
            median = container.lenient(Double.self, .median)
            max = container.lenient(Double.self, .max)
        }
    }

    public struct Eigenvalue: Decodable, Sendable, Equatable {
        public var value: Double?
        public var iterations: Int?
        public var relativeChange: Double?

        enum CodingKeys: String, CodingKey {
            case value, iterations
            case relativeChange = "relative_change"
        }
        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            value = container.lenient(Double.self, .value)
            iterations = container.lenient(Int.self, .iterations)
            relativeChange = container.lenient(Double.self, .relativeChange)
        }
    }

    /// A measurement on the training and on the test data.
    public struct Split<Value: Decodable & Sendable & Equatable>: Decodable, Sendable, Equatable {
        public var train: Value?
        public var test: Value?

        enum CodingKeys: String, CodingKey { case train, test }
        public init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            train = container.lenient(Value.self, .train)
            test = container.lenient(Value.self, .test)
        }
    }

    public var step: Int?
    public var samples: Int?
    public var inputGradientNorm: Split<NormStatistics>?
    public var hessianMaxEigenvalue: Split<Eigenvalue>?
    /// Singular values of each weight matrix, descending.
    public var singularValues: [String: [Double]]?
    public var sigmaMax: [String: Double]?

    enum CodingKeys: String, CodingKey {
        case step, samples
        case inputGradientNorm = "input_gradient_norm"
        case hessianMaxEigenvalue = "hessian_max_eigenvalue"
        case singularValues = "singular_values"
        case sigmaMax = "sigma_max"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        step = container.lenient(Int.self, .step)
        samples = container.lenient(Int.self, .samples)
        inputGradientNorm = container.lenient(Split<NormStatistics>.self, .inputGradientNorm)
        hessianMaxEigenvalue = container.lenient(Split<Eigenvalue>.self, .hessianMaxEigenvalue)
        singularValues = container.lenient([String: [Double]].self, .singularValues)
        sigmaMax = container.lenient([String: Double].self, .sigmaMax)
    }
}

extension KeyedDecodingContainer {
    /// The value under `key`, or nil when it is missing, null or of another type.
    fileprivate func lenient<T: Decodable>(_ type: T.Type, _ key: Key) -> T? {
        (try? decodeIfPresent(type, forKey: key)) ?? nil
    }
}
