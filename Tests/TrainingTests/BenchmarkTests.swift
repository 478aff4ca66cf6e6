import Bench
import Engine
import Foundation
import Testing
import Training

// The benchmark's logic in --quick mode on a tiny MLP: structure and sanity of the report,
// never timing thresholds.
@Suite struct BenchmarkTests {
    static func tinyModel() -> BenchmarkModel {
        BenchmarkModel(name: "tiny-mlp", inputShape: Shape(1, 4, 4), classes: 3) { _ in
            MLP.make(inputShape: Shape(1, 4, 4), hidden: [8], classes: 3)
        }
    }

    /// A quick run of the tiny model at B = 4 on one lane, without the regulariser's row.
    static func oneRowOptions() -> BenchmarkOptions {
        var options = BenchmarkOptions(models: [tinyModel()])
        options.makeQuick()
        options.batches = [4]
        options.threads = [1]
        options.spectral = false
        return options
    }

    @Test func quickRunReportsEveryConfigurationWithPositiveNumbers() throws {
        var options = BenchmarkOptions(models: [Self.tinyModel()])
        options.makeQuick()
        options.batches = [2, 4]
        options.threads = [1]
        var lines = [String]()
        let report = try Benchmark.run(options) { lines.append($0) }

        #expect(!report.coreName.isEmpty)
        #expect(report.gemm.count == options.gemmShapes.count)
        #expect(report.gemm.allSatisfy { $0.seconds > 0 && $0.gflops > 0 })
        #expect(report.peaks.map(\.threads) == [1])
        #expect((report.peak(threads: 1) ?? 0) > 0)

        #expect(report.models.map(\.batch) == [2, 4])
        for result in report.models {
            #expect(result.model == "tiny-mlp")
            #expect(result.forwardFLOPsPerImage == 2 * (16 * 8 + 8 * 3))
            #expect(result.iterations >= 1)
            #expect(result.stepSeconds > 0 && result.imagesPerSecond > 0 && result.achievedGFLOPS > 0)
            #expect(result.cpuSeconds > 0)
            #expect(result.fractionOfPeak > 0 && result.fractionOfPeak < 1.5)
            #expect(result.executedFLOPsPerImage == result.forwardFLOPsPerImage)  // no Winograd layer
        }
        // Spectral overhead is measured once, at the largest batch.
        #expect(report.spectral.count == 1)
        if let spectral = report.spectral.first {
            #expect(spectral.batch == 4 && spectral.matrices == 2)
            #expect(spectral.regularizerSeconds > 0 && spectral.fraction > 0)
        }
        #expect(lines.count == report.gemm.count + report.models.count + report.spectral.count + 1)

        #expect(report.peakResidentBytes > 0)
        let text = Benchmark.text(report)
        #expect(text.contains("tiny-mlp") && text.contains("of peak") && text.contains("spectral overhead"))
        #expect(text.contains("CPU ms") && text.contains("peak resident memory"))
        #expect(!text.contains("executed"), "only rows with Winograd layers get the column")
        let decoded = try JSONDecoder().decode(BenchmarkReport.self, from: try report.json())
        #expect(decoded.models.count == report.models.count)
    }

    @Test func roundsMeasureThePeakBeforeEachRoundAndReportTheMedianFractionWithItsRange() throws {
        var options = Self.oneRowOptions()
        options.rounds = 3
        var lines = [String]()
        let report = try Benchmark.run(options) { lines.append($0) }
        let result = try #require(report.models.first)
        let range = try #require(result.fractionRange)
        #expect(range.count == 2 && range[0] > 0 && range[0] <= result.fractionOfPeak && result.fractionOfPeak <= range[1])
        #expect(result.iterations >= 3, "every round's steps are counted")
        // One line per round (with that round's own peak), then the row.
        #expect(lines.filter { $0.contains("round ") && $0.contains("sgemm peak") }.count == 3, "\(lines)")
        #expect(lines.last?.contains("median of 3 rounds") == true, "\(lines)")
        let text = Benchmark.text(report)
        #expect(text.contains("range") && text.contains("median of the rounds' fractions"), "\(text)")
        let lowest = Benchmark.format(100 * range[0], 1), highest = Benchmark.format(100 * range[1], 1)
        #expect(text.contains(" \(lowest)–\(highest)%"), "one % after the range: \(text)")
        let decoded = try JSONDecoder().decode(BenchmarkReport.self, from: try report.json())
        #expect(decoded.models.first?.fractionRange == range)
        // A single round has no range, and its table no range column.
        options.rounds = 1
        let single = try Benchmark.run(options)
        #expect(single.models.first?.fractionRange == nil && !Benchmark.text(single).contains("range"))
    }

    @Test func withoutAnSgemmPeakTheFractionsAreADashNotZero() throws {
        var options = Self.oneRowOptions()
        options.rounds = 2
        options.gemmShapes = []  // --no-sgemm
        var lines = [String]()
        let report = try Benchmark.run(options) { lines.append($0) }
        #expect(report.peaks.isEmpty && report.models.count == 1)
        #expect(!lines.contains { $0.contains("sgemm peak") || $0.contains("of peak") || $0.contains("0.0%") }, "\(lines)")
        let text = Benchmark.text(report)
        let row = try #require(text.split(separator: "\n").first { $0.hasPrefix("tiny-mlp") })
        #expect(!row.contains("%") && row.split(separator: " ").filter { $0 == "—" }.count == 2, "\(row)")  // of peak, range
    }

    @Test func rowsWithWinogradLayersAlsoGiveTheFractionOfPeakInExecutedFLOPs() throws {
        // VGG-16's executed FLOPs from its layers: every Winograd layer performs 4/9 of its count.
        let network = try BenchmarkModel.named("vgg16").make(64)
        let info = ModelInfo(network)
        var winogradMACs = 0
        for case let conv as Conv2d in network.layers where conv.usesWinograd { winogradMACs += conv.forwardMACs }
        #expect(winogradMACs > info.forwardMACs * 9 / 10)  // all but the stem and the classifier
        #expect(info.executedMACs * 9 == info.forwardMACs * 9 - 5 * winogradMACs)
        // A report's row whose GEMMs perform 4/9 of its FLOPs gets the executed column.
        var report = try Benchmark.run(Self.oneRowOptions())
        report.convolutions = Benchmark.convolutionsDescription(.winograd)
        report.models[0].executedFLOPsPerImage = report.models[0].forwardFLOPsPerImage * 4 / 9
        let row = report.models[0]
        #expect(abs(row.executedFractionOfPeak - row.fractionOfPeak * Double(row.forwardFLOPsPerImage * 4 / 9)
            / Double(row.forwardFLOPsPerImage)) < 1e-12)
        let text = Benchmark.text(report)
        #expect(text.contains("executed") && text.contains("convolutions: Winograd"), "\(text)")
        #expect(text.contains(Benchmark.format(100 * row.executedFractionOfPeak, 1) + "%"), "\(text)")
    }

    @Test func benchmarkModelsByNameMatchTheReferenceCounts() throws {
        let network = try BenchmarkModel.named("densenet40").make(64)
        #expect(network.parameterCount == 1_060_132)
        #expect(abs(Double(ModelInfo(network).forwardMACs) / 1e6 - 264.853) < 0.001)
        #expect(throws: ConfigError.self) { try BenchmarkModel.named("resnet") }
    }
}
