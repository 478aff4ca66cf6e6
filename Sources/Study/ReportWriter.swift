import Foundation
import Runs

// `ssgd report`: read run directories, group them, and write table1.md, the SVG figures and
// index.md into one folder. A directory that cannot be read is skipped with a warning as long
// as another one can be read (so `ssgd report runs/*` survives a stray folder); when none can,
// loading fails with every problem listed.

public struct ReportOptions: Sendable {
    /// One gap threshold for every data set; nil: `GeneralizationGap.defaultAlpha` per data set.
    public var alpha: Double?
    /// Weight matrix whose singular-value spectrum is drawn; nil: the first one.
    public var layer: String?

    public init(alpha: Double? = nil, layer: String? = nil) {
        self.alpha = alpha
        self.layer = layer
    }
}

public struct Report: Sendable {
    public var runs: [ReportRun]
    /// Directories that could not be read, with the reason.
    public var skipped: [String]
    public var groups: [ReportGroup]
    public var table: Table1
    public var options: ReportOptions

    public init(runs: [ReportRun], skipped: [String] = [], options: ReportOptions = ReportOptions()) {
        self.runs = runs
        self.skipped = skipped
        self.options = options
        groups = ReportGroup.grouping(runs)
        table = Table1(groups: groups, alpha: options.alpha)
    }

    /// Read every directory (each once). Throws when none can be read.
    public static func load(runDirectories: [String], options: ReportOptions = ReportOptions()) throws -> Report {
        guard !runDirectories.isEmpty else { throw ReportError.noRunDirectories }
        var seen = Set<String>()
        var runs: [ReportRun] = []
        var skipped: [String] = []
        for path in runDirectories {
            let key = URL(fileURLWithPath: path).standardizedFileURL.path
            guard seen.insert(key).inserted else { continue }
            do {
                runs.append(try ReportRun.load(path: path))
            } catch {
                skipped.append("\(error)")
            }
        }
        guard !runs.isEmpty else { throw ReportError.noUsableRuns(skipped) }
        return Report(runs: runs, skipped: skipped, options: options)
    }

    /// Warnings for the user: skipped directories and problems inside the runs that were read.
    public var warnings: [String] {
        skipped.map { "skipped \($0)" } + runs.flatMap(\.warnings)
    }

    public var figures: [ReportFigure] {
        groups.flatMap { ReportFigures.figures(for: $0, layer: options.layer) }
    }

    /// Write table1.md, every figure and index.md into `directory` (created if needed); returns
    /// the paths written.
    @discardableResult
    public func write(to directory: String) throws -> [String] {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw FileWriteError(path: directory, reason: "cannot create the output folder: \(error.localizedDescription)")
        }
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        var written: [String] = []
        let figures = self.figures
        try AtomicFileWriter.write(table.markdown, to: path("table1.md"))
        written.append(path("table1.md"))
        for figure in figures {
            try AtomicFileWriter.write(figure.plot.render(), to: path(figure.fileName))
            written.append(path(figure.fileName))
        }
        try AtomicFileWriter.write(indexMarkdown(figures: figures), to: path("index.md"))
        written.append(path("index.md"))
        return written
    }

    /// index.md: the table, every figure by setting, and the runs it was made from.
    public func indexMarkdown(figures: [ReportFigure]? = nil) -> String {
        let figures = figures ?? self.figures
        var out = "# Report\n\n"
        out += "Made by `ssgd report` from \(runs.count) run director\(runs.count == 1 ? "y" : "ies"). "
        out += "See docs/report.md for what each output shows.\n\n"
        out += "- [Table 1: test accuracy and generalization gap](table1.md)\n\n"
        for group in groups {
            out += "## \(group.setting), B = \(group.batchSize)\n\n"
            out += "Methods: \(group.methods.map(\.rawValue).joined(separator: ", ")).\n\n"
            let prefix = "\(group.setting.slug)-b\(group.batchSize)-"
            for figure in figures where figure.fileName.hasPrefix(prefix) {
                out += "[![\(figure.title)](\(figure.fileName))](\(figure.fileName))\n\n"
            }
        }
        out += "## Runs\n\n"
        out += "| run directory | setting | B | method | λ | seed | evaluations | test accuracy | analysis | config hash |\n"
        out += "|---|---|---:|---|---:|---:|---:|---:|---|---|\n"
        for group in groups {
            for method in group.methods {
                for run in group.runs[method] ?? [] {
                    let accuracy = run.testAccuracy.map { String(format: "%.2f", 100 * $0) } ?? "—"
                    let finished = run.summary == nil ? " (no summary.json: unfinished?)" : ""
                    out += "| `\(run.path)` | \(group.setting) | \(group.batchSize) | \(method.rawValue) | "
                        + "\(SVGPlot.label(run.config.effectiveLambda)) | \(run.config.seed) | \(run.records.count) | "
                        + "\(accuracy)\(finished) | \(run.analysis == nil ? "no" : "yes") | `\(run.configHash.prefix(16))` |\n"
                }
            }
        }
        if !warnings.isEmpty {
            out += "\n## Warnings\n\n"
            for warning in warnings { out += "- \(warning)\n" }
        }
        return out
    }
}
