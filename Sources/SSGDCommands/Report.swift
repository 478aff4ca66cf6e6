import ArgumentParser
import Foundation
import Runs
import Study
import Training

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Render the paper's Table 1 and figures (SVG) from run directories.",
        discussion: """
            Reads each RUN_DIR's config.yaml, metrics.jsonl, summary.json and (if present) the \
            analysis.json written by ssgd analyze; groups the runs by setting (model, data set), \
            batch size and method; writes table1.md (also printed), one set of SVG figures per \
            setting and batch size, and index.md linking everything. A directory that cannot be \
            read is skipped with a warning unless none can. See docs/report.md.
            """)

    @Argument(help: "Run directories (each holds config.yaml and metrics.jsonl).")
    var runDirectories: [String] = []

    @Option(name: .long, help: "Folder for table1.md, index.md and the SVG figures.")
    var output = "report"

    @Option(name: .long, help: "Generalization-gap threshold α for every data set (default: per data set, see docs/report.md).")
    var alpha: Double?

    @Option(name: .long, help: "Weight matrix whose singular-value spectrum is drawn, e.g. 0.weight (default: the first).")
    var layer: String?

    @Option(name: .long, help: "Also write a results page here (e.g. docs/RESULTS.md): Table 1, a verdict per claim of the paper (spectral against vanilla, against the seed noise) and the figures.")
    var results: String?

    @Option(name: .long, help: "Title of the results page.")
    var title = "Results"

    @Option(name: .long, help: "The command that made the runs, quoted on the results page.")
    var command: String?

    @Option(name: .long, help: "A published Table 1 as CSV (a `# source:` line, then model,dataset,batch_size,method,test_accuracy,gap in percent), printed beside this study's on the results page. See docs/report.md.")
    var paperTable: String?

    func validate() throws {
        if paperTable != nil && results == nil {
            throw ValidationError("--paper-table is printed on the results page; give --results PAGE too")
        }
        if runDirectories.isEmpty {
            throw ValidationError("give at least one run directory, e.g. ssgd report runs/*")
        }
        if let alpha, !(alpha >= 0 && alpha < 1) {
            throw ValidationError("--alpha is a test accuracy in [0, 1), got \(alpha)")
        }
    }

    func run() throws {
        try reportingErrors {
            // Read first: a bad paper table fails before any file is written.
            let paper = try paperTable.map { try PaperTable.load(path: $0) }
            let report = try Study.Report.load(
                runDirectories: runDirectories, options: ReportOptions(alpha: alpha, layer: layer))
            for warning in report.warnings { Console.error("warning: \(warning)") }
            let written = try report.write(to: output)
            if let results {
                let page = URL(fileURLWithPath: results).standardizedFileURL
                let figures = URL(fileURLWithPath: output).standardizedFileURL
                try AtomicFileWriter.write(
                    report.resultsMarkdown(title: title, command: command, figureFolder: Study.Report.relativePath(from: page.deletingLastPathComponent(), to: figures),
                        paperTable: paper),
                    to: results)
                Console.line("wrote \(results)")
            }
            Console.line(report.table.markdown)
            Console.line("wrote \(written.count) files to \(output) (\(report.runs.count) runs, "
                + "\(report.groups.count) setting × batch-size groups); start at \((output as NSString).appendingPathComponent("index.md"))")
        }
    }
}

