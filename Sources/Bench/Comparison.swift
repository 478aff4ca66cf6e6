import Foundation

// `ssgd bench --compare`: ssgd against PyTorch CPU on the same machine, configuration by
// configuration (model × batch × threads), each engine's row measured right after the other's so
// both see the same load. Each row runs in its own process, so its peak resident memory is that
// configuration's alone: ssgd's child is `ssgd bench` for the one configuration, PyTorch's is
// tools/pytorch_bench.py (the single PyTorch-side definition of the benchmark).
//
// ratio = ssgd images/s ÷ PyTorch images/s (wall time); CPU ratio = PyTorch CPU ms ÷ ssgd CPU ms
// per step (process CPU time, which excludes waiting for a core on a shared machine). Above 1,
// ssgd is faster.

/// One configuration both engines measure.
public struct ComparisonConfiguration: Codable, Sendable, Equatable {
    public var model: String
    public var batch: Int
    public var threads: Int

    public init(model: String, batch: Int, threads: Int) {
        self.model = model
        self.batch = batch
        self.threads = threads
    }

    /// models × batches × threads, in that nesting order.
    public static func grid(models: [String], batches: [Int], threads: [Int]) -> [ComparisonConfiguration] {
        models.flatMap { model in
            batches.flatMap { batch in threads.map { ComparisonConfiguration(model: model, batch: batch, threads: $0) } }
        }
    }
}

/// One engine's figures for one configuration.
public struct EngineMeasurement: Codable, Sendable, Equatable {
    public var imagesPerSecond: Double
    /// Median wall and process-CPU seconds per step.
    public var stepSeconds: Double
    public var cpuSeconds: Double
    /// Peak resident set size of the measuring process, in bytes.
    public var peakResidentBytes: Int

    public init(imagesPerSecond: Double, stepSeconds: Double, cpuSeconds: Double, peakResidentBytes: Int) {
        self.imagesPerSecond = imagesPerSecond
        self.stepSeconds = stepSeconds
        self.cpuSeconds = cpuSeconds
        self.peakResidentBytes = peakResidentBytes
    }
}

public struct ComparisonRow: Codable, Sendable, Equatable {
    public var configuration: ComparisonConfiguration
    /// With several rounds: the median of each figure over the rounds (peak memory: the largest).
    public var ssgd: EngineMeasurement
    public var pytorch: EngineMeasurement
    /// ssgd ÷ PyTorch images/s of each round (one per round; empty in reports from before rounds).
    public var roundRatios: [Double]

    public init(configuration: ComparisonConfiguration, ssgd: EngineMeasurement, pytorch: EngineMeasurement, roundRatios: [Double] = []) {
        self.configuration = configuration
        self.ssgd = ssgd
        self.pytorch = pytorch
        self.roundRatios = roundRatios
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        configuration = try container.decode(ComparisonConfiguration.self, forKey: .configuration)
        ssgd = try container.decode(EngineMeasurement.self, forKey: .ssgd)
        pytorch = try container.decode(EngineMeasurement.self, forKey: .pytorch)
        roundRatios = try container.decodeIfPresent([Double].self, forKey: .roundRatios) ?? []
    }

    /// ssgd images/s ÷ PyTorch images/s: the median of the rounds' ratios, each from an ssgd
    /// measurement and the PyTorch one right after it (so both saw the same load).
    public var ratio: Double {
        roundRatios.isEmpty ? ssgd.imagesPerSecond / pytorch.imagesPerSecond : Benchmark.median(roundRatios)
    }
    /// PyTorch CPU seconds per step ÷ ssgd's.
    public var cpuRatio: Double { pytorch.cpuSeconds / ssgd.cpuSeconds }
}

extension EngineMeasurement {
    /// Median of each timing over `rounds`, the largest peak memory.
    static func median(_ rounds: [EngineMeasurement]) -> EngineMeasurement {
        EngineMeasurement(
            imagesPerSecond: Benchmark.median(rounds.map(\.imagesPerSecond)),
            stepSeconds: Benchmark.median(rounds.map(\.stepSeconds)),
            cpuSeconds: Benchmark.median(rounds.map(\.cpuSeconds)),
            peakResidentBytes: rounds.map(\.peakResidentBytes).max() ?? 0)
    }
}

public struct ComparisonReport: Codable, Sendable {
    public var coreName: String
    /// How the kernel was chosen (BLASThreads.coreChoice; nil in reports written before it).
    public var coreChoice: String?
    public var torchVersion: String
    /// 1-minute load average before the first and after the last row (nil if unreadable).
    public var loadAtStart: Double?
    public var loadAtEnd: Double?
    /// Measurements per engine and configuration (1 in reports from before rounds).
    public var rounds: Int?
    public var rows: [ComparisonRow]

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}

/// A failed measuring process, with the end of what it printed.
public struct BenchProcessError: Error, CustomStringConvertible {
    public var command: String
    public var status: Int32
    public var output: String

    public var description: String {
        let tail = output.split(separator: "\n", omittingEmptySubsequences: false).suffix(12).joined(separator: "\n")
        return "\(command) exited with status \(status):\n\(tail)"
    }
}

public enum Comparison {
    /// For each configuration, `rounds` times: ssgd's measurement, then PyTorch's, each with a
    /// progress line. A row's ratio is the median of its rounds' ratios: on a shared machine the
    /// load drifts over minutes, and a pair measured back to back sees nearly the same load.
    public static func run(
        _ configurations: [ComparisonConfiguration], coreName: String, coreChoice: String? = nil, rounds: Int = 1,
        ssgd: (ComparisonConfiguration) throws -> EngineMeasurement,
        pytorch: (ComparisonConfiguration) throws -> (EngineMeasurement, torchVersion: String),
        progress: (String) -> Void = { _ in }
    ) throws -> ComparisonReport {
        precondition(rounds >= 1, "at least one round")
        var report = ComparisonReport(
            coreName: coreName, coreChoice: coreChoice, torchVersion: "", loadAtStart: ProcessMeasurements.loadAverage(), loadAtEnd: nil,
            rounds: rounds, rows: [])
        for configuration in configurations {
            let label = "\(configuration.model) B=\(configuration.batch) \(configuration.threads)T"
            var mine: [EngineMeasurement] = [], theirs: [EngineMeasurement] = []
            for round in 1...rounds {
                let suffix = rounds > 1 ? " (round \(round)/\(rounds))" : ""
                let ours = try ssgd(configuration)
                progress("ssgd    \(label): \(Benchmark.format(ours.imagesPerSecond, 1)) img/s\(suffix)")
                let (other, version) = try pytorch(configuration)
                report.torchVersion = version
                progress("pytorch \(label): \(Benchmark.format(other.imagesPerSecond, 1)) img/s\(suffix)")
                mine.append(ours)
                theirs.append(other)
            }
            report.rows.append(ComparisonRow(
                configuration: configuration, ssgd: .median(mine), pytorch: .median(theirs),
                roundRatios: zip(mine, theirs).map { $0.imagesPerSecond / $1.imagesPerSecond }))
        }
        report.loadAtEnd = ProcessMeasurements.loadAverage()
        return report
    }

    /// The report as an aligned text table.
    public static func text(_ report: ComparisonReport) -> String {
        func load(_ value: Double?) -> String { value.map { Benchmark.format($0, 2) } ?? "?" }
        var lines = [
            "ssgd vs PyTorch \(report.torchVersion), OpenBLAS core \(Benchmark.coreLabel(report.coreName, report.coreChoice)), "
                + "load average \(load(report.loadAtStart)) at start, \(load(report.loadAtEnd)) at end",
            "ratio = ssgd img/s ÷ PyTorch img/s; CPU ratio = PyTorch CPU ms ÷ ssgd CPU ms per step (> 1: ssgd faster)",
        ]
        let rounds = report.rounds ?? 1
        if rounds > 1 {
            lines.append("\(rounds) rounds per row, ssgd then PyTorch each round: medians; ratio = median of the rounds' "
                + "ratios, range = their smallest and largest; peak MB = the largest")
        }
        lines.append("")
        var widths = [12, 6, 8, 11, 14, 7, 12, 15, 10, 13, 16]
        var header = [
            "model", "batch", "threads", "ssgd img/s", "PyTorch img/s", "ratio", "ssgd CPU ms", "PyTorch CPU ms",
            "CPU ratio", "ssgd peak MB", "PyTorch peak MB",
        ]
        if rounds > 1 {
            widths.insert(12, at: 6)
            header.insert("range", at: 6)
        }
        lines.append(Benchmark.row(header, widths: widths))
        for row in report.rows {
            let c = row.configuration
            var cells = [
                c.model, "\(c.batch)", "\(c.threads)", Benchmark.format(row.ssgd.imagesPerSecond, 1),
                Benchmark.format(row.pytorch.imagesPerSecond, 1), Benchmark.format(row.ratio, 2) + "×",
                Benchmark.format(row.ssgd.cpuSeconds * 1000, 1), Benchmark.format(row.pytorch.cpuSeconds * 1000, 1),
                Benchmark.format(row.cpuRatio, 2) + "×", Benchmark.megabytes(row.ssgd.peakResidentBytes),
                Benchmark.megabytes(row.pytorch.peakResidentBytes),
            ]
            if rounds > 1 {
                let low = row.roundRatios.min() ?? row.ratio, high = row.roundRatios.max() ?? row.ratio
                cells.insert("\(Benchmark.format(low, 2))–\(Benchmark.format(high, 2))", at: 6)
            }
            lines.append(Benchmark.row(cells, widths: widths))
        }
        return lines.joined(separator: "\n")
    }
}

/// tools/pytorch_bench.py for one configuration, in its own process.
public struct PyTorchRunner: Sendable {
    public var python: String
    public var script: String
    public var iterations: Int

    public init(python: String, script: String, iterations: Int) {
        self.python = python
        self.script = script
        self.iterations = iterations
    }

    /// What the script writes with --json.
    struct Output: Decodable {
        var torch: String
        var peakResidentBytes: Int
        var results: [Result]

        enum CodingKeys: String, CodingKey {
            case torch, results
            case peakResidentBytes = "peak_rss_bytes"
        }

        struct Result: Decodable {
            var model: String
            var batch: Int
            var threads: Int
            var stepMilliseconds: Double
            var cpuMilliseconds: Double
            var imagesPerSecond: Double

            enum CodingKeys: String, CodingKey {
                case model, batch, threads
                case stepMilliseconds = "step_ms"
                case cpuMilliseconds = "cpu_ms"
                case imagesPerSecond = "images_per_second"
            }
        }
    }

    public func measure(_ configuration: ComparisonConfiguration) throws -> (EngineMeasurement, torchVersion: String) {
        let data = try MeasuringProcess.runForJSON(executable: python, arguments: [
            script, "--models", configuration.model, "--batches", "\(configuration.batch)",
            "--threads", "\(configuration.threads)", "--iterations", "\(iterations)",
        ])
        let output = try JSONDecoder().decode(Output.self, from: data)
        guard let result = output.results.first(where: {
            $0.model == configuration.model && $0.batch == configuration.batch && $0.threads == configuration.threads
        }) else {
            throw BenchProcessError(
                command: "\(python) \(script)", status: 0,
                output: "its JSON has no row for \(configuration.model) B=\(configuration.batch) \(configuration.threads)T")
        }
        let measurement = EngineMeasurement(
            imagesPerSecond: result.imagesPerSecond, stepSeconds: result.stepMilliseconds / 1000,
            cpuSeconds: result.cpuMilliseconds / 1000, peakResidentBytes: output.peakResidentBytes)
        return (measurement, output.torch)
    }
}

/// `ssgd bench` for one configuration in a child process of `executable` (this ssgd), without
/// the sgemm and spectral measurements, so the child's peak memory is that configuration's.
public struct SSGDRunner: Sendable {
    public var executable: String
    public var iterations: Int

    public init(executable: String, iterations: Int) {
        self.executable = executable
        self.iterations = iterations
    }

    public func measure(_ configuration: ComparisonConfiguration) throws -> EngineMeasurement {
        let data = try MeasuringProcess.runForJSON(executable: executable, arguments: [
            "bench", "--models", configuration.model, "--batches", "\(configuration.batch)",
            "--threads", "\(configuration.threads)", "--iterations", "\(iterations)", "--no-spectral", "--no-sgemm",
        ])
        let report = try JSONDecoder().decode(BenchmarkReport.self, from: data)
        guard let result = report.models.first else {
            throw BenchProcessError(command: "\(executable) bench", status: 0, output: "its JSON has no model row")
        }
        return EngineMeasurement(
            imagesPerSecond: result.imagesPerSecond, stepSeconds: result.stepSeconds, cpuSeconds: result.cpuSeconds,
            peakResidentBytes: report.peakResidentBytes)
    }
}

/// A child process that writes its results as JSON to the file named after `--json`.
public enum MeasuringProcess {
    /// Runs `executable arguments… --json TEMPFILE` and returns the file's bytes.
    public static func runForJSON(executable: String, arguments: [String]) throws -> Data {
        let file = FileManager.default.temporaryDirectory
            .appendingPathComponent("ssgd-bench-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        let output = try run(executable: executable, arguments: arguments + ["--json", file.path])
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw BenchProcessError(command: ([executable] + arguments).joined(separator: " "), status: 0, output: output + "\n(it wrote no JSON file)")
        }
        return data
    }

    /// Runs `executable arguments…` to the end and returns what it printed (stdout and stderr);
    /// a non-zero exit is an error carrying that output.
    public static func run(executable: String, arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let command = ([executable] + arguments).joined(separator: " ")
        do {
            try process.run()
        } catch {
            throw BenchProcessError(command: command, status: -1, output: "could not start it: \(error)")
        }
        let printed = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: printed, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw BenchProcessError(command: command, status: process.terminationStatus, output: output)
        }
        return output
    }
}
