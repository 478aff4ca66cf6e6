import Data
import Foundation
import Training

// A published Table 1 (Yoshida & Miyato 2017, or any other paper's) as data, so the results
// page can put it beside a study's own numbers without anyone typing them into the page. The
// numbers live in a small CSV file that names its source; `ssgd report --paper-table FILE`
// reads it. The file format (docs/report.md):
//
//     # source: Yoshida & Miyato (2017), arXiv:1705.10941v1, Table 1
//     model,dataset,batch_size,method,test_accuracy,gap
//     vgg16,cifar10,4096,spectral,88.0,5.0
//
// Accuracies and gaps are in percent, as printed in a paper; a value the paper does not give is
// left empty. Lines starting with '#' are comments; a `# source:` line is required.

public struct PaperTable: Sendable, Equatable {
    public struct Row: Sendable, Equatable {
        public var setting: ReportSetting
        public var batchSize: Int
        public var method: Method
        /// Fractions (the file holds percent).
        public var testAccuracy: Double?
        public var gap: Double?
    }

    /// Where the numbers come from, as the file's `# source:` line says.
    public var source: String
    public var rows: [Row]

    public static let header = "model,dataset,batch_size,method,test_accuracy,gap"

    public static func load(path: String) throws -> PaperTable {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw PaperTableError(path: path, line: nil, problem: "cannot be read (\(error.localizedDescription))")
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String) throws -> PaperTable {
        var source: String?
        var sawHeader = false
        var rows: [Row] = []
        var seen = Set<String>()
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = offset + 1
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                let comment = line.dropFirst().trimmingCharacters(in: .whitespaces)
                if comment.lowercased().hasPrefix("source:") {
                    let value = comment.dropFirst("source:".count).trimmingCharacters(in: .whitespaces)
                    if !value.isEmpty { source = value }
                }
                continue
            }
            func fail(_ problem: String) -> PaperTableError { PaperTableError(path: path, line: number, problem: problem) }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            if !sawHeader {
                guard fields.joined(separator: ",") == header else {
                    throw fail("the first line that is not a comment must be the header `\(header)`")
                }
                sawHeader = true
                continue
            }
            guard fields.count == 6 else { throw fail("has \(fields.count) fields; a row has 6: \(header)") }
            guard let dataset = DatasetKind(rawValue: fields[1]) else {
                throw fail("unknown dataset \"\(fields[1])\"; use one of \(DatasetKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let batchSize = Int(fields[2]), batchSize > 0 else { throw fail("batch_size \"\(fields[2])\" is not a positive integer") }
            guard let method = Method(rawValue: fields[3]) else {
                throw fail("unknown method \"\(fields[3])\"; use one of \(Method.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            func percent(_ field: String, _ name: String) throws -> Double? {
                if field.isEmpty { return nil }
                guard let value = Double(field), value >= 0, value <= 100 else {
                    throw fail("\(name) \"\(field)\" is not a percentage in [0, 100]")
                }
                return value / 100
            }
            guard !fields[0].isEmpty else { throw fail("model is empty; name it as ssgd report does, e.g. vgg16 or densenet-40") }
            let row = Row(
                setting: ReportSetting(model: fields[0], dataset: dataset), batchSize: batchSize, method: method,
                testAccuracy: try percent(fields[4], "test_accuracy"), gap: try percent(fields[5], "gap"))
            let key = "\(row.setting.slug)|\(batchSize)|\(method.rawValue)"
            guard seen.insert(key).inserted else { throw fail("repeats \(fields[0]), \(fields[1]), B = \(batchSize), \(method.rawValue)") }
            rows.append(row)
        }
        guard sawHeader else { throw PaperTableError(path: path, line: nil, problem: "has no header line `\(header)`") }
        guard let source else {
            throw PaperTableError(path: path, line: nil, problem: "does not say where its numbers come from; add a line `# source: AUTHORS (YEAR), WHERE, TABLE`")
        }
        guard !rows.isEmpty else { throw PaperTableError(path: path, line: nil, problem: "has a header but no rows") }
        return PaperTable(source: source, rows: rows)
    }

    public func row(_ setting: ReportSetting, batchSize: Int, method: Method) -> Row? {
        rows.first { $0.setting == setting && $0.batchSize == batchSize && $0.method == method }
    }

    /// Spectral − vanilla of one quantity for one setting and batch size, when both are given.
    public func spectralAdvantage(_ setting: ReportSetting, batchSize: Int, _ value: (Row) -> Double?) -> Double? {
        guard let spectral = row(setting, batchSize: batchSize, method: .spectral).flatMap(value),
              let vanilla = row(setting, batchSize: batchSize, method: .vanilla).flatMap(value) else { return nil }
        return spectral - vanilla
    }

    /// The paper's table as markdown, and beside it, per batch size, spectral − vanilla in test
    /// accuracy and gap for each of the paper's settings and each of the study's: the settings
    /// differ (a mini study runs other models on other data), so the comparison is of
    /// direction and size, not of absolute accuracy.
    func markdown(beside table: Table1) -> String {
        var out = "Source: \(source). Accuracies and gaps in percent, as the paper prints them (read from `--paper-table`).\n\n"
        let settings = Array(Set(rows.map(\.setting))).sorted()
        let batchSizes = Array(Set(rows.map(\.batchSize))).sorted()
        let methods = Method.allCases.filter { method in rows.contains { $0.method == method } }
        func percent(_ value: Double?) -> String { value.map { String(format: "%.2f", 100 * $0) } ?? "—" }
        out += "| setting | B | quantity | " + methods.map(\.rawValue).joined(separator: " | ") + " |\n"
        out += "|---|---:|---|" + String(repeating: "---:|", count: methods.count) + "\n"
        for setting in settings {
            for batchSize in batchSizes where rows.contains(where: { $0.setting == setting && $0.batchSize == batchSize }) {
                for (name, value) in [("test accuracy", { (row: Row) in row.testAccuracy }), ("gap", { (row: Row) in row.gap })] {
                    let cells = methods.map { percent(row(setting, batchSize: batchSize, method: $0).flatMap(value)) }
                    out += "| \(setting) | \(batchSize) | \(name) | " + cells.joined(separator: " | ") + " |\n"
                }
            }
        }
        out += "\n**Spectral − vanilla, the paper's settings and this study's** (percentage points; test accuracy higher "
        out += "is better, gap lower is better; this study's values are means over its seeds):\n\n"
        out += "| B | setting | source | Δ test accuracy | Δ gap |\n|---:|---|---|---:|---:|\n"
        func signed(_ value: Double?) -> String { value.map { String(format: "%+.2f", 100 * $0) } ?? "—" }
        for batchSize in Array(Set(batchSizes + table.batchSizes)).sorted() {
            for setting in settings where rows.contains(where: { $0.setting == setting && $0.batchSize == batchSize }) {
                out += "| \(batchSize) | \(setting) | paper | \(signed(spectralAdvantage(setting, batchSize: batchSize, \.testAccuracy))) | "
                    + "\(signed(spectralAdvantage(setting, batchSize: batchSize, \.gap))) |\n"
            }
            for setting in table.settings {
                guard let spectral = table.cell(setting, batchSize: batchSize, method: .spectral),
                      let vanilla = table.cell(setting, batchSize: batchSize, method: .vanilla) else { continue }
                func difference(_ value: (Table1Cell) -> SampleStatistics?) -> Double? {
                    guard let s = value(spectral)?.mean, let v = value(vanilla)?.mean else { return nil }
                    return s - v
                }
                out += "| \(batchSize) | \(setting) | this study | \(signed(difference(\.testAccuracy))) | \(signed(difference(\.gap))) |\n"
            }
        }
        return out
    }
}

public struct PaperTableError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var line: Int?
    public var problem: String

    public var description: String {
        "paper table \(path)\(line.map { ", line \($0)" } ?? ""): \(problem)"
    }
}
