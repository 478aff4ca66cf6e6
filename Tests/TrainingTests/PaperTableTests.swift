import Foundation
import Study
import TestSupport
import Testing
import Training

// `ssgd report --paper-table`: a published Table 1 read from a CSV that names its source, with
// clear errors for bad files, and printed beside the study's own spectral − vanilla differences.
// The numbers below are made up for the test; they are not the paper's.
@Suite struct PaperTableTests {
    static let sample = """
        # A made-up table for tests.
        # source: Test Authors (2026), nowhere, Table 1
        model,dataset,batch_size,method,test_accuracy,gap

        nin,cifar100,4096,vanilla,60.00,20.00
        nin,cifar100,4096,spectral,63.50,12.25
        nin,cifar100,64,vanilla,70.00,
        """

    @Test func aTableReadsWithItsSourceAndPercentagesAsFractions() throws {
        let table = try PaperTable.parse(Self.sample, path: "t.csv")
        #expect(table.source == "Test Authors (2026), nowhere, Table 1")
        #expect(table.rows.count == 3)
        let nin = ReportSetting(model: "nin", dataset: .cifar100)
        let spectral = try #require(table.row(nin, batchSize: 4096, method: .spectral))
        #expect(abs((spectral.testAccuracy ?? 0) - 0.635) < 1e-12)
        #expect(table.row(nin, batchSize: 64, method: .vanilla)?.gap == nil)
        #expect(abs((table.spectralAdvantage(nin, batchSize: 4096, \.testAccuracy) ?? 0) - 0.035) < 1e-12)
        #expect(table.spectralAdvantage(nin, batchSize: 64, \.testAccuracy) == nil)
    }

    @Test(arguments: [
        ("model,dataset,batch_size,method,test_accuracy,gap\nnin,cifar100,64,vanilla,70,1\n", "does not say where its numbers come from"),
        ("# source: x\nnin,cifar100,64,vanilla,70,1\n", "line 2: the first line that is not a comment must be the header"),
        ("# source: x\nmodel,dataset,batch_size,method,test_accuracy,gap\nnin,cifar100,64,vanilla,70\n", "line 3: has 5 fields"),
        ("# source: x\nmodel,dataset,batch_size,method,test_accuracy,gap\nnin,mnist,64,vanilla,70,1\n", "line 3: unknown dataset \"mnist\""),
        ("# source: x\nmodel,dataset,batch_size,method,test_accuracy,gap\nnin,cifar100,64,sgd,70,1\n", "unknown method \"sgd\"; use one of vanilla"),
        ("# source: x\nmodel,dataset,batch_size,method,test_accuracy,gap\nnin,cifar100,0,vanilla,70,1\n", "batch_size \"0\" is not a positive integer"),
        ("# source: x\nmodel,dataset,batch_size,method,test_accuracy,gap\nnin,cifar100,64,vanilla,0.7%,1\n", "test_accuracy \"0.7%\" is not a percentage"),
        ("# source: x\nmodel,dataset,batch_size,method,test_accuracy,gap\nnin,cifar100,64,vanilla,170,1\n", "is not a percentage in [0, 100]"),
        ("# source: x\nmodel,dataset,batch_size,method,test_accuracy,gap\nnin,cifar100,64,vanilla,70,1\nnin,cifar100,64,vanilla,71,1\n", "line 4: repeats nin"),
        ("# source: x\nmodel,dataset,batch_size,method,test_accuracy,gap\n", "has a header but no rows"),
    ])
    func badFilesAreRefusedNamingTheLineAndTheFix(text: String, message: String) {
        #expect {
            try PaperTable.parse(text, path: "bad.csv")
        } throws: { error in
            let description = "\(error)"
            return description.hasPrefix("paper table bad.csv") && description.contains(message)
        }
    }

    @Test func theResultsPagePutsThePapersDifferencesBesideTheStudys() throws {
        let parent = Fixtures.temporaryDirectory("ssgd-paper-table")
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let vanilla = try ReportTests.fakeRun(in: parent, method: .vanilla, batchSize: 4096, seed: 1, curve: [(0.70, 0.56), (0.90, 0.60)])
        let spectral = try ReportTests.fakeRun(in: parent, method: .spectral, batchSize: 4096, seed: 1, curve: [(0.70, 0.58), (0.80, 0.66)])
        let report = try Report.load(runDirectories: [vanilla, spectral])
        let paper = try PaperTable.parse(Self.sample, path: "t.csv")

        let page = report.resultsMarkdown(title: "T", command: nil, figureFolder: "f", paperTable: paper)
        #expect(page.contains("## Beside the paper's Table 1"))
        #expect(page.contains("Source: Test Authors (2026), nowhere, Table 1"))
        let lines = page.split(separator: "\n").map(String.init)
        // The paper's own rows, as given, "—" where it gives nothing.
        #expect(lines.contains("| NIN / CIFAR-100 | 4096 | test accuracy | 60.00 | 63.50 |"))
        #expect(lines.contains("| NIN / CIFAR-100 | 64 | gap | — | — |"))
        // Spectral − vanilla: the paper's +3.50 / −7.75; this study's final test accuracy
        // 0.66 − 0.60 and gap at α = 0.55 (0.70 − 0.56 = 0.14 against 0.70 − 0.58 = 0.12).
        #expect(lines.contains("| 4096 | NIN / CIFAR-100 | paper | +3.50 | -7.75 |"))
        #expect(lines.contains("| 4096 | NIN / CIFAR-100 | this study | +6.00 | -2.00 |"))

        let without = report.resultsMarkdown(title: "T", command: nil, figureFolder: "f")
        #expect(without.contains("Not on this page: the report was not given the paper's numbers"))
        #expect(!without.contains("| paper |"))
    }
}
