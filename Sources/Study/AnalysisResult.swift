import Foundation
import Runs

// What `ssgd analyze` writes to RUN_DIR/analysis.json (docs/analysis.md): the paper's
// sensitivity measurements on one checkpoint. Keys are snake_case; `ssgd report` decodes the
// same types, so renaming a key here is a format change.

/// One value per split.
public struct SplitPair<Value: Codable & Sendable>: Codable, Sendable {
    public var train: Value
    public var test: Value

    public init(train: Value, test: Value) {
        self.train = train
        self.test = test
    }
}

/// Statistics of ‖∇ₓ ℓ(x_i)‖₂ over the analysed examples of one split.
public struct InputGradientNormStatistics: Codable, Sendable, Equatable {
    public var mean: Double
    public var median: Double
    public var max: Double
    /// Examples the statistics are over (min(--samples, split size)).
    public var samples: Int

    public init(mean: Double, median: Double, max: Double, samples: Int) {
        self.mean = mean
        self.median = median
        self.max = max
        self.samples = samples
    }

    /// mean, median (mean of the two middle values for an even count) and max of `norms`.
    public init(norms: [Float]) {
        precondition(!norms.isEmpty, "input gradient statistics need at least one example")
        let sorted = norms.map(Double.init).sorted()
        let middle = sorted.count / 2
        mean = sorted.reduce(0, +) / Double(sorted.count)
        median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        max = sorted[sorted.count - 1]
        samples = sorted.count
    }
}

/// The largest Hessian eigenvalue estimate of one split's mean loss.
public struct HessianEigenvalue: Codable, Sendable, Equatable {
    /// Rayleigh quotient vᵀHv of the last unit iterate v.
    public var value: Double
    /// Power iterations run (one Hessian-vector product each).
    public var iterations: Int
    /// |λ_K − λ_{K−1}| / |λ_K| between the last two Rayleigh quotients.
    public var relativeChange: Double

    public init(value: Double, iterations: Int, relativeChange: Double) {
        self.value = value
        self.iterations = iterations
        self.relativeChange = relativeChange
    }

    enum CodingKeys: String, CodingKey {
        case value, iterations
        case relativeChange = "relative_change"
    }
}

public struct AnalysisResult: Codable, Sendable {
    /// Training step of the analysed checkpoint.
    public var step: Int
    /// The checkpoint file that was analysed.
    public var checkpoint: String
    /// Requested examples per split (--samples); each split uses the first min(samples, size).
    public var samples: Int
    public var inputGradientNorm: SplitPair<InputGradientNormStatistics>
    public var hessianMaxEigenvalue: SplitPair<HessianEigenvalue>
    /// Every singular value of every regularised weight matrix, largest first.
    public var singularValues: [String: [Float]]
    /// σ₁ of every regularised weight matrix.
    public var sigmaMax: [String: Float]

    public init(
        step: Int, checkpoint: String, samples: Int, inputGradientNorm: SplitPair<InputGradientNormStatistics>,
        hessianMaxEigenvalue: SplitPair<HessianEigenvalue>, singularValues: [String: [Float]], sigmaMax: [String: Float]
    ) {
        self.step = step
        self.checkpoint = checkpoint
        self.samples = samples
        self.inputGradientNorm = inputGradientNorm
        self.hessianMaxEigenvalue = hessianMaxEigenvalue
        self.singularValues = singularValues
        self.sigmaMax = sigmaMax
    }

    enum CodingKeys: String, CodingKey {
        case step, checkpoint, samples
        case inputGradientNorm = "input_gradient_norm"
        case hessianMaxEigenvalue = "hessian_max_eigenvalue"
        case singularValues = "singular_values"
        case sigmaMax = "sigma_max"
    }

    /// Pretty-printed JSON with sorted keys.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
    }

    /// Write atomically to `path`.
    public func write(to path: String) throws {
        try AtomicFileWriter.write(try json(), to: path)
    }

    /// Read an analysis.json.
    public static func read(path: String) throws -> AnalysisResult {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RunDirectoryError("cannot read \(path); create it with: ssgd analyze RUN_DIR")
        }
        return try JSONDecoder().decode(AnalysisResult.self, from: data)
    }
}
