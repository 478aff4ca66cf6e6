import Engine
import Foundation
import Testing

// Each initialiser against its definition: sample moments within sampling bounds, uniform
// bounds respected, and a Kolmogorov–Smirnov distance to the stated distribution. The seeds are
// fixed, so nothing here is random from run to run; the bounds are ≈ 5 standard errors (or a KS
// distance of 2/√n, p ≈ 0.001), wide enough for any seed and far too narrow for the wrong law
// (kaiming and lecun differ by 2× in variance; normal and uniform by 1.2 in kurtosis).

@Suite struct InitSchemeTests {
    /// Conv 16×6×6 → 256 channels (fan_in 144, 36,864 weights, 256 biases), BN, linear
    /// 9216 → 10 (fan_in 9216, 92,160 weights); and a wide linear layer 256 → 1024
    /// (fan_in 256, 262,144 weights, 1024 biases).
    static func networks() -> (conv: Network, wide: Network) {
        let conv = Conv2d(name: "0", inputShape: Shape(16, 6, 6), outChannels: 256, kernel: 3, padding: 1)
        let norm = BatchNorm2d(name: "1", inputShape: conv.outputShape, ghostBatch: 8)
        let head = Linear(name: "2", inputShape: Shape(norm.outputShape.count), outFeatures: 10)
        let wide = Linear(name: "0", inputShape: Shape(256), outFeatures: 1024)
        return (Network(layers: [conv, norm, head], classes: 10), Network(layers: [wide], classes: 1024))
    }

    static func values(_ network: Network, _ name: String) -> [Float] {
        guard let entry = network.parameterTable.first(where: { $0.name == name }) else {
            Issue.record("no parameter \(name)")
            return []
        }
        return Array(UnsafeBufferPointer(start: network.parameters.pointer + entry.offset, count: entry.count))
    }

    struct Moments {
        var mean = 0.0, variance = 0.0, kurtosis = 0.0
        init(_ values: [Float]) {
            let n = Double(values.count)
            mean = values.reduce(0.0) { $0 + Double($1) } / n
            var m2 = 0.0, m4 = 0.0
            for value in values {
                let d = Double(value) - mean
                m2 += d * d
                m4 += d * d * d * d
            }
            variance = m2 / n
            kurtosis = (m4 / n) / (variance * variance)
        }
    }

    /// sup |F_n(x) − F(x)| over the sample.
    static func ksDistance(_ values: [Float], cdf: (Double) -> Double) -> Double {
        let sorted = values.map(Double.init).sorted()
        let n = Double(sorted.count)
        var worst = 0.0
        for (i, x) in sorted.enumerated() {
            let f = cdf(x)
            worst = max(worst, abs(Double(i + 1) / n - f), abs(f - Double(i) / n))
        }
        return worst
    }

    /// Checks `values` are N(0, variance): mean, variance, kurtosis 3, KS distance.
    static func expectNormal(_ values: [Float], variance: Double, _ label: String) {
        let n = Double(values.count)
        let moments = Moments(values)
        let std = variance.squareRoot()
        #expect(abs(moments.mean) < 5 * std / n.squareRoot(), "\(label): mean \(moments.mean)")
        #expect(abs(moments.variance / variance - 1) < 5 * (2 / n).squareRoot(), "\(label): variance \(moments.variance), expected \(variance)")
        #expect(abs(moments.kurtosis - 3) < 5 * (24 / n).squareRoot(), "\(label): kurtosis \(moments.kurtosis), normal has 3")
        let distance = ksDistance(values) { 0.5 * (1 + erf($0 / (std * 2.0.squareRoot()))) }
        #expect(distance < 2 / n.squareRoot(), "\(label): KS distance to N(0, \(variance)) is \(distance)")
    }

    /// Checks `values` are U(−bound, bound): every value inside, the extremes near the bounds,
    /// mean, variance bound²/3, kurtosis 1.8, KS distance.
    static func expectUniform(_ values: [Float], bound: Double, _ label: String) {
        let n = Double(values.count)
        let moments = Moments(values)
        let variance = bound * bound / 3
        #expect(values.allSatisfy { abs(Double($0)) <= bound }, "\(label): a value outside ±\(bound)")
        #expect(Double(values.max() ?? 0) > bound * (1 - 20 / n) && Double(values.min() ?? 0) < -bound * (1 - 20 / n),
                "\(label): extremes \(values.min() ?? 0), \(values.max() ?? 0) far inside ±\(bound)")
        #expect(abs(moments.mean) < 5 * variance.squareRoot() / n.squareRoot(), "\(label): mean \(moments.mean)")
        // Var of the sample variance of U is (μ4 − σ⁴)/n = σ⁴·0.8/n.
        #expect(abs(moments.variance / variance - 1) < 5 * (0.8 / n).squareRoot(), "\(label): variance \(moments.variance), expected \(variance)")
        // The sample kurtosis of U has variance ≈ 1.32/n (delta method over its moments).
        #expect(abs(moments.kurtosis - 1.8) < 5 * (1.32 / n).squareRoot(), "\(label): kurtosis \(moments.kurtosis), uniform has 1.8")
        let distance = ksDistance(values) { min(1, max(0, ($0 + bound) / (2 * bound))) }
        #expect(distance < 2 / n.squareRoot(), "\(label): KS distance to U(±\(bound)) is \(distance)")
    }

    static func expectNormalizationUntouched(_ network: Network) {
        #expect(values(network, "1.weight").allSatisfy { $0 == 1 }, "BN γ starts at 1")
        #expect(values(network, "1.bias").allSatisfy { $0 == 0 }, "BN β starts at 0")
    }

    /// What a scheme's definition says a tensor of this fan-in holds.
    enum Law {
        /// N(0, factor / fan_in).
        case normal(factor: Double)
        /// U(±1/√fan_in).
        case uniform
        case zero
    }

    static func expect(_ values: [Float], _ law: Law, fanIn: Int, _ label: String) {
        switch law {
        case .normal(let factor): expectNormal(values, variance: factor / Double(fanIn), label)
        case .uniform: expectUniform(values, bound: 1 / Double(fanIn).squareRoot(), label)
        case .zero: #expect(values.allSatisfy { $0 == 0 }, "\(label): not all zero")
        }
    }

    @Test(arguments: InitScheme.allCases)
    func eachSchemeDrawsWeightsAndBiasesAsItsDefinitionSays(scheme: InitScheme) {
        let (weights, biases): (Law, Law) = switch scheme {
        case .kaimingNormal: (.normal(factor: 2), .uniform)
        case .pytorch: (.uniform, .uniform)
        case .lecunNormal: (.normal(factor: 1), .zero)
        }
        let (conv, wide) = Self.networks()
        conv.initializeParameters(seed: 7, scheme: scheme)
        wide.initializeParameters(seed: 8, scheme: scheme)
        Self.expect(Self.values(wide, "0.weight"), weights, fanIn: 256, "\(scheme) linear weight")
        Self.expect(Self.values(conv, "0.weight"), weights, fanIn: 144, "\(scheme) conv weight")
        Self.expect(Self.values(conv, "2.weight"), weights, fanIn: 9216, "\(scheme) head weight")
        Self.expect(Self.values(wide, "0.bias"), biases, fanIn: 256, "\(scheme) linear bias")
        Self.expect(Self.values(conv, "0.bias"), biases, fanIn: 144, "\(scheme) conv bias")
        Self.expectNormalizationUntouched(conv)
    }

    @Test func theDefaultSchemeIsKaimingNormalAndSchemesShareTheirStreams() {
        let (a, _) = Self.networks()
        let (b, _) = Self.networks()
        let (c, _) = Self.networks()
        a.initializeParameters(seed: 3)
        b.initializeParameters(seed: 3, scheme: .kaimingNormal)
        c.initializeParameters(seed: 3, scheme: .lecunNormal)
        #expect(Self.values(a, "0.weight") == Self.values(b, "0.weight"))
        #expect(Self.values(a, "0.bias") == Self.values(b, "0.bias"))
        // The same Gaussian draws, scaled by √(1/2): LeCun normal is Kaiming normal's stream at half the variance.
        let ratio = zip(Self.values(c, "0.weight"), Self.values(a, "0.weight")).prefix(100).map { Double($0 / $1) }
        #expect(ratio.allSatisfy { abs($0 - 0.5.squareRoot()) < 1e-5 })
    }
}
