import Data
import Engine
import Foundation
import Training

#if canImport(Glibc)
import Glibc
#endif

// What the runner learns from a running cell's log: the lines `ssgd train` prints (Trainer:
// "training …: T steps of B", "resumed from … at step S", "step N/T …", "evaluating at step N",
// "stopped at step N of T", "ssgd: error: …"), read as they are appended. Measured seconds per step feed the ETA.

/// The new lines of a growing file, from an offset on (a cell's log, appended per attempt).
final class LogTail {
    private let descriptor: Int32
    private var pending = [UInt8]()

    init?(path: String, from offset: Int) {
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        lseek(descriptor, off_t(offset), SEEK_SET)
    }

    deinit { close(descriptor) }

    /// Whole lines appended since the last call.
    func lines() -> [String] {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            pending.append(contentsOf: buffer[0..<count])
        }
        var lines: [String] = []
        while let newline = pending.firstIndex(of: 0x0A) {
            lines.append(String(decoding: pending[..<newline], as: UTF8.self))
            pending.removeSubrange(...newline)
        }
        return lines
    }

    static func size(of path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }
}

/// One attempt of one cell, as its log tells it.
struct CellProgress {
    let started: Double
    var startStep = 0
    var step = 0
    var totalSteps: Int?
    /// (time, step) of the first and latest progress lines.
    var firstMeasured: (time: Double, step: Int)?
    var latestMeasured: (time: Double, step: Int)?
    var error: String?
    var lastText = ""

    init(started: Double) { self.started = started }

    mutating func read(_ line: String, at time: Double) {
        if !line.trimmingCharacters(in: .whitespaces).isEmpty { lastText = line }
        if line.hasPrefix("ssgd: error: ") {
            error = String(line.dropFirst("ssgd: error: ".count))
        } else if line.hasPrefix("step "), let (done, total) = Self.fraction(after: "step ", in: line) {
            step = done
            totalSteps = total
            if firstMeasured == nil { firstMeasured = (time, done) }
            latestMeasured = (time, done)
        } else if line.hasPrefix("evaluating at step "), let at = Int(line.dropFirst("evaluating at step ".count).prefix { $0.isNumber }) {
            step = at
            if firstMeasured == nil { firstMeasured = (time, at) }
            latestMeasured = (time, at)
        } else if line.hasPrefix("training "), let range = line.range(of: ": "), let total = Int(line[range.upperBound...].prefix { $0.isNumber }) {
            totalSteps = total
        } else if line.hasPrefix("resumed from "), let range = line.range(of: " at step ", options: .backwards),
                  let at = Int(line[range.upperBound...].prefix { $0.isNumber }) {
            startStep = at
            step = at
        } else if line.hasPrefix("stopped at step "), let at = Int(line.dropFirst("stopped at step ".count).prefix { $0.isNumber }) {
            step = at
        }
    }

    /// "N/T" right after `prefix`.
    static func fraction(after prefix: String, in line: String) -> (Int, Int)? {
        let rest = line.dropFirst(prefix.count)
        let parts = rest.prefix { !$0.isWhitespace }.split(separator: "/")
        guard parts.count == 2, let done = Int(parts[0]), let total = Int(parts[1]) else { return nil }
        return (done, total)
    }

    /// Seconds per step measured so far: between the first and latest progress lines when they
    /// are apart, else from the attempt's start (which includes loading the data).
    func secondsPerStep(now: Double) -> Double? {
        if let first = firstMeasured, let last = latestMeasured, last.step > first.step {
            return (last.time - first.time) / Double(last.step - first.step)
        }
        if let last = latestMeasured, last.step > startStep { return (last.time - started) / Double(last.step - startStep) }
        return nil
    }

    /// The most useful line for a failure: the error line, else the last line.
    var failureText: String? { error ?? (lastText.isEmpty ? nil : lastText) }
}

/// Remaining time from measured seconds per step. Cells that differ only in seed share a speed
/// (their class); a class not measured yet is estimated from the measured ones' mean seconds per
/// unit of work, work = batch size × forward multiply-accumulates per sample × 2 for adversarial
/// training (two forward/backward passes per unit).
struct ETAEstimator {
    /// Measured seconds per step, by class.
    private(set) var rates: [String: Double] = [:]
    private var workOf: [String: Double] = [:]
    private var macsOf: [String: Int] = [:]
    /// Seconds per analysis, measured.
    private(set) var analysisSeconds: [Double] = []

    static func speedClass(_ config: TrainingConfig) -> String {
        var neutral = config
        neutral.seed = 0
        neutral.name = "cell"
        return neutral.trajectoryHash
    }

    mutating func record(_ config: TrainingConfig, secondsPerStep: Double) {
        let key = Self.speedClass(config)
        rates[key] = secondsPerStep
        workOf[key] = work(config)
    }

    /// Work of one step (see the type's comment); the model's multiply-accumulates are counted
    /// once per model and data shape.
    mutating func work(_ config: TrainingConfig) -> Double {
        var shapeOnly = config
        shapeOnly.method = .vanilla
        shapeOnly.batchSize = shapeOnly.ghostBatch
        let key = Self.speedClass(shapeOnly)
        if macsOf[key] == nil {
            let (shape, classes) = DatasetLoader.inputShapeAndClasses(config.dataSpec)
            macsOf[key] = (try? ModelFactory.make(config, inputShape: shape, classes: classes)).map { ModelInfo($0).forwardMACs } ?? 1
        }
        return Double(config.batchSize) * Double(max(1, macsOf[key] ?? 1)) * (config.method == .adversarial ? 2 : 1)
    }

    mutating func recordAnalysis(seconds: Double) { analysisSeconds.append(seconds) }

    mutating func secondsPerStep(_ config: TrainingConfig) -> Double? {
        if let rate = rates[Self.speedClass(config)] { return rate }
        let perWork = rates.compactMap { key, rate in workOf[key].map { rate / $0 } }
        guard !perWork.isEmpty else { return nil }
        return perWork.reduce(0, +) / Double(perWork.count) * work(config)
    }

    /// Seconds of work left: (config, steps left, analyses left) per cell, over `slots` at once;
    /// nil until anything is measured.
    mutating func remaining(_ work: [(config: TrainingConfig, steps: Int, analyses: Int)], slots: Int) -> Double? {
        guard !rates.isEmpty else { return nil }
        let analysis = analysisSeconds.isEmpty ? 0 : analysisSeconds.reduce(0, +) / Double(analysisSeconds.count)
        var total = 0.0
        for item in work {
            guard let rate = secondsPerStep(item.config) else { return nil }
            total += rate * Double(item.steps) + analysis * Double(item.analyses)
        }
        return total / Double(max(1, slots))
    }

    static func text(seconds: Double) -> String {
        let whole = Int(seconds.rounded())
        if whole < 60 { return "\(whole)s" }
        if whole < 3600 { return "\(whole / 60)m \(String(format: "%02d", whole % 60))s" }
        return "\(whole / 3600)h \(String(format: "%02d", (whole % 3600) / 60))m"
    }
}
