import Foundation
import Training

// The report's figures, one set per setting × batch size, one series per method. Several runs
// of a method (seeds) are averaged point by point: curves by epoch, σ_max by layer, spectra by
// rank, bars by value.

public struct ReportFigure: Sendable {
    /// File name inside the output folder, e.g. "nin-cifar100-b4096-test-accuracy.svg".
    public var fileName: String
    public var title: String
    public var plot: SVGPlot
}

public enum ReportFigures {
    /// Every figure the group's data supports: curves always; σ_max when any run recorded σ;
    /// spectrum, input-gradient norm and Hessian eigenvalue only from analysis.json.
    /// - Parameter layer: weight matrix for the spectrum (default: the first, in layer order,
    ///   that every analysed run has).
    public static func figures(for group: ReportGroup, layer: String? = nil) -> [ReportFigure] {
        let prefix = "\(group.setting.slug)-b\(group.batchSize)"
        let context = "\(group.setting), B = \(group.batchSize)"
        var figures: [ReportFigure] = []

        var accuracy = SVGPlot(title: "Test accuracy — \(context)", xLabel: "epoch", yLabel: "test accuracy (%)")
        var gap = SVGPlot(title: "Generalization gap — \(context)", xLabel: "epoch", yLabel: "train − test accuracy (%)")
        accuracy.integerX = true
        gap.integerX = true
        gap.includeZero = true
        for method in group.methods {
            let runs = group.runs[method] ?? []
            accuracy.addLine(method.rawValue, points: curve(runs) { 100 * $0.testAccuracy }, color: color(method))
            gap.addLine(method.rawValue, points: curve(runs) { 100 * ($0.trainAccuracy - $0.testAccuracy) }, color: color(method))
        }
        figures.append(ReportFigure(fileName: "\(prefix)-test-accuracy.svg", title: accuracy.title, plot: accuracy))
        figures.append(ReportFigure(fileName: "\(prefix)-gap.svg", title: gap.title, plot: gap))

        let allRuns = group.methods.flatMap { group.runs[$0] ?? [] }
        let layers = layerOrder(Set(allRuns.flatMap { $0.sigmaMax.keys }))
        if !layers.isEmpty {
            var sigma = SVGPlot(title: "Largest singular value per layer — \(context)",
                                xLabel: "layer index (1 = first weight matrix)", yLabel: "σ_max(W)")
            sigma.integerX = true
            sigma.includeZero = true
            for method in group.methods {
                let runs = group.runs[method] ?? []
                let points: [(x: Double, y: Double)] = layers.enumerated().compactMap { index, name in
                    mean(runs.compactMap { $0.sigmaMax[name] }).map { (x: Double(index + 1), y: $0) }
                }
                sigma.addLine(method.rawValue, points: points, color: color(method))
            }
            figures.append(ReportFigure(fileName: "\(prefix)-sigma-max.svg", title: sigma.title, plot: sigma))
        }

        let analysed = allRuns.filter { $0.analysis != nil }
        if let chosen = spectrumLayer(analysed, requested: layer) {
            var spectrum = SVGPlot(title: "Singular values of \(chosen) — \(context)",
                                   xLabel: "rank i", yLabel: "σ_i (log scale)", yScale: .log10)
            spectrum.integerX = true
            for method in group.methods {
                let spectra = (group.runs[method] ?? []).compactMap { $0.analysis?.singularValues?[chosen] }
                guard !spectra.isEmpty else { continue }
                let length = spectra.map(\.count).min() ?? 0
                var points: [(x: Double, y: Double)] = []
                for i in 0..<length {
                    let values: [Double] = spectra.map { $0[i] }
                    points.append((x: Double(i + 1), y: values.reduce(0, +) / Double(values.count)))
                }
                spectrum.addLine(method.rawValue, points: points, color: color(method), markers: false)
            }
            figures.append(ReportFigure(fileName: "\(prefix)-spectrum.svg", title: spectrum.title, plot: spectrum))
        }

        let gradientValues: [(Method, [Double?])] = group.methods.compactMap { method in
            let runs = group.runs[method] ?? []
            let values = [
                mean(runs.compactMap { $0.analysis?.inputGradientNorm?.train?.mean }),
                mean(runs.compactMap { $0.analysis?.inputGradientNorm?.test?.mean }),
            ]
            return values.contains { $0 != nil } ? (method, values) : nil
        }
        if !gradientValues.isEmpty {
            var plot = SVGPlot(title: "Input-gradient norm — \(context)", xLabel: "data", yLabel: "mean ‖∇ₓL‖₂ per example")
            plot.setCategories(["train", "test"])
            for (method, values) in gradientValues { plot.addBars(method.rawValue, values: values, color: color(method)) }
            figures.append(ReportFigure(fileName: "\(prefix)-input-gradient.svg", title: plot.title, plot: plot))
        }

        let hessianValues: [(Method, [Double?])] = group.methods.compactMap { method in
            let runs = group.runs[method] ?? []
            let values = [
                mean(runs.compactMap { $0.analysis?.hessianMaxEigenvalue?.train?.value }),
                mean(runs.compactMap { $0.analysis?.hessianMaxEigenvalue?.test?.value }),
            ]
            return values.contains { $0 != nil } ? (method, values) : nil
        }
        if !hessianValues.isEmpty {
            var plot = SVGPlot(title: "Largest Hessian eigenvalue — \(context)", xLabel: "data", yLabel: "λ_max(∇²L)")
            plot.setCategories(["train", "test"])
            for (method, values) in hessianValues { plot.addBars(method.rawValue, values: values, color: color(method)) }
            figures.append(ReportFigure(fileName: "\(prefix)-hessian.svg", title: plot.title, plot: plot))
        }
        return figures
    }

    /// One colour per method, the same in every figure.
    public static func color(_ method: Method) -> String {
        SVGPlot.palette[Method.allCases.firstIndex(of: method) ?? 0]
    }

    /// Weight-matrix names in layer order: numbers inside names compare as numbers
    /// ("2.weight" before "10.weight").
    public static func layerOrder<S: Sequence>(_ names: S) -> [String] where S.Element == String {
        names.sorted { $0.compare($1, options: .numeric) == .orderedAscending }
    }

    /// Mean of `value` over runs, per epoch (epochs where any run evaluated).
    static func curve(_ runs: [ReportRun], _ value: (EvaluationRecord) -> Double) -> [(x: Double, y: Double)] {
        var byEpoch: [Int: [Double]] = [:]
        for run in runs {
            for record in run.records { byEpoch[record.epoch, default: []].append(value(record)) }
        }
        return byEpoch.keys.sorted().compactMap { epoch in mean(byEpoch[epoch] ?? []).map { (x: Double(epoch), y: $0) } }
    }

    static func mean(_ values: [Double]) -> Double? {
        values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }

    private static func spectrumLayer(_ runs: [ReportRun], requested: String?) -> String? {
        let available = runs.compactMap { $0.analysis?.singularValues }.filter { !$0.isEmpty }
        guard let first = available.first else { return nil }
        if let requested { return available.contains { $0[requested] != nil } ? requested : nil }
        let common = available.dropFirst().reduce(Set(first.keys)) { $0.intersection($1.keys) }
        return layerOrder(common.isEmpty ? Set(first.keys) : common).first
    }
}
