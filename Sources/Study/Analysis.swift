import Data
import Engine
import Foundation
import Runs

// The paper's sensitivity measurements on a trained network (Yoshida & Miyato 2017, §5;
// docs/analysis.md): per-example input-gradient norms, the largest eigenvalue of the loss
// Hessian by power iteration on finite-difference Hessian-vector products, and the singular
// values of every regularised weight matrix. Everything runs in inference mode (BN running
// statistics, no dropout), so a chunk's summed loss is a sum of independent per-example losses.
//
// Letters: N examples analysed per split, P parameters, S = floats per example, C chunk size.

public struct AnalysisOptions: Sendable {
    /// Examples per split: the first min(samples, split size), in index order.
    public var samples: Int
    /// Power iterations (Hessian-vector products) per split; at least 2.
    public var hessianIterations: Int
    /// Examples per forward/backward; nil uses the run's ghost_batch.
    public var chunkSize: Int?

    public init(samples: Int = 1000, hessianIterations: Int = 20, chunkSize: Int? = nil) {
        self.samples = samples
        self.hessianIterations = hessianIterations
        self.chunkSize = chunkSize
    }
}

public struct AnalysisError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public final class RunAnalysis {
    public let network: Network
    public let data: DatasetPair
    public let chunkSize: Int
    /// Seeds the power iteration's start vector.
    public let seed: UInt64

    private let sampleSize: Int
    private let input: FloatBuffer  // (C, S)
    private let inputGradient: FloatBuffer  // (C, S)
    private var labels: [Int32]  // (C)
    private let savedParameters: FloatBuffer  // (P) θ while it is perturbed
    private let plusGradient: FloatBuffer  // (P) ∇L(θ + εv)

    public init(network: Network, data: DatasetPair, chunkSize: Int, seed: UInt64) {
        precondition(chunkSize > 0, "chunk size must be positive, got \(chunkSize)")
        precondition(
            data.shape.count == network.inputShape.count,
            "data set gives \(data.shape) but the network takes \(network.inputShape)")
        self.network = network
        self.data = data
        self.chunkSize = chunkSize
        self.seed = seed
        sampleSize = data.shape.count
        input = FloatBuffer(count: chunkSize * sampleSize)
        inputGradient = FloatBuffer(count: chunkSize * sampleSize)
        labels = [Int32](repeating: 0, count: chunkSize)
        savedParameters = FloatBuffer(count: network.parameterCount)
        plusGradient = FloatBuffer(count: network.parameterCount)
        network.reserve(maxBatch: chunkSize)
    }

    /// Examples analysed from `split`: the first min(samples, split size).
    public func exampleCount(_ split: Split, samples: Int) -> Int { min(samples, data.dataset(split).count) }

    /// Runs `body(first, n)` after an inference forward and the loss of examples
    /// [first, first + n) of `split`, chunk after chunk, over the first `count` examples.
    private func forEachChunk(_ split: Split, count: Int, _ body: (Int, Int) -> Void) -> Double {
        let dataset = data.dataset(split)
        var lossSum = 0.0
        var first = 0
        while first < count {
            let n = min(chunkSize, count - first)
            input.pointer.update(from: dataset.sample(first), count: n * sampleSize)
            for j in 0..<n { labels[j] = dataset.labels[first + j] }
            lossSum += labels.withUnsafeBufferPointer { y in
                let logits = network.forward(input.pointer, batch: n, context: .inference)
                return network.loss.forward(logits: logits, labels: y.baseAddress!, batch: n).lossSum
            }
            body(first, n)
            first += n
        }
        return lossSum
    }

    // MARK: - Input gradients

    /// ‖∇ₓ ℓ(x_i)‖₂ for each of the first `count` examples of `split` (i in index order).
    /// In inference mode example i's logits depend on x_i only, so the input gradient of the
    /// chunk's summed loss holds each example's own ∇ₓ ℓ(x_i) in its row.
    public func inputGradientNorms(_ split: Split, count: Int) -> [Float] {
        var norms = [Float]()
        norms.reserveCapacity(count)
        _ = forEachChunk(split, count: count) { _, n in
            network.gradients.zero()
            network.backward(logitGradient: network.loss.backward(scale: 1), batch: n, inputGradient: inputGradient.pointer)
            for j in 0..<n {
                let row = inputGradient.pointer + j * sampleSize
                var sum = 0.0
                for i in 0..<sampleSize { sum += Double(row[i]) * Double(row[i]) }
                norms.append(Float(sum.squareRoot()))
            }
        }
        network.gradients.zero()
        return norms
    }

    // MARK: - Hessian

    /// The mean loss L(θ) = (1/count) Σ ℓ_i over the first `count` examples of `split`, with
    /// ∇_θ L left in `network.gradients`.
    @discardableResult
    public func meanLossGradient(_ split: Split, count: Int) -> Double {
        precondition(count > 0, "the mean loss needs at least one example")
        network.gradients.zero()
        let scale = 1 / Float(count)
        let lossSum = forEachChunk(split, count: count) { _, n in
            network.backward(logitGradient: network.loss.backward(scale: scale), batch: n)
        }
        return lossSum / Double(count)
    }

    /// The finite-difference step for direction `v`:
    ///   ε = 1e-3 · max(1, ‖θ‖) / ‖v‖, so the perturbation ‖εv‖ is 1e-3 of the parameters' size.
    /// The central difference has truncation error O(ε²·‖∇³L‖) and rounding error
    /// O(u·‖∇L‖/ε) with float32's u ≈ 6e-8; balancing the two gives ε ≈ u^(1/3) ≈ 4e-3 of the
    /// scale. We take a little less so fewer ReLU / max-pool kinks are crossed (the gradient is
    /// only piecewise smooth there), and floor the scale at 1 so a near-zero θ still moves each
    /// coordinate well above float32's resolution.
    public func finiteDifferenceStep(direction v: FloatBuffer) -> Float {
        let thetaNorm = norm2(count: network.parameterCount, network.parameters.pointer)
        let vNorm = norm2(count: v.count, v.pointer)
        precondition(vNorm > 0, "the Hessian-vector product needs a non-zero direction")
        return 1e-3 * max(1, thetaNorm) / vNorm
    }

    /// Hv ≈ (∇L(θ + εv) − ∇L(θ − εv)) / (2ε) for the mean loss of `split`'s first `count`
    /// examples, into `result` (P). θ is restored bit for bit afterwards; `network.gradients`
    /// is left holding ∇L(θ − εv).
    public func hessianVectorProduct(
        _ split: Split, count: Int, direction v: FloatBuffer, into result: FloatBuffer, epsilon: Float? = nil
    ) {
        let parameterCount = network.parameterCount
        precondition(v.count == parameterCount && result.count == parameterCount,
                     "direction has \(v.count) and result \(result.count) values for \(parameterCount) parameters")
        let step = epsilon ?? finiteDifferenceStep(direction: v)
        savedParameters.copy(from: network.parameters)
        axpy(count: parameterCount, alpha: step, v.pointer, network.parameters.pointer)
        meanLossGradient(split, count: count)
        plusGradient.copy(from: network.gradients)
        network.parameters.copy(from: savedParameters)
        axpy(count: parameterCount, alpha: -step, v.pointer, network.parameters.pointer)
        meanLossGradient(split, count: count)
        network.parameters.copy(from: savedParameters)
        let inverse = 1 / (2 * Double(step))
        let plus = plusGradient.pointer
        let minus = network.gradients.pointer
        for i in 0..<parameterCount {
            result[i] = Float((Double(plus[i]) - Double(minus[i])) * inverse)
        }
    }

    /// Power iteration v ← Hv/‖Hv‖ from a seeded Gaussian unit vector, `iterations` Hessian-
    /// vector products; the estimate is the Rayleigh quotient vᵀHv of the last iterate. It
    /// converges to the eigenvalue of largest magnitude (for a trained network's loss, the
    /// largest positive one).
    public func largestHessianEigenvalue(_ split: Split, count: Int, iterations: Int) throws -> HessianEigenvalue {
        precondition(iterations >= 2, "power iteration needs at least 2 iterations to report a relative change")
        let parameterCount = network.parameterCount
        let v = FloatBuffer(count: parameterCount)
        let hv = FloatBuffer(count: parameterCount)
        var generator = SplitMix64(keys: seed, 0x4845_5353)  // "HESS"
        for i in 0..<parameterCount { v[i] = generator.nextGaussian() }
        scale(count: parameterCount, by: 1 / norm2(count: parameterCount, v.pointer), v.pointer)
        var value = 0.0
        var previous = 0.0
        for iteration in 0..<iterations {
            hessianVectorProduct(split, count: count, direction: v, into: hv)
            var rayleigh = 0.0
            var squared = 0.0
            for i in 0..<parameterCount {
                rayleigh += Double(v[i]) * Double(hv[i])
                squared += Double(hv[i]) * Double(hv[i])
            }
            guard rayleigh.isFinite, squared.isFinite else {
                throw AnalysisError("the Hessian-vector product on \(split) data is not finite at iteration \(iteration + 1); the checkpoint's loss or gradient overflows")
            }
            previous = value
            value = rayleigh
            guard squared > 0 else {
                return HessianEigenvalue(value: 0, iterations: iteration + 1, relativeChange: 0)
            }
            let inverse = Float(1 / squared.squareRoot())
            for i in 0..<parameterCount { v[i] = hv[i] * inverse }
        }
        let change = value == 0 ? abs(value - previous) : abs(value - previous) / abs(value)
        return HessianEigenvalue(value: value, iterations: iterations, relativeChange: change)
    }

    // MARK: - Spectra

    /// All singular values (largest first) of every regularised weight matrix, by name, by
    /// LAPACK sgesdd; conv kernels as out × in·kh·kw.
    public func singularValues() throws -> [String: [Float]] {
        var result = [String: [Float]]()
        for matrix in network.weightMatrices {
            result[matrix.name] = try SingularValues.compute(
                network.parameters.pointer + matrix.offset, rows: matrix.rows, cols: matrix.cols)
        }
        return result
    }

    // MARK: - Everything

    /// All three measurements on the network as it is.
    public func analyze(step: Int, checkpoint: String, options: AnalysisOptions) throws -> AnalysisResult {
        precondition(options.samples > 0, "analysis needs at least one example per split")
        let trainCount = exampleCount(.train, samples: options.samples)
        let testCount = exampleCount(.test, samples: options.samples)
        guard trainCount > 0, testCount > 0 else {
            throw AnalysisError("the data set has \(data.train.count) training and \(data.test.count) test examples; analysis needs both")
        }
        func statistics(_ split: Split, _ count: Int) throws -> InputGradientNormStatistics {
            let norms = inputGradientNorms(split, count: count)
            guard norms.allSatisfy(\.isFinite) else {
                throw AnalysisError("an input gradient on \(split) data is not finite; the checkpoint's loss overflows")
            }
            return InputGradientNormStatistics(norms: norms)
        }
        let norms = SplitPair(train: try statistics(.train, trainCount), test: try statistics(.test, testCount))
        let hessian = SplitPair(
            train: try largestHessianEigenvalue(.train, count: trainCount, iterations: options.hessianIterations),
            test: try largestHessianEigenvalue(.test, count: testCount, iterations: options.hessianIterations))
        let spectra = try singularValues()
        guard spectra.values.allSatisfy({ $0.allSatisfy(\.isFinite) }) else {
            throw AnalysisError("a weight matrix holds non-finite values")
        }
        return AnalysisResult(
            step: step, checkpoint: checkpoint, samples: options.samples, inputGradientNorm: norms,
            hessianMaxEigenvalue: hessian, singularValues: spectra,
            sigmaMax: spectra.compactMapValues { $0.first })
    }

    /// The run's data set and checkpoint (newest that verifies, or `checkpoint`), analysed.
    public static func analyze(
        run: RunDirectory, checkpoint: String? = nil, options: AnalysisOptions = AnalysisOptions()
    ) throws -> (result: AnalysisResult, restored: RestoredCheckpoint) {
        let restored = try CheckpointExport.restore(run: run, checkpoint: checkpoint)
        let data = try DatasetLoader.load(restored.config)
        guard data.shape.count == restored.network.inputShape.count else {
            throw AnalysisError("the data set gives \(data.shape) but the run's model takes \(restored.network.inputShape); check data_path in \(run.configPath)")
        }
        let analysis = RunAnalysis(
            network: restored.network, data: data, chunkSize: options.chunkSize ?? restored.config.ghostBatch,
            seed: restored.config.seed)
        let result = try analysis.analyze(step: restored.step, checkpoint: restored.path, options: options)
        return (result, restored)
    }
}
