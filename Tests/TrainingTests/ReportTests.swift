import Foundation
import Runs
import Study
import TestSupport
import Testing
import Training
#if canImport(FoundationXML)
import FoundationXML
#endif

// `ssgd report`: the gap definition, grouping into Table 1, well-formed SVG, the paper configs,
// and a real end-to-end run through the binary.

@Suite struct ReportTests {
    // MARK: - Fixture helpers

    /// An evaluation record with the given accuracies (other fields plausible).
    static func record(epoch: Int, train: Double, test: Double, sigma: [String: Float] = [:]) throws -> EvaluationRecord {
        let fields: [String: Any] = [
            "epoch": epoch, "step": epoch * 10, "lr": 0.1,
            "train_loss": 1 - train, "train_accuracy": train, "test_loss": 1 - test, "test_accuracy": test,
            "batch_loss": 1 - train, "batch_accuracy": train,
            "sigma": sigma.mapValues { Double($0) }, "wall_seconds": Double(epoch),
        ]
        return try JSONDecoder().decode(EvaluationRecord.self, from: JSONSerialization.data(withJSONObject: fields))
    }

    static func summary(_ config: TrainingConfig, train: Double, test: Double) throws -> TrainingSummary {
        let fields: [String: Any] = [
            "name": config.name, "model": config.model.rawValue, "method": config.method.rawValue,
            "dataset": config.dataset.rawValue, "train_accuracy": train, "test_accuracy": test,
            "train_loss": 0.1, "test_loss": 0.2, "steps": 100, "total_steps": 100, "epochs": 3.0,
            "wall_seconds": 1.0, "images_per_second": 1.0, "parameter_count": 10,
            "parameters_sha256": String(repeating: "0", count: 64), "config_hash": config.trajectoryHash,
            "data_fingerprint": "none", "workers": 1, "stopped_early": false,
        ]
        return try JSONDecoder().decode(TrainingSummary.self, from: JSONSerialization.data(withJSONObject: fields))
    }

    /// A run directory as `ssgd train` leaves it: config.yaml, metrics.jsonl, summary.json.
    @discardableResult
    static func fakeRun(in parent: String, method: Method, batchSize: Int, seed: UInt64,
                        curve: [(train: Double, test: Double)], analysis: String? = nil) throws -> String {
        var config = TrainingConfig()
        config.name = "nin-\(method.rawValue)-b\(batchSize)-s\(seed)"
        config.model = .nin
        config.dataset = .cifar100
        config.method = method
        config.batchSize = batchSize
        config.ghostBatch = 64
        config.seed = seed
        let path = (parent as NSString).appendingPathComponent(config.name)
        let run = RunDirectory(path: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try AtomicFileWriter.write(config.yaml(), to: run.configPath)
        let encoder = JSONEncoder()
        for (index, point) in curve.enumerated() {
            let sigma: [String: Float] = ["0.weight": Float(3 + index), "2.weight": 2, "10.weight": 1]
            let line = try encoder.encode(record(epoch: index + 1, train: point.train, test: point.test, sigma: sigma))
            try run.appendMetrics(String(decoding: line, as: UTF8.self))
        }
        let last = try #require(curve.last)
        try AtomicFileWriter.write(
            String(decoding: try encoder.encode(summary(config, train: last.train, test: last.test)), as: UTF8.self),
            to: run.summaryPath)
        if let analysis { try AtomicFileWriter.write(analysis, to: run.file("analysis.json")) }
        return path
    }

    static func analysisJSON(gradient: Double, hessian: Double) -> String {
        """
        {"step": 100, "samples": 512,
         "input_gradient_norm": {"train": {"mean": \(gradient), "median": 0.1, "max": 2.0},
                                 "test": {"mean": \(2 * gradient), "median": 0.2, "max": 3.0}},
         "hessian_max_eigenvalue": {"train": {"value": \(hessian), "iterations": 20, "relative_change": 0.001},
                                    "test": {"value": \(hessian + 1), "iterations": 20, "relative_change": "n/a"}},
         "singular_values": {"0.weight": [4.0, 2.0, 0.5, 0.01], "2.weight": [1.0]},
         "sigma_max": {"0.weight": 4.0, "2.weight": 1.0},
         "a_future_field": [1, 2, 3]}
        """
    }

    // MARK: - Generalization gap

    @Test func gapIsTheSmallestTrainMinusTestAboveAlpha() throws {
        let records = try [
            Self.record(epoch: 1, train: 0.50, test: 0.40),  // below α
            Self.record(epoch: 2, train: 0.90, test: 0.60),  // exactly α: excluded
            Self.record(epoch: 3, train: 0.80, test: 0.70),
            Self.record(epoch: 4, train: 0.97, test: 0.81),
            Self.record(epoch: 5, train: 0.99, test: 0.82),
        ]
        #expect(GeneralizationGap.at(0.6, records: records) == 0.80 - 0.70)
        #expect(GeneralizationGap.at(0.75, records: records) == 0.97 - 0.81)
        #expect(GeneralizationGap.at(0.3, records: records) == 0.50 - 0.40)
        #expect(GeneralizationGap.at(0.82, records: records) == nil)
        #expect(GeneralizationGap.at(0.5, records: []) == nil)
    }

    @Test func sampleStatisticsUseTheSampleStandardDeviation() throws {
        let statistics = try #require(SampleStatistics([0.78, 0.82]))
        #expect(abs(statistics.mean - 0.80) < 1e-12)
        #expect(abs(statistics.standardDeviation - 0.04 / 2.0.squareRoot()) < 1e-12)
        #expect(statistics.percentText == "80.00 ± 2.83 (n=2)")
        #expect(SampleStatistics([0.5])?.percentText == "50.00")
        #expect(SampleStatistics([]) == nil)
    }

    // MARK: - Grouping into Table 1

    @Test func runsGroupIntoTableCellsWithMeanAndStandardDeviation() throws {
        let parent = Fixtures.temporaryDirectory("ssgd-report")
        defer { try? FileManager.default.removeItem(atPath: parent) }
        // NIN / CIFAR-100: α = 0.55 by default.
        let a = try Self.fakeRun(in: parent, method: .vanilla, batchSize: 64, seed: 1,
                                 curve: [(0.50, 0.45), (0.70, 0.60), (0.95, 0.78)])
        let b = try Self.fakeRun(in: parent, method: .vanilla, batchSize: 64, seed: 2,
                                 curve: [(0.50, 0.45), (0.80, 0.66), (0.98, 0.82)])
        let c = try Self.fakeRun(in: parent, method: .spectral, batchSize: 64, seed: 1,
                                 curve: [(0.60, 0.58), (0.85, 0.80)])
        let d = try Self.fakeRun(in: parent, method: .vanilla, batchSize: 4096, seed: 1,
                                 curve: [(0.60, 0.50), (0.75, 0.52)])  // never above α
        let e = try Self.fakeRun(in: parent, method: .spectral, batchSize: 4096, seed: 1,
                                 curve: [(0.70, 0.56), (0.90, 0.70)])
        let report = try Report.load(runDirectories: [a, b, c, d, e, a])  // a twice: read once
        #expect(report.runs.count == 5)
        #expect(report.skipped.isEmpty)
        #expect(report.groups.map(\.batchSize) == [64, 4096])
        #expect(report.groups[0].methods == [.vanilla, .spectral])

        let nin = ReportSetting(model: "nin", dataset: .cifar100)
        #expect(report.table.settings == [nin])
        #expect(report.table.alphas[.cifar100] == 0.55)

        let vanilla64 = try #require(report.table.cell(nin, batchSize: 64, method: .vanilla))
        #expect(vanilla64.runCount == 2)
        let accuracy = try #require(vanilla64.testAccuracy)
        #expect(accuracy.count == 2)
        #expect(abs(accuracy.mean - 0.80) < 1e-12)
        #expect(abs(accuracy.standardDeviation - 0.04 / 2.0.squareRoot()) < 1e-12)
        // Gaps: seed 1 min(0.10, 0.17) = 0.10; seed 2 min(0.14, 0.16) = 0.14.
        let gap = try #require(vanilla64.gap)
        #expect(gap.count == 2)
        #expect(abs(gap.mean - 0.12) < 1e-12)

        let spectral64 = try #require(report.table.cell(nin, batchSize: 64, method: .spectral))
        #expect(spectral64.testAccuracy?.mean == 0.80)
        #expect(abs((spectral64.gap?.mean ?? -1) - 0.02) < 1e-12)  // 0.60 − 0.58

        let vanilla4096 = try #require(report.table.cell(nin, batchSize: 4096, method: .vanilla))
        #expect(vanilla4096.testAccuracy?.mean == 0.52)
        #expect(vanilla4096.gap == nil)
        #expect(abs((report.table.cell(nin, batchSize: 4096, method: .spectral)?.gap?.mean ?? -1) - 0.14) < 1e-12)
        #expect(report.table.cell(nin, batchSize: 64, method: .decay) == nil)

        let markdown = report.table.markdown
        #expect(markdown.contains("NIN / CIFAR-100"))
        #expect(markdown.contains("80.00 ± 2.83 (n=2)"))
        #expect(markdown.contains("12.00 ± 2.83 (n=2)"))
        // 64 and 4096: a test-accuracy row and a gap row each, decay and adversarial missing.
        let accuracyRows = markdown.split(separator: "\n").filter { $0.contains("test accuracy |") }
        #expect(accuracyRows.count == 2)
        for row in accuracyRows { #expect(row.filter { $0 == "—" }.count == 2, "\(row)") }
        let gap4096 = try #require(markdown.split(separator: "\n").first { $0.hasPrefix("| | 4096 | gap") })
        #expect(gap4096.contains("| — | — | — | 14.00 |"))
    }

    @Test func unreadableDirectoriesAreSkippedUnlessNoneCanBeRead() throws {
        let parent = Fixtures.temporaryDirectory("ssgd-report")
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let good = try Self.fakeRun(in: parent, method: .decay, batchSize: 64, seed: 1, curve: [(0.9, 0.7)])
        let empty = (parent as NSString).appendingPathComponent("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let report = try Report.load(runDirectories: [good, empty])
        #expect(report.runs.count == 1)
        #expect(report.warnings.count == 1)
        #expect(report.warnings[0].contains(empty) && report.warnings[0].contains("config.yaml"))
        #expect(throws: ReportError.self) { try Report.load(runDirectories: [empty]) }
        do {
            _ = try Report.load(runDirectories: [empty, parent + "/missing"])
        } catch {
            #expect("\(error)".contains(empty) && "\(error)".contains("missing"))
        }
    }

    // MARK: - SVG

    /// Counts the elements and collects the texts an SVG check needs.
    final class SVGInspector: NSObject, XMLParserDelegate {
        var root = ""
        var polylineSeries: [String] = []
        var bars = 0
        var texts: [String: String] = [:]
        private var currentClass: String?

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
                    qualifiedName: String?, attributes: [String: String] = [:]) {
            if root.isEmpty { root = name }
            if name == "polyline", attributes["class"] == "series" { polylineSeries.append(attributes["data-series"] ?? "") }
            if name == "rect", attributes["class"] == "bar" { bars += 1 }
            currentClass = name == "text" ? attributes["class"] : nil
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if let currentClass { texts[currentClass, default: ""] += string }
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            currentClass = nil
        }

        static func inspect(_ svg: String) throws -> SVGInspector {
            let inspector = SVGInspector()
            let parser = XMLParser(data: Data(svg.utf8))
            parser.delegate = inspector
            let parsed = parser.parse()
            #expect(parsed, "SVG is not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "")")
            return inspector
        }
    }

    @Test func figuresAreWellFormedSVGWithOneSeriesPerMethod() throws {
        let parent = Fixtures.temporaryDirectory("ssgd-report")
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let runs = try [
            Self.fakeRun(in: parent, method: .vanilla, batchSize: 4096, seed: 1, curve: [(0.5, 0.4), (0.9, 0.6), (0.99, 0.62)],
                         analysis: Self.analysisJSON(gradient: 0.8, hessian: 40)),
            Self.fakeRun(in: parent, method: .adversarial, batchSize: 4096, seed: 1, curve: [(0.5, 0.45), (0.8, 0.65), (0.9, 0.7)]),
            Self.fakeRun(in: parent, method: .spectral, batchSize: 4096, seed: 1, curve: [(0.5, 0.5), (0.7, 0.66), (0.8, 0.72)],
                         analysis: Self.analysisJSON(gradient: 0.2, hessian: 5)),
        ]
        let report = try Report.load(runDirectories: runs)
        // analysis.json is read tolerantly: a string where a number belongs is absent, not fatal.
        let analysis = try #require(report.runs.first { $0.config.method == .vanilla }?.analysis)
        #expect(analysis.hessianMaxEigenvalue?.test?.value == 41)
        #expect(analysis.hessianMaxEigenvalue?.test?.relativeChange == nil)
        #expect(analysis.inputGradientNorm?.train?.mean == 0.8)

        let figures = Dictionary(uniqueKeysWithValues: report.figures.map { ($0.fileName, $0) })
        let prefix = "nin-cifar100-b4096-"
        #expect(Set(figures.keys) == Set(["test-accuracy", "gap", "sigma-max", "spectrum", "input-gradient", "hessian"].map { prefix + $0 + ".svg" }))
        for (name, figure) in figures {
            let svg = figure.plot.render()
            let inspector = try SVGInspector.inspect(svg)
            #expect(inspector.root == "svg", "\(name)")
            #expect(svg.contains("xmlns=\"http://www.w3.org/2000/svg\"") && svg.contains("version=\"1.1\""))
            #expect(!(inspector.texts["x-label"] ?? "").isEmpty, "\(name) has no x-axis label")
            #expect(!(inspector.texts["y-label"] ?? "").isEmpty, "\(name) has no y-axis label")
            #expect((inspector.texts["title"] ?? "").contains("NIN / CIFAR-100"), "\(name)")
            #expect((inspector.texts["tick"] ?? "").count > 3, "\(name) has no tick labels")
        }
        let accuracy = try SVGInspector.inspect(try #require(figures[prefix + "test-accuracy.svg"]).plot.render())
        #expect(accuracy.polylineSeries == ["vanilla", "adversarial", "spectral"])
        #expect(accuracy.texts["x-label"] == "epoch")
        #expect(accuracy.texts["legend-entry"] == "vanillaadversarialspectral")
        let gap = try SVGInspector.inspect(try #require(figures[prefix + "gap.svg"]).plot.render())
        #expect(gap.polylineSeries.count == 3)
        // σ_max: analysis.json's values for analysed runs, the last evaluation's otherwise.
        let sigma = try #require(figures[prefix + "sigma-max.svg"]).plot
        #expect(sigma.lines.map(\.name) == ["vanilla", "adversarial", "spectral"])
        #expect(sigma.lines[0].points.map { $0.y } == [4.0, 1.0])  // 0.weight, 2.weight from analysis
        #expect(sigma.lines[1].points.map { $0.y } == [5.0, 2.0, 1.0])  // 0, 2, 10 in layer order
        // The spectrum only for analysed runs, on a log axis with decade ticks.
        let spectrum = try #require(figures[prefix + "spectrum.svg"]).plot
        #expect(spectrum.yScale == .log10)
        #expect(spectrum.title.contains("0.weight"))
        let spectrumSVG = try SVGInspector.inspect(spectrum.render())
        #expect(spectrumSVG.polylineSeries == ["vanilla", "spectral"])
        #expect(spectrumSVG.texts["tick"]?.contains("0.01") == true)
        // Bars: train and test for the two analysed methods.
        let hessian = try SVGInspector.inspect(try #require(figures[prefix + "hessian.svg"]).plot.render())
        #expect(hessian.bars == 4)
        #expect(hessian.texts["legend-entry"] == "vanillaspectral")  // no bars, no legend entry
        let gradient = try SVGInspector.inspect(try #require(figures[prefix + "input-gradient.svg"]).plot.render())
        #expect(gradient.bars == 4)
    }

    @Test func svgPlotEscapesTextAndHandlesEmptyAndFlatData() throws {
        var plot = SVGPlot(title: "a < b & \"c\"", xLabel: "x", yLabel: "y")
        plot.addLine("flat", points: [(x: 1, y: 2), (x: 2, y: 2)])
        plot.addLine("<none>", points: [])
        let inspector = try SVGInspector.inspect(plot.render())
        #expect(inspector.texts["title"] == "a < b & \"c\"")
        #expect(inspector.polylineSeries == ["flat", "<none>"])
        let empty = try SVGInspector.inspect(SVGPlot(title: "t", xLabel: "x", yLabel: "y", yScale: .log10).render())
        #expect(empty.texts["no-data"] == "no data")
        #expect(SVGPlot.niceTicks(low: 0.13, high: 0.87) == [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    }

    @Test func layersAreOrderedByTheirNumbers() {
        #expect(ReportFigures.layerOrder(["10.weight", "2.weight", "0.weight", "block1.3.weight", "block1.12.weight"])
                == ["0.weight", "2.weight", "10.weight", "block1.3.weight", "block1.12.weight"])
    }

    // MARK: - Paper configs

    @Test func paperConfigsLoadWithThePapersLearningRates() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("configs/paper").path
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.count == 32)
        var cells = Set<String>()
        for file in files {
            let config = try TrainingConfig.load(path: (folder as NSString).appendingPathComponent(file))
            try config.validate()
            let small = config.batchSize == 64
            #expect(small || config.batchSize == 4096, "\(file)")
            switch (config.model, config.dataset) {
            case (.vgg16, .cifar10): #expect(config.lr == (small ? 0.01 : 0.1), "\(file)")
            case (.nin, .cifar100), (.densenet, .cifar100): #expect(config.lr == (small ? 0.1 : 1.0), "\(file)")
            case (.densenet, .stl10):
                #expect(config.augment == .cropFlip, "\(file)")
                #expect(config.depth == 22, "\(file)")
            default: Issue.record("\(file): not one of the paper's settings")
            }
            if config.model == .densenet && config.dataset == .cifar100 { #expect(config.depth == 40, "\(file)") }
            #expect(config.ghostBatch == 64 || config.ghostBatch == 128, "\(file)")
            #expect(file == "\(config.name).yaml", "\(file) is named \(config.name)")
            cells.insert("\(ReportSetting(config).slug)|\(config.batchSize)|\(config.method.rawValue)")
        }
        #expect(cells.count == 32)  // 4 settings × 2 batch sizes × 4 methods, each once
    }

    // MARK: - End to end

    @Test func reportCommandRendersRealRuns() throws {
        let parent = Fixtures.temporaryDirectory("ssgd-report-e2e")
        defer { try? FileManager.default.removeItem(atPath: parent) }
        var directories: [String] = []
        for method in [Method.vanilla, .spectral] {
            var config = Fixtures.syntheticConfig(method: method, epochs: 3)
            config.evalEveryEpochs = 1
            let directory = (parent as NSString).appendingPathComponent(method.rawValue)
            let trainer = try Fixtures.trainer(config, runDirectory: directory)
            try AtomicFileWriter.write(config.yaml(), to: RunDirectory(path: directory).configPath)
            try trainer.train()
            directories.append(directory)
        }
        let output = (parent as NSString).appendingPathComponent("out")
        let stray = (parent as NSString).appendingPathComponent("not-a-run")
        try FileManager.default.createDirectory(atPath: stray, withIntermediateDirectories: true)
        let result = try SSGDProcess.run(["report"] + directories + [stray, "--output", output])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("warning: skipped run directory \(stray)"))
        #expect(result.output.contains("# Table 1"))

        let table = try String(contentsOfFile: output + "/table1.md", encoding: .utf8)
        #expect(table.contains("MLP-32x32 / synthetic"))
        #expect(table.contains("vanilla") && table.contains("spectral"))
        let accuracyRow = try #require(table.split(separator: "\n").first { $0.contains("| 64 | test accuracy |") })
        #expect(accuracyRow.filter { $0 == "—" }.count == 2, "\(accuracyRow)")  // decay, adversarial missing

        let prefix = output + "/mlp-32x32-synthetic-b64-"
        for name in ["test-accuracy", "gap", "sigma-max"] {
            let svg = try String(contentsOfFile: prefix + name + ".svg", encoding: .utf8)
            let inspector = try SVGInspector.inspect(svg)
            #expect(inspector.polylineSeries == ["vanilla", "spectral"], "\(name)")
        }
        #expect(!FileManager.default.fileExists(atPath: prefix + "spectrum.svg"))  // no analysis.json
        let index = try String(contentsOfFile: output + "/index.md", encoding: .utf8)
        #expect(index.contains("table1.md") && index.contains("mlp-32x32-synthetic-b64-test-accuracy.svg"))
        for directory in directories {
            let config = try TrainingConfig.load(path: RunDirectory(path: directory).configPath)
            #expect(index.contains(directory) && index.contains(String(config.trajectoryHash.prefix(16))))
        }

        let failure = try SSGDProcess.run(["report", stray, "--output", output])
        #expect(failure.status == 1)
        #expect(failure.output.contains(stray) && failure.output.contains("config.yaml"), "\(failure.output)")

        // A published table beside the study's: read from a CSV, refused with the line when bad,
        // before anything is written.
        let paper = (parent as NSString).appendingPathComponent("paper.csv")
        let page = (parent as NSString).appendingPathComponent("RESULTS.md")
        try AtomicFileWriter.write(
            "# source: made up for this test\nmodel,dataset,batch_size,method,test_accuracy,gap\nmlp-32x32,synthetic,64,vanilla,50,\nmlp-32x32,synthetic,64,spectral,55,\n",
            to: paper)
        let withPaper = try SSGDProcess.run(["report"] + directories + ["--output", output, "--results", page, "--paper-table", paper])
        #expect(withPaper.status == 0, "\(withPaper.output)")
        let results = try String(contentsOfFile: page, encoding: .utf8)
        #expect(results.contains("Source: made up for this test"))
        #expect(results.contains("| 64 | MLP-32x32 / synthetic | paper | +5.00 | — |"))
        #expect(results.contains("| 64 | MLP-32x32 / synthetic | this study |"))

        try AtomicFileWriter.write("# source: x\nmodel,dataset,batch_size,method,test_accuracy,gap\nmlp-32x32,synthetic,64,vanilla,fifty,\n", to: paper)
        try FileManager.default.removeItem(atPath: page)
        let badPaper = try SSGDProcess.run(["report"] + directories + ["--output", output, "--results", page, "--paper-table", paper])
        #expect(badPaper.status == 1)
        #expect(badPaper.output.contains("paper table \(paper), line 3: test_accuracy \"fifty\" is not a percentage"), "\(badPaper.output)")
        #expect(!FileManager.default.fileExists(atPath: page))
        let noPage = try SSGDProcess.run(["report"] + directories + ["--paper-table", paper])
        #expect(noPage.status != 0 && noPage.output.contains("give --results PAGE too"), "\(noPage.output)")
    }
}
