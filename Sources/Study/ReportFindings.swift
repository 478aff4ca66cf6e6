import Foundation
import Training

// The verdicts of a study (issue 10): for each of the paper's claims about spectral norm
// regularization, per setting and batch size, spectral's runs against vanilla's — mean ± sample
// standard deviation over seeds, the difference, and whether it stands out of the seed noise.
// A difference counts only when it is larger than twice its standard error
// (√(s²ₛ/nₛ + s²ᵥ/nᵥ)); with three seeds that is a rough filter, and the text says so. The
// numbers come from the runs' files only; nothing here is typed in by hand.

public enum Claim: String, CaseIterable, Sendable {
    case testAccuracy = "higher test accuracy"
    case gap = "smaller generalization gap"
    case sigmaMax = "smaller σ_max (largest over the layers)"
    case flatness = "flatter spectrum (σ₁ / mean σ, averaged over the layers)"
    case inputGradient = "smaller input-gradient norm (test data)"
    case hessian = "smaller Hessian λ_max (training data)"

    /// Whether spectral should come out lower than vanilla.
    var lowerIsBetter: Bool { self != .testAccuracy }
    /// Shown in percent.
    var isPercent: Bool { self == .testAccuracy || self == .gap }

    /// The claim's value for one run (nil when the run has no such measurement).
    func value(of run: ReportRun, alpha: Double) -> Double? {
        switch self {
        case .testAccuracy: return run.testAccuracy
        case .gap: return GeneralizationGap.at(alpha, records: run.records)
        case .sigmaMax: return run.sigmaMax.values.max()
        case .flatness:
            let ratios = (run.analysis?.singularValues ?? [:]).values.compactMap { values -> Double? in
                guard let first = values.max(), !values.isEmpty else { return nil }
                let mean = values.reduce(0, +) / Double(values.count)
                return mean > 0 ? first / mean : nil
            }
            return ratios.isEmpty ? nil : ratios.reduce(0, +) / Double(ratios.count)
        case .inputGradient: return run.analysis?.inputGradientNorm?.test?.mean
        case .hessian: return run.analysis?.hessianMaxEigenvalue?.train?.value
        }
    }
}

public struct Finding: Sendable {
    public enum Verdict: String, Sendable {
        case reproduced = "reproduced"
        case contradicted = "contradicted"
        case noiseAgrees = "within seed noise (direction agrees)"
        case noiseDisagrees = "within seed noise (direction disagrees)"
        case noData = "no data"
    }

    public var claim: Claim
    public var setting: ReportSetting
    public var batchSize: Int
    public var spectral: SampleStatistics?
    public var vanilla: SampleStatistics?
    public var verdict: Verdict

    /// spectral − vanilla and its standard error.
    public var difference: Double? { spectral.flatMap { s in vanilla.map { s.mean - $0.mean } } }
    public var standardError: Double? {
        guard let s = spectral, let v = vanilla else { return nil }
        return (s.standardDeviation * s.standardDeviation / Double(s.count)
            + v.standardDeviation * v.standardDeviation / Double(v.count)).squareRoot()
    }

    public static func judge(_ claim: Claim, spectral: SampleStatistics?, vanilla: SampleStatistics?) -> Verdict {
        guard let s = spectral, let v = vanilla else { return .noData }
        let difference = s.mean - v.mean
        let error = (s.standardDeviation * s.standardDeviation / Double(s.count)
            + v.standardDeviation * v.standardDeviation / Double(v.count)).squareRoot()
        let agrees = claim.lowerIsBetter ? difference < 0 : difference > 0
        // With one run per side there is no noise estimate: the direction alone decides nothing.
        let standsOut = s.count > 1 && v.count > 1 && abs(difference) > 2 * error
        switch (agrees, standsOut) {
        case (true, true): return .reproduced
        case (false, true): return .contradicted
        case (true, false): return .noiseAgrees
        case (false, false): return .noiseDisagrees
        }
    }
}

extension Report {
    /// Every claim for every setting and batch size that has spectral or vanilla runs.
    public var findings: [Finding] {
        var findings = [Finding]()
        for group in groups {
            let alpha = table.alphas[group.setting.dataset] ?? GeneralizationGap.defaultAlpha(for: group.setting.dataset)
            for claim in Claim.allCases {
                func statistics(_ method: Method) -> SampleStatistics? {
                    SampleStatistics((group.runs[method] ?? []).compactMap { claim.value(of: $0, alpha: alpha) })
                }
                let spectral = statistics(.spectral), vanilla = statistics(.vanilla)
                findings.append(Finding(
                    claim: claim, setting: group.setting, batchSize: group.batchSize, spectral: spectral, vanilla: vanilla,
                    verdict: Finding.judge(claim, spectral: spectral, vanilla: vanilla)))
            }
        }
        return findings
    }

    /// The results page: how the study was run, Table 1, the verdict per claim with the numbers
    /// behind it, the figures. `figureFolder` is where the figures are, relative to the page.
    /// `paperTable`, when given, is printed beside this study's Table 1.
    public func resultsMarkdown(title: String, command: String?, figureFolder: String, paperTable: PaperTable? = nil) -> String {
        var out = "# \(title)\n\n"
        out += "Written by `ssgd report --results` from \(runs.count) run directories; no number on this page was typed by hand.\n\n"
        if let command { out += "Command: `\(command)`\n\n" }
        if let span = wallSpan {
            out += String(format: "Wall time: %.1f min, from the first run's config.yaml to the last summary.json written; "
                          + "%.1f min of training summed over the runs.\n\n", span.wall / 60, span.summed / 60)
        }
        out += "## Table 1\n\n"
        out += table.markdown.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(2).joined(separator: "\n")
        out += "\n\n## Beside the paper's Table 1\n\n"
        if let paperTable {
            out += paperTable.markdown(beside: table)
        } else {
            out += "Not on this page: the report was not given the paper's numbers (`ssgd report --paper-table FILE`; "
                + "the file format is in docs/report.md). No number from the paper is typed into this page by hand.\n"
        }
        out += "\n## The paper's claims, spectral against vanilla\n\n"
        out += "Yoshida & Miyato (2017, arXiv:1705.10941) report that spectral norm regularization gives the best test "
        out += "accuracy and the smallest generalization gap at B = 4096, with smaller σ_max and a flatter spectrum, "
        out += "smaller input gradients and a flatter minimum (smaller Hessian λ_max). Each row below puts one claim to this "
        out += "study's runs: mean ± sample standard deviation over seeds, the difference spectral − vanilla and its "
        out += "standard error (SE). **Reproduced**: the difference goes the claimed way and exceeds 2 SE; **contradicted**: "
        out += "it goes the other way by more than 2 SE; otherwise it is within seed noise. With 3 seeds per cell, 2 SE is "
        out += "a coarse filter: read the numbers, not only the word.\n\n"
        out += "| setting | B | claim | spectral | vanilla | difference (SE) | verdict |\n|---|---:|---|---:|---:|---:|---|\n"
        func text(_ value: Double, percent: Bool) -> String {
            percent ? String(format: "%.2f", 100 * value) : String(format: value.magnitude >= 100 ? "%.1f" : "%.4g", value)
        }
        func cell(_ statistics: SampleStatistics?, _ claim: Claim) -> String {
            guard let statistics else { return "—" }
            let mean = text(statistics.mean, percent: claim.isPercent)
            return statistics.count > 1 ? "\(mean) ± \(text(statistics.standardDeviation, percent: claim.isPercent)) (n=\(statistics.count))" : mean
        }
        let all = findings
        for finding in all {
            let difference = finding.difference.map { d in
                "\(text(d, percent: finding.claim.isPercent)) (\(text(finding.standardError ?? 0, percent: finding.claim.isPercent)))"
            } ?? "—"
            let verdict = finding.verdict == .reproduced || finding.verdict == .contradicted ? "**\(finding.verdict.rawValue)**" : finding.verdict.rawValue
            out += "| \(finding.setting) | \(finding.batchSize) | \(finding.claim.rawValue) | \(cell(finding.spectral, finding.claim)) | "
                + "\(cell(finding.vanilla, finding.claim)) | \(difference) | \(verdict) |\n"
        }
        out += "\n## In short\n\n"
        for batchSize in Array(Set(all.map(\.batchSize))).sorted() {
            let rows = all.filter { $0.batchSize == batchSize && $0.verdict != .noData }
            let count = { (verdict: Finding.Verdict) in rows.filter { $0.verdict == verdict }.count }
            out += "- B = \(batchSize): of \(rows.count) claim × setting pairs with data, \(count(.reproduced)) reproduced, "
                + "\(count(.contradicted)) contradicted, \(count(.noiseAgrees)) within seed noise in the claimed direction, "
                + "\(count(.noiseDisagrees)) within seed noise against it.\n"
            for finding in rows where finding.verdict == .reproduced || finding.verdict == .contradicted {
                out += "  - \(finding.verdict.rawValue): \(finding.claim.rawValue), \(finding.setting)\n"
            }
        }
        let noData = all.filter { $0.verdict == .noData }
        if !noData.isEmpty {
            out += "- No data for: " + noData.map { "\($0.claim.rawValue) (\($0.setting), B = \($0.batchSize))" }.joined(separator: "; ")
                + ". A gap needs an evaluation above α; the analysis claims need `ssgd analyze`.\n"
        }
        out += "\n## Figures\n\n"
        for group in groups {
            out += "### \(group.setting), B = \(group.batchSize)\n\n"
            let prefix = "\(group.setting.slug)-b\(group.batchSize)-"
            for figure in figures where figure.fileName.hasPrefix(prefix) {
                let link = figureFolder.isEmpty ? figure.fileName : "\(figureFolder)/\(figure.fileName)"
                out += "![\(figure.title)](\(link))\n\n"
            }
        }
        return out
    }

    /// `target` relative to the folder `base` ("" when they are the same), e.g. "results" or "../report".
    public static func relativePath(from base: URL, to target: URL) -> String {
        let from = base.standardizedFileURL.pathComponents, to = target.standardizedFileURL.pathComponents
        var shared = 0
        while shared < min(from.count, to.count) && from[shared] == to[shared] { shared += 1 }
        return (Array(repeating: "..", count: from.count - shared) + to[shared...]).joined(separator: "/")
    }

    /// Seconds from the first run's start (its config.yaml) to the last run's end (its
    /// summary.json), and the runs' own wall seconds summed.
    var wallSpan: (wall: Double, summed: Double)? {
        let manager = FileManager.default
        func modified(_ path: String) -> Date? { (try? manager.attributesOfItem(atPath: path))?[.modificationDate] as? Date }
        let starts = runs.compactMap { modified(($0.path as NSString).appendingPathComponent("config.yaml")) }
        let ends = runs.compactMap { modified(($0.path as NSString).appendingPathComponent("summary.json")) }
        guard let first = starts.min(), let last = ends.max() else { return nil }
        let summed = runs.compactMap { $0.summary?.wallSeconds }.reduce(0, +)
        return (last.timeIntervalSince(first), summed)
    }
}
