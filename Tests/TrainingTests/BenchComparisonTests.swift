import Bench
import Foundation
import Testing
import TestSupport

// `ssgd bench --compare` without PyTorch: /bin/sh as the "python" runs a stand-in for
// tools/pytorch_bench.py (a shell script the test writes; run through /bin/sh rather than
// executed, so a file just written cannot be "busy" while parallel tests fork), which answers
// for the configuration it was given. Checks the arguments, the JSON reading, the interleaving
// and the table — never timing thresholds.
@Suite struct BenchComparisonTests {
    static let shell = "/bin/sh"

    /// A folder with a `pytorch_bench.sh` stub. It records its arguments in `arguments.txt`
    /// and writes pytorch_bench.py's JSON for the configuration it was asked for (10 img/s,
    /// 6300 ms CPU per step, 123.4 MB peak), or fails with `failure` when given.
    static func fakeScript(failure: String? = nil, row: Bool = true) throws -> (folder: URL, script: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ssgd-fake-python-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let results = row
            ? #"{"model": "$model", "batch": $batch, "threads": $threads, "step_ms": 6400.0, "cpu_ms": 6300.0, "iterations": 3, "images_per_second": 10.0, "gflops": 16.9}"#
            : ""
        let body = failure.map { "echo \"\($0)\" >&2\nexit 3" } ?? """
            cat > "$out" <<EOF
            {"torch": "9.9.9+fake", "peak_rss_bytes": 123400000, "results": [\(results)]}
            EOF
            """
        let script = """
            #!/bin/sh
            echo "$@" > "\(folder.path)/arguments.txt"
            while [ $# -gt 0 ]; do
              case "$1" in
                --models) model="$2";; --batches) batch="$2";; --threads) threads="$2";; --json) out="$2";;
              esac
              shift
            done
            \(body)

            """
        let path = folder.appendingPathComponent("pytorch_bench.sh").path
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        return (folder, path)
    }

    @Test func thePyTorchRunnerPassesTheConfigurationAndReadsTheScriptsJSON() throws {
        let (folder, script) = try Self.fakeScript()
        defer { try? FileManager.default.removeItem(at: folder) }
        let runner = PyTorchRunner(python: Self.shell, script: script, iterations: 4)
        let (measurement, version) = try runner.measure(ComparisonConfiguration(model: "densenet40", batch: 64, threads: 1))
        #expect(version == "9.9.9+fake")
        #expect(measurement == EngineMeasurement(
            imagesPerSecond: 10, stepSeconds: 6.4, cpuSeconds: 6.3, peakResidentBytes: 123_400_000))
        let arguments = try String(contentsOf: folder.appendingPathComponent("arguments.txt"), encoding: .utf8)
        #expect(arguments.hasPrefix(
            "--models densenet40 --batches 64 --threads 1 --iterations 4 --json "), "\(arguments)")
    }

    @Test func aFailingPythonIsReportedWithItsStatusAndOutput() throws {
        let (folder, script) = try Self.fakeScript(failure: "ModuleNotFoundError: No module named 'torch'")
        defer { try? FileManager.default.removeItem(at: folder) }
        let runner = PyTorchRunner(python: Self.shell, script: script, iterations: 1)
        let error = #expect(throws: BenchProcessError.self) {
            try runner.measure(ComparisonConfiguration(model: "mlp", batch: 8, threads: 1))
        }
        #expect(error?.status == 3)
        #expect(error?.description.contains("No module named 'torch'") == true)
    }

    @Test func aScriptWithoutTheRequestedRowIsAnError() throws {
        let (folder, script) = try Self.fakeScript(row: false)
        defer { try? FileManager.default.removeItem(at: folder) }
        let runner = PyTorchRunner(python: Self.shell, script: script, iterations: 1)
        let error = #expect(throws: BenchProcessError.self) {
            try runner.measure(ComparisonConfiguration(model: "mlp", batch: 8, threads: 2))
        }
        #expect(error?.description.contains("no row for mlp B=8 2T") == true)
    }

    @Test func rowsAlternateSSGDThenPyTorchAndTheTableShowsRatiosAndMemory() throws {
        let grid = ComparisonConfiguration.grid(models: ["vgg16", "densenet40"], batches: [64], threads: [1, 2])
        #expect(grid.map { "\($0.model)/\($0.threads)" } == ["vgg16/1", "vgg16/2", "densenet40/1", "densenet40/2"])
        var calls = [String]()
        let report = try Comparison.run(
            grid, coreName: "Zen",
            ssgd: { configuration in
                calls.append("ssgd \(configuration.model) \(configuration.threads)")
                return EngineMeasurement(
                    imagesPerSecond: 19.4, stepSeconds: 3.3, cpuSeconds: 3.2, peakResidentBytes: 512_300_000)
            },
            pytorch: { configuration in
                calls.append("pytorch \(configuration.model) \(configuration.threads)")
                return (EngineMeasurement(
                    imagesPerSecond: 10, stepSeconds: 6.4, cpuSeconds: 6.4, peakResidentBytes: 1_234_500_000), "2.13.0+cpu")
            })
        #expect(calls == [
            "ssgd vgg16 1", "pytorch vgg16 1", "ssgd vgg16 2", "pytorch vgg16 2",
            "ssgd densenet40 1", "pytorch densenet40 1", "ssgd densenet40 2", "pytorch densenet40 2",
        ])
        #expect(report.rows.count == 4)
        #expect(abs(report.rows[0].ratio - 1.94) < 1e-9 && abs(report.rows[0].cpuRatio - 2) < 1e-9)
        let text = Comparison.text(report)
        #expect(text.contains("ssgd vs PyTorch 2.13.0+cpu, OpenBLAS core Zen"), "\(text)")
        let densenet = text.split(separator: "\n").first { $0.hasPrefix("densenet40") }.map(String.init) ?? ""
        for cell in ["64", "19.4", "10.0", "1.94×", "3200.0", "6400.0", "2.00×", "512.3", "1234.5"] {
            #expect(densenet.contains(cell), "\(cell) in \(densenet)")
        }
        let decoded = try JSONDecoder().decode(ComparisonReport.self, from: try report.json())
        #expect(decoded.rows == report.rows)
    }

    @Test func roundsAlternateAndTheRatioIsTheMedianOfTheRounds() throws {
        var calls = [String]()
        var ssgdRates = [100.0, 300.0, 200.0]  // round by round
        var torchRates = [100.0, 100.0, 400.0]  // ratios 1.0, 3.0, 0.5: median 1.0
        let report = try Comparison.run(
            [ComparisonConfiguration(model: "mlp", batch: 64, threads: 2)], coreName: "Zen", rounds: 3,
            ssgd: { _ in
                calls.append("ssgd")
                let rate = ssgdRates.removeFirst()
                return EngineMeasurement(imagesPerSecond: rate, stepSeconds: 64 / rate, cpuSeconds: 1, peakResidentBytes: Int(rate) * 1_000_000)
            },
            pytorch: { _ in
                calls.append("pytorch")
                let rate = torchRates.removeFirst()
                return (EngineMeasurement(imagesPerSecond: rate, stepSeconds: 64 / rate, cpuSeconds: 2, peakResidentBytes: 5_000_000), "2.13.0+cpu")
            })
        #expect(calls == ["ssgd", "pytorch", "ssgd", "pytorch", "ssgd", "pytorch"])
        let row = try #require(report.rows.first)
        #expect(row.roundRatios == [1.0, 3.0, 0.5])
        #expect(row.ratio == 1.0)  // not 200 / 100, the ratio of the medians
        #expect(row.ssgd.imagesPerSecond == 200 && row.pytorch.imagesPerSecond == 100)
        #expect(row.ssgd.peakResidentBytes == 300_000_000)  // the largest
        let text = Comparison.text(report)
        #expect(text.contains("3 rounds per row"), "\(text)")
        let line = text.split(separator: "\n").first { $0.hasPrefix("mlp") }.map(String.init) ?? ""
        #expect(line.contains("1.00×") && line.contains("0.50–3.00"), "\(line)")
        let decoded = try JSONDecoder().decode(ComparisonReport.self, from: try report.json())
        #expect(decoded.rows == report.rows && decoded.rounds == 3)
        // A report written before rounds existed still reads, its ratio that of the two rates.
        let old = #"{"coreName":"Zen","torchVersion":"2","rows":[{"configuration":{"model":"mlp","batch":8,"threads":1},"#
            + #""ssgd":{"imagesPerSecond":30,"stepSeconds":1,"cpuSeconds":1,"peakResidentBytes":1},"#
            + #""pytorch":{"imagesPerSecond":20,"stepSeconds":1,"cpuSeconds":1,"peakResidentBytes":1}}]}"#
        let legacy = try JSONDecoder().decode(ComparisonReport.self, from: Data(old.utf8))
        #expect(legacy.rows.first?.ratio == 1.5 && legacy.rounds == nil)
    }

    @Test func compareWithoutPythonExplainsHowToGetOne() throws {
        let result = try SSGDProcess.run(["bench", "--compare", "--models", "mlp"], timeout: 60)
        #expect(result.status != 0)
        #expect(result.output.contains("--compare needs a Python with PyTorch"), "\(result.output)")
        #expect(result.output.contains("pip install torch==2.13.0+cpu"), "\(result.output)")
    }

    @Test func compareRunsAnSSGDChildAndTheScriptForEachRow() throws {
        let (folder, script) = try Self.fakeScript()
        defer { try? FileManager.default.removeItem(at: folder) }
        let json = folder.appendingPathComponent("compare.json").path
        let result = try SSGDProcess.run([
            "bench", "--compare", "--python", Self.shell, "--script", script, "--models", "mlp", "--batches", "8",
            "--threads", "1", "--iterations", "1", "--json", json,
        ], timeout: 120)
        #expect(result.status == 0, "\(result.output)")
        let lines = result.output.split(separator: "\n").map(String.init)
        let ssgdLine = lines.firstIndex { $0.hasPrefix("ssgd    mlp B=8 1T") }
        let torchLine = lines.firstIndex { $0.hasPrefix("pytorch mlp B=8 1T: 10.0 img/s") }
        #expect(ssgdLine != nil && torchLine != nil && ssgdLine! < torchLine!, "\(result.output)")
        let data = try #require(FileManager.default.contents(atPath: json))
        let report = try JSONDecoder().decode(ComparisonReport.self, from: data)
        let row = try #require(report.rows.first)
        #expect(row.configuration == ComparisonConfiguration(model: "mlp", batch: 8, threads: 1))
        #expect(row.ssgd.imagesPerSecond > 0 && row.ssgd.cpuSeconds > 0)
        // The child's own peak: more than nothing, far less than the machine.
        #expect(row.ssgd.peakResidentBytes > 1_000_000 && row.ssgd.peakResidentBytes < 4_000_000_000)
        #expect(row.pytorch.peakResidentBytes == 123_400_000)
    }

    /// The same CPU runs kernels of different speed (and bits), and a machine image may pin one:
    /// a figure's header says which kernel ran and whether the environment chose it.
    @Test func theHeaderSaysWhetherTheEnvironmentPinnedTheKernel() throws {
        let arguments = ["bench", "--quick", "--models", "mlp", "--batches", "2", "--threads", "1", "--no-spectral", "--no-sgemm"]
        #if arch(x86_64)
        let pinned = try SSGDProcess.run(arguments, environment: ["OPENBLAS_CORETYPE": "Haswell"], timeout: 120)
        #expect(pinned.status == 0, "\(pinned.output)")
        #expect(pinned.output.contains("OpenBLAS core: Haswell (OPENBLAS_CORETYPE=Haswell)"), "\(pinned.output)")
        #endif
        let own = try SSGDProcess.run(arguments, environment: ["OPENBLAS_CORETYPE": ""], timeout: 120)
        #expect(own.status == 0, "\(own.output)")
        #expect(own.output.contains("(OpenBLAS's own choice)"), "\(own.output)")
        let measurement = EngineMeasurement(imagesPerSecond: 1, stepSeconds: 1, cpuSeconds: 1, peakResidentBytes: 1)
        let report = try Comparison.run(
            [ComparisonConfiguration(model: "mlp", batch: 8, threads: 1)], coreName: "Zen", coreChoice: "OPENBLAS_CORETYPE=Zen",
            ssgd: { _ in measurement }, pytorch: { _ in (measurement, "2") })
        #expect(Comparison.text(report).contains("OpenBLAS core Zen (OPENBLAS_CORETYPE=Zen)"), "\(Comparison.text(report))")
    }

    @Test func procStatusFieldsAreReadInKibibytes() {
        let status = "Name:\tssgd\nVmPeak:\t  2048 kB\nVmHWM:\t    1536 kB\nVmRSS:\t 1024 kB\n"
        #expect(ProcessMeasurements.kibibytes(field: "VmHWM", in: status) == 1536)
        #expect(ProcessMeasurements.kibibytes(field: "VmSwap", in: status) == nil)
        #expect(ProcessMeasurements.peakResidentBytes() > 0)
    }
}
