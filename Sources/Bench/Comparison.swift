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
    public var ssgd: EngineMeasurement
    public var pytorch: EngineMeasurement

    /// ssgd images/s ÷ PyTorch images/s.
    public var ratio: Double { ssgd.imagesPerSecond / pytorch.imagesPerSecond }
    /// PyTorch CPU seconds per step ÷ ssgd's.
    public var cpuRatio: Double { pytorch.cpuSeconds / ssgd.cpuSeconds }
}

public struct ComparisonReport: Codable, Sendable {
    public var coreName: String
    public var torchVersion: String
    /// 1-minute load average before the first and after the last row (nil if unreadable).
    public var loadAtStart: Double?
    public var loadAtEnd: Double?
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
    /// For each configuration: ssgd's row, then PyTorch's, then a progress line with both.
    public static func run(
        _ configurations: [ComparisonConfiguration], coreName: String,
        ssgd: (ComparisonConfiguration) throws -> EngineMeasurement,
        pytorch: (ComparisonConfiguration) throws -> (EngineMeasurement, torchVersion: String),
        progress: (String) -> Void = { _ in }
    ) throws -> ComparisonReport {
        var report = ComparisonReport(
            coreName: coreName, torchVersion: "", loadAtStart: ProcessMeasurements.loadAverage(), loadAtEnd: nil,
            rows: [])
        for configuration in configurations {
            let label = "\(configuration.model) B=\(configuration.batch) \(configuration.threads)T"
            let mine = try ssgd(configuration)
            progress("ssgd    \(label): \(Benchmark.format(mine.imagesPerSecond, 1)) img/s")
            let (theirs, version) = try pytorch(configuration)
            report.torchVersion = version
            progress("pytorch \(label): \(Benchmark.format(theirs.imagesPerSecond, 1)) img/s")
            report.rows.append(ComparisonRow(configuration: configuration, ssgd: mine, pytorch: theirs))
        }
        report.loadAtEnd = ProcessMeasurements.loadAverage()
        return report
    }

    /// The report as an aligned text table.
    public static func text(_ report: ComparisonReport) -> String {
        func load(_ value: Double?) -> String { value.map { Benchmark.format($0, 2) } ?? "?" }
        var lines = [
            "ssgd vs PyTorch \(report.torchVersion), OpenBLAS core \(report.coreName), "
                + "load average \(load(report.loadAtStart)) at start, \(load(report.loadAtEnd)) at end",
            "ratio = ssgd img/s ÷ PyTorch img/s; CPU ratio = PyTorch CPU ms ÷ ssgd CPU ms per step (> 1: ssgd faster)",
            "",
        ]
        let widths = [12, 6, 8, 11, 14, 7, 12, 15, 10, 13, 16]
        lines.append(Benchmark.row([
            "model", "batch", "threads", "ssgd img/s", "PyTorch img/s", "ratio", "ssgd CPU ms", "PyTorch CPU ms",
            "CPU ratio", "ssgd peak MB", "PyTorch peak MB",
        ], widths: widths))
        for row in report.rows {
            let c = row.configuration
            lines.append(Benchmark.row([
                c.model, "\(c.batch)", "\(c.threads)", Benchmark.format(row.ssgd.imagesPerSecond, 1),
                Benchmark.format(row.pytorch.imagesPerSecond, 1), Benchmark.format(row.ratio, 2) + "×",
                Benchmark.format(row.ssgd.cpuSeconds * 1000, 1), Benchmark.format(row.pytorch.cpuSeconds * 1000, 1),
                Benchmark.format(row.cpuRatio, 2) + "×", Benchmark.megabytes(row.ssgd.peakResidentBytes),
                Benchmark.megabytes(row.pytorch.peakResidentBytes),
            ], widths: widths))
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
