import Data
import Foundation
import Training

// Table 1 of Yoshida & Miyato (2017): per setting (model, data set) and batch size, the test
// accuracy and the generalization gap of each method. Runs that share a cell (seeds) are shown
// as mean ± sample standard deviation with their count.

public enum GeneralizationGap {
    /// The gap at threshold α: the smallest train − test accuracy over the evaluations whose test
    /// accuracy exceeds α (strictly); nil when no evaluation gets there.
    public static func at(_ alpha: Double, records: [EvaluationRecord]) -> Double? {
        records.filter { $0.testAccuracy > alpha }.map { $0.trainAccuracy - $0.testAccuracy }.min()
    }

    /// Default α per data set: a level every method reaches late in training, so the gap is
    /// compared where the models are comparably good. These are this project's choices, not
    /// values quoted from the paper; `ssgd report --alpha` overrides them.
    public static func defaultAlpha(for dataset: DatasetKind) -> Double {
        switch dataset {
        case .cifar10: return 0.88
        case .cifar100: return 0.55
        case .stl10: return 0.55
        case .fashionMNIST: return 0.85
        case .synthetic: return 0.5
        }
    }
}

/// Mean, sample standard deviation (n − 1; 0 for one value) and count.
public struct SampleStatistics: Sendable, Equatable {
    public var mean: Double
    public var standardDeviation: Double
    public var count: Int

    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        count = values.count
        mean = values.reduce(0, +) / Double(values.count)
        if values.count > 1 {
            let m = mean
            let squares = values.reduce(0) { $0 + ($1 - m) * ($1 - m) }
            standardDeviation = (squares / Double(values.count - 1)).squareRoot()
        } else {
            standardDeviation = 0
        }
    }

    /// In percent: "91.23", or "91.23 ± 0.40 (n=3)" for several runs.
    public var percentText: String {
        let mean = String(format: "%.2f", 100 * self.mean)
        if count == 1 { return mean }
        return "\(mean) ± \(String(format: "%.2f", 100 * standardDeviation)) (n=\(count))"
    }
}

/// A model on a data set, e.g. DenseNet-40 on CIFAR-100: one row block of Table 1.
public struct ReportSetting: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// "vgg16", "nin", "densenet-40", "mlp-32x32".
    public var model: String
    public var dataset: DatasetKind

    public init(model: String, dataset: DatasetKind) {
        self.model = model
        self.dataset = dataset
    }

    public init(_ config: TrainingConfig) {
        switch config.model {
        case .densenet: model = "densenet-\(config.depth)"
        case .mlp: model = "mlp-" + config.hidden.map(String.init).joined(separator: "x")
        case .vgg16: model = config.widthDivisor == 1 ? "vgg16" : "vgg16-w\(config.widthDivisor)"
        case .nin: model = "nin"
        }
        dataset = config.dataset
    }

    /// "DenseNet-40 / CIFAR-100".
    public var description: String {
        let modelName: String
        if model.hasPrefix("densenet-") {
            modelName = "DenseNet-" + model.dropFirst("densenet-".count)
        } else if model.hasPrefix("vgg16") {
            modelName = "VGG-16" + model.dropFirst("vgg16".count)
        } else if model.hasPrefix("mlp-") {
            modelName = "MLP-" + model.dropFirst("mlp-".count)
        } else if model == "nin" {
            modelName = "NIN"
        } else {
            modelName = model.uppercased()
        }
        return "\(modelName) / \(ReportSetting.name(of: dataset))"
    }

    /// "CIFAR-100".
    public static func name(of dataset: DatasetKind) -> String {
        switch dataset {
        case .cifar10: return "CIFAR-10"
        case .cifar100: return "CIFAR-100"
        case .stl10: return "STL-10"
        case .fashionMNIST: return "Fashion-MNIST"
        case .synthetic: return "synthetic"
        }
    }

    /// File-name form: "densenet-40-cifar100".
    public var slug: String { "\(model)-\(dataset.rawValue)" }

    /// The paper's four settings first, in its order; anything else after, by name.
    private var rank: Int {
        let paper: [(String, DatasetKind)] = [("vgg16", .cifar10), ("nin", .cifar100), ("densenet-40", .cifar100), ("densenet-22", .stl10)]
        return paper.firstIndex { $0.0 == model && $0.1 == dataset } ?? paper.count
    }

    public static func < (a: ReportSetting, b: ReportSetting) -> Bool {
        (a.rank, a.model, a.dataset.rawValue) < (b.rank, b.model, b.dataset.rawValue)
    }
}

/// The runs of one setting at one batch size, by method.
public struct ReportGroup: Sendable {
    public var setting: ReportSetting
    public var batchSize: Int
    public var runs: [Method: [ReportRun]]

    /// Methods with at least one run, in the paper's order.
    public var methods: [Method] { Method.allCases.filter { !(runs[$0] ?? []).isEmpty } }

    /// Group runs by setting × batch size × method; groups sorted by setting then batch size,
    /// runs within a cell by seed then path.
    public static func grouping(_ runs: [ReportRun]) -> [ReportGroup] {
        var groups: [String: ReportGroup] = [:]
        for run in runs {
            let setting = ReportSetting(run.config)
            let key = "\(setting.slug)|\(run.config.batchSize)"
            var group = groups[key] ?? ReportGroup(setting: setting, batchSize: run.config.batchSize, runs: [:])
            group.runs[run.config.method, default: []].append(run)
            groups[key] = group
        }
        return groups.values.map { group in
            var sorted = group
            for (method, cell) in group.runs {
                sorted.runs[method] = cell.sorted { ($0.config.seed, $0.path) < ($1.config.seed, $1.path) }
            }
            return sorted
        }.sorted { ($0.setting, $0.batchSize) < ($1.setting, $1.batchSize) }
    }
}

/// One (setting, batch size, method) cell of Table 1.
public struct Table1Cell: Sendable, Equatable {
    public var testAccuracy: SampleStatistics?
    /// Over the runs that reach α; nil when none does.
    public var gap: SampleStatistics?
    public var runCount: Int
}

public struct Table1: Sendable {
    public var settings: [ReportSetting]
    public var batchSizes: [Int]
    public var alphas: [DatasetKind: Double]
    private var cells: [String: Table1Cell]

    private static func key(_ setting: ReportSetting, _ batchSize: Int, _ method: Method) -> String {
        "\(setting.slug)|\(batchSize)|\(method.rawValue)"
    }

    /// - Parameter alpha: one α for every data set, or nil for `GeneralizationGap.defaultAlpha`.
    public init(groups: [ReportGroup], alpha: Double? = nil) {
        settings = Array(Set(groups.map(\.setting))).sorted()
        batchSizes = Array(Set(groups.map(\.batchSize))).sorted()
        var alphas: [DatasetKind: Double] = [:]
        for setting in settings { alphas[setting.dataset] = alpha ?? GeneralizationGap.defaultAlpha(for: setting.dataset) }
        self.alphas = alphas
        var cells: [String: Table1Cell] = [:]
        for group in groups {
            let threshold = alphas[group.setting.dataset] ?? 0
            for (method, runs) in group.runs where !runs.isEmpty {
                cells[Table1.key(group.setting, group.batchSize, method)] = Table1Cell(
                    testAccuracy: SampleStatistics(runs.compactMap(\.testAccuracy)),
                    gap: SampleStatistics(runs.compactMap { GeneralizationGap.at(threshold, records: $0.records) }),
                    runCount: runs.count)
            }
        }
        self.cells = cells
    }

    public func cell(_ setting: ReportSetting, batchSize: Int, method: Method) -> Table1Cell? {
        cells[Table1.key(setting, batchSize, method)]
    }

    /// Markdown: one block of rows per setting, a test-accuracy row and a gap row per batch
    /// size, one column per method; the best value of a row in bold, "—" where no run exists.
    public var markdown: String {
        var out = "# Table 1: test accuracy and generalization gap\n\n"
        out += "Accuracies in percent. Gap at α: the smallest train − test accuracy over the evaluations whose "
        out += "test accuracy exceeds α (Yoshida & Miyato 2017); lower is better. "
        let thresholds = alphas.sorted { $0.key.rawValue < $1.key.rawValue }
            .map { "\(ReportSetting.name(of: $0.key)) α = \(SVGPlot.label($0.value))" }
        out += "Thresholds: \(thresholds.joined(separator: ", ")). "
        out += "Several runs in a cell (seeds): mean ± sample standard deviation (n = runs; for the gap, runs that reach α). "
        out += "—: no run, or no evaluation above α.\n\n"
        out += "| Setting | B | | " + Method.allCases.map(\.rawValue).joined(separator: " | ") + " |\n"
        out += "|---|---:|---|" + Method.allCases.map { _ in "---:" }.joined(separator: "|") + "|\n"
        for setting in settings {
            let alpha = alphas[setting.dataset] ?? 0
            var first = true
            for batchSize in batchSizes {
                let row = Method.allCases.map { cell(setting, batchSize: batchSize, method: $0) }
                let name = first ? setting.description : ""
                first = false
                out += "| \(name) | \(batchSize) | test accuracy | "
                    + Table1.formatted(row.map { $0?.testAccuracy }, best: .max).joined(separator: " | ") + " |\n"
                out += "| | \(batchSize) | gap at α = \(SVGPlot.label(alpha)) | "
                    + Table1.formatted(row.map { $0?.gap }, best: .min).joined(separator: " | ") + " |\n"
            }
        }
        return out
    }

    private enum Best { case min, max }

    private static func formatted(_ values: [SampleStatistics?], best: Best) -> [String] {
        let means = values.compactMap { $0?.mean }
        let target = means.count > 1 ? (best == .max ? means.max() : means.min()) : nil
        return values.map { value in
            guard let value else { return "—" }
            return value.mean == target ? "**\(value.percentText)**" : value.percentText
        }
    }
}
