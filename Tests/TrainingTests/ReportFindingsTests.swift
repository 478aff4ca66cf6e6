import Foundation
import Study
import Testing

// The verdicts of the results page: a difference counts only beyond twice its standard error,
// in the claimed direction (lower for everything but test accuracy).
@Suite struct ReportFindingsTests {
    func statistics(_ values: [Double]) -> SampleStatistics? { SampleStatistics(values) }

    @Test func aClearDifferenceInTheClaimedDirectionIsReproduced() {
        #expect(Finding.judge(.testAccuracy, spectral: statistics([0.90, 0.91, 0.905]), vanilla: statistics([0.80, 0.81, 0.805])) == .reproduced)
        #expect(Finding.judge(.hessian, spectral: statistics([5, 5.5, 6]), vanilla: statistics([12, 13, 12.5])) == .reproduced)
    }

    @Test func aClearDifferenceTheOtherWayIsContradicted() {
        #expect(Finding.judge(.gap, spectral: statistics([0.05, 0.06, 0.055]), vanilla: statistics([0.01, 0.012, 0.011])) == .contradicted)
        #expect(Finding.judge(.testAccuracy, spectral: statistics([0.70, 0.71, 0.705]), vanilla: statistics([0.80, 0.81, 0.805])) == .contradicted)
    }

    @Test func differencesInsideTheSeedNoiseAreSaidToBe() {
        // Means 0.01 apart, standard deviations 0.05: SE ≈ 0.04, far above the difference.
        #expect(Finding.judge(.testAccuracy, spectral: statistics([0.86, 0.81, 0.91]), vanilla: statistics([0.85, 0.80, 0.90])) == .noiseAgrees)
        #expect(Finding.judge(.sigmaMax, spectral: statistics([3.1, 2.1, 4.1]), vanilla: statistics([3.0, 2.0, 4.0])) == .noiseDisagrees)
        // One run a side has no noise estimate: never a verdict.
        #expect(Finding.judge(.testAccuracy, spectral: statistics([0.99]), vanilla: statistics([0.5])) == .noiseAgrees)
        #expect(Finding.judge(.testAccuracy, spectral: nil, vanilla: statistics([0.5, 0.6])) == .noData)
    }

    @Test func figureLinksAreRelativeToThePage() {
        let docs = URL(fileURLWithPath: "/repo/docs")
        #expect(Report.relativePath(from: docs, to: URL(fileURLWithPath: "/repo/docs/results")) == "results")
        #expect(Report.relativePath(from: docs, to: URL(fileURLWithPath: "/repo/report")) == "../report")
        #expect(Report.relativePath(from: docs, to: docs) == "")
    }
}
