import Data
import Engine
import Foundation
import Runs
import Study
import TestSupport
import Testing
import Training

// `ssgd analyze` (docs/analysis.md) against independent oracles: per-example gradients one
// example at a time, a dense double-precision Hessian of a linear softmax model with a Jacobi
// eigen-solver, the loss's second difference, and the trainer's own power-iteration σ.

@Suite struct AnalysisTests {
    // MARK: - Fixtures

    /// A data set of seeded Gaussian inputs (the first coordinate scaled by `stretch`, so a
    /// linear model's Hessian has a clear top eigenvalue) and seeded labels.
    static func data(shape: Shape, classes: Int, train: Int, test: Int, stretch: Float = 1, seed: UInt64) throws -> DatasetPair {
        func split(_ name: String, _ count: Int, _ key: UInt64) -> Dataset {
            var values = GradientCheck.gaussian(count: count * shape.count, seed: seed ^ key)
            for i in stride(from: 0, to: values.count, by: shape.count) { values[i] *= stretch }
            var generator = SplitMix64(keys: seed, key)
            let labels = (0..<count).map { _ in Int32(generator.nextIndex(below: classes)) }
            return Dataset(name: name, shape: shape, classes: classes, images: FloatBuffer(values), labels: labels)
        }
        return try DatasetPair(train: split("train", train, 1), test: split("test", test, 2))
    }

    static func unitVector(count: Int, seed: UInt64) -> FloatBuffer {
        let v = FloatBuffer(GradientCheck.gaussian(count: count, seed: seed))
        scale(count: count, by: 1 / norm2(count: count, v.pointer), v.pointer)
        return v
    }

    static func dot(_ a: FloatBuffer, _ b: FloatBuffer) -> Double {
        (0..<a.count).reduce(0.0) { $0 + Double(a[$1]) * Double(b[$1]) }
    }

    static func relativeDistance(_ a: [Double], _ b: [Double]) -> Double {
        let difference = zip(a, b).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        let size = b.reduce(0.0) { $0 + $1 * $1 }
        return (difference / size).squareRoot()
    }

    /// The mean loss over all of `split` in one inference forward (no chunks).
    static func meanLoss(_ network: Network, _ dataset: Dataset) -> Double {
        GradientCheck.loss(network, input: Array(dataset.images.buffer), labels: dataset.labels, batch: dataset.count,
                           context: .inference) / Double(dataset.count)
    }

    /// The exact Hessian (P × P, double) of the mean softmax cross-entropy of a linear model
    /// z = W x + b over `dataset`:  H = (1/n) Σ_i (diag(p_i) − p_i p_iᵀ) ⊗ φ_i φ_iᵀ with φ_i = [x_i; 1].
    static func exactHessian(linearModel network: Network, _ dataset: Dataset) -> [[Double]] {
        let weight = network.parameterTable[0]
        let bias = network.parameterTable[1]
        let (k, d) = (network.classes, dataset.sampleSize)
        let p = network.parameterCount
        func index(_ row: Int, _ a: Int) -> Int { a < d ? weight.offset + row * d + a : bias.offset + row }
        var hessian = [[Double]](repeating: [Double](repeating: 0, count: p), count: p)
        for n in 0..<dataset.count {
            let x = dataset.sample(n)
            let phi = (0...d).map { $0 < d ? Double(x[$0]) : 1 }
            var z = [Double](repeating: 0, count: k)
            for row in 0..<k {
                z[row] = Double(network.parameters[bias.offset + row])
                for a in 0..<d { z[row] += Double(network.parameters[weight.offset + row * d + a]) * phi[a] }
            }
            let top = z.max()!
            let e = z.map { exp($0 - top) }
            let probabilities = e.map { $0 / e.reduce(0, +) }
            for r in 0..<k {
                for s in 0..<k {
                    let a = (r == s ? probabilities[r] : 0) - probabilities[r] * probabilities[s]
                    for i in 0...d {
                        for j in 0...d { hessian[index(r, i)][index(s, j)] += a * phi[i] * phi[j] / Double(dataset.count) }
                    }
                }
            }
        }
        return hessian
    }

    /// Eigenvalues of a symmetric matrix by cyclic Jacobi rotations, largest first.
    static func jacobiEigenvalues(_ matrix: [[Double]]) -> [Double] {
        var a = matrix
        let n = a.count
        for _ in 0..<100 {
            var off = 0.0
            for i in 0..<n { for j in 0..<n where i != j { off += a[i][j] * a[i][j] } }
            if off < 1e-24 { break }
            for p in 0..<n {
                for q in (p + 1)..<n where abs(a[p][q]) > 1e-300 {
                    let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                    let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot()
                    let s = t * c
                    for k in 0..<n {  // A ← A·J
                        let (akp, akq) = (a[k][p], a[k][q])
                        a[k][p] = c * akp - s * akq
                        a[k][q] = s * akp + c * akq
                    }
                    for k in 0..<n {  // A ← Jᵀ·A
                        let (apk, aqk) = (a[p][k], a[q][k])
                        a[p][k] = c * apk - s * aqk
                        a[q][k] = s * apk + c * aqk
                    }
                }
            }
        }
        return (0..<n).map { a[$0][$0] }.sorted(by: >)
    }

    // MARK: - Input gradients

    @Test func inputGradientNormsEqualPerExampleGradientsComputedOneAtATime() throws {
        let shape = Shape(1, 4, 4)
        let network = MLP.make(inputShape: shape, hidden: [8], classes: 3)
        network.initializeParameters(seed: 3)
        let data = try Self.data(shape: shape, classes: 3, train: 40, test: 12, seed: 5)
        // 37 examples in chunks of 16: two full chunks and a short one.
        let analysis = RunAnalysis(network: network, data: data, chunkSize: 16, seed: 1)
        let norms = analysis.inputGradientNorms(.train, count: 37)
        #expect(norms.count == 37)
        var worst = 0.0
        for i in 0..<37 {
            let x = Array(UnsafeBufferPointer(start: data.train.sample(i), count: shape.count))
            let gradient = GradientCheck.analytic(network, input: x, labels: [data.train.labels[i]], batch: 1, context: .inference).input
            let reference = gradient.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            worst = max(worst, abs(Double(norms[i]) - reference) / reference)
        }
        // Both are float32 backward passes of the same example; only summation order differs.
        #expect(worst < 1e-5)
        #expect(norms.allSatisfy { $0 > 0 })
    }

    @Test func inputGradientsUseBatchNormRunningStatisticsSoChunkingDoesNotMatter() throws {
        let shape = Shape(1, 4, 4)
        let network = Network(layers: [
            Linear(name: "0", inputShape: shape, outFeatures: 6),
            BatchNorm2d(name: "1", inputShape: Shape(6, 1, 1), ghostBatch: 16),
            ReLU(inputShape: Shape(6, 1, 1)),
            Linear(name: "3", inputShape: Shape(6, 1, 1), outFeatures: 3),
        ], classes: 3)
        network.initializeParameters(seed: 4)
        // Running statistics far from a chunk's own batch statistics.
        for entry in network.stateTable {
            let value: Float = entry.role == .runningMean ? 0.7 : 3.0
            (network.state.pointer + entry.offset).update(repeating: value, count: entry.count)
        }
        let data = try Self.data(shape: shape, classes: 3, train: 32, test: 8, seed: 6)
        let chunked = RunAnalysis(network: network, data: data, chunkSize: 16, seed: 1).inputGradientNorms(.train, count: 32)
        for i in [0, 13, 31] {
            let x = Array(UnsafeBufferPointer(start: data.train.sample(i), count: shape.count))
            let gradient = GradientCheck.analytic(network, input: x, labels: [data.train.labels[i]], batch: 1, context: .inference).input
            let reference = gradient.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            #expect(abs(Double(chunked[i]) - reference) / reference < 1e-5)
        }
    }

    @Test func normStatisticsAreMeanMedianAndMax() {
        let statistics = InputGradientNormStatistics(norms: [3, 1, 2, 10])
        #expect(statistics == InputGradientNormStatistics(mean: 4, median: 2.5, max: 10, samples: 4))
        #expect(InputGradientNormStatistics(norms: [5, 1, 2]).median == 2)
    }

    // MARK: - Hessian

    @Test func hessianVectorProductMatchesACentralDifferenceOfWholeBatchGradients() throws {
        let shape = Shape(1, 4, 4)
        let network = MLP.make(inputShape: shape, hidden: [8], classes: 3)
        network.initializeParameters(seed: 7)
        let data = try Self.data(shape: shape, classes: 3, train: 30, test: 8, seed: 8)
        let analysis = RunAnalysis(network: network, data: data, chunkSize: 8, seed: 1)
        network.reserve(maxBatch: 30)
        let v = Self.unitVector(count: network.parameterCount, seed: 9)
        let hv = FloatBuffer(count: network.parameterCount)
        let before = network.parameters.toArray()
        analysis.hessianVectorProduct(.train, count: 30, direction: v, into: hv)
        #expect(network.parameters.toArray() == before)
        // Oracle: one forward over all 30 examples (no chunks), the summed loss's gradient
        // ÷ 30, central difference with twice the step, perturbation formed in double.
        let epsilon = 2 * Double(analysis.finiteDifferenceStep(direction: v))
        func gradient(_ sign: Double) -> [Double] {
            for i in 0..<network.parameterCount {
                network.parameters[i] = Float(Double(before[i]) + sign * epsilon * Double(v[i]))
            }
            let g = GradientCheck.analytic(network, input: Array(data.train.images.buffer), labels: data.train.labels,
                                           batch: 30, context: .inference).parameters
            return g.map { Double($0) / 30 }
        }
        let plus = gradient(1)
        let minus = gradient(-1)
        for i in 0..<network.parameterCount { network.parameters[i] = before[i] }
        let reference = zip(plus, minus).map { ($0 - $1) / (2 * epsilon) }
        // Both are O(ε²) accurate inside one ReLU pattern; float32 rounding of the gradient
        // (≈ 1e-7·‖∇L‖) over 2ε ≈ 1e-2 leaves ~1e-5·‖∇L‖, far below 1e-2·‖Hv‖.
        let distance = Self.relativeDistance((0..<hv.count).map { Double(hv[$0]) }, reference)
        #expect(distance < 1e-2, "relative distance \(distance)")
    }

    @Test func curvatureAlongVMatchesTheSecondDifferenceOfTheLoss() throws {
        let shape = Shape(5)
        let network = MLP.make(inputShape: shape, hidden: [], classes: 3)
        network.initializeParameters(seed: 10)
        let data = try Self.data(shape: shape, classes: 3, train: 40, test: 8, seed: 11)
        let analysis = RunAnalysis(network: network, data: data, chunkSize: 16, seed: 1)
        network.reserve(maxBatch: 40)
        let v = Self.unitVector(count: network.parameterCount, seed: 12)
        let hv = FloatBuffer(count: network.parameterCount)
        analysis.hessianVectorProduct(.train, count: 40, direction: v, into: hv)
        let curvature = Self.dot(v, hv)
        // (L(θ+hv) − 2L(θ) + L(θ−hv))/h²: truncation (h²/12)·∂⁴L ≈ 1e-3 relative at h = 0.1;
        // float32 logits put ≈ 1e-7 noise on L, i.e. ≈ 4e-5 after ÷h².
        let h = 0.1
        let theta = network.parameters.toArray()
        func loss(_ sign: Double) -> Double {
            for i in 0..<network.parameterCount { network.parameters[i] = Float(Double(theta[i]) + sign * h * Double(v[i])) }
            return Self.meanLoss(network, data.train)
        }
        let second = (loss(1) - 2 * loss(0) + loss(-1)) / (h * h)
        for i in 0..<network.parameterCount { network.parameters[i] = theta[i] }
        #expect(curvature > 0)
        #expect(abs(curvature - second) / abs(second) < 1e-2, "vᵀHv \(curvature), second difference \(second)")
    }

    @Test func hessianVectorProductEqualsTheExactHessianOfALinearSoftmaxModel() throws {
        let shape = Shape(4)
        let network = MLP.make(inputShape: shape, hidden: [], classes: 3)
        network.initializeParameters(seed: 13)
        let data = try Self.data(shape: shape, classes: 3, train: 50, test: 8, seed: 14)
        let analysis = RunAnalysis(network: network, data: data, chunkSize: 16, seed: 1)
        let hessian = Self.exactHessian(linearModel: network, data.train)
        let v = Self.unitVector(count: network.parameterCount, seed: 15)
        let hv = FloatBuffer(count: network.parameterCount)
        analysis.hessianVectorProduct(.train, count: 50, direction: v, into: hv)
        let exact = hessian.map { row in (0..<row.count).reduce(0.0) { $0 + row[$1] * Double(v[$1]) } }
        // ε ≈ 1e-3·‖θ‖: truncation O(ε²) ≈ 1e-6, float32 gradient rounding /2ε ≈ 1e-4.
        let distance = Self.relativeDistance((0..<hv.count).map { Double(hv[$0]) }, exact)
        #expect(distance < 2e-3, "relative distance \(distance)")
    }

    @Test func powerIterationFindsTheTopEigenvalueOfALinearSoftmaxModel() throws {
        let shape = Shape(4)
        let network = MLP.make(inputShape: shape, hidden: [], classes: 3)
        network.initializeParameters(seed: 16)
        let data = try Self.data(shape: shape, classes: 3, train: 60, test: 8, stretch: 3, seed: 17)
        let analysis = RunAnalysis(network: network, data: data, chunkSize: 16, seed: 2)
        let eigenvalues = Self.jacobiEigenvalues(Self.exactHessian(linearModel: network, data.train))
        // A clear gap, so 60 iterations converge: the error shrinks like (λ₂/λ₁)^(2k).
        #expect(eigenvalues[1] / eigenvalues[0] < 0.8)
        let before = network.parameters.toArray()
        let estimate = try analysis.largestHessianEigenvalue(.train, count: 60, iterations: 60)
        #expect(network.parameters.toArray() == before)
        #expect(estimate.iterations == 60)
        #expect(estimate.relativeChange < 1e-3)
        // The finite-difference Hv is accurate to ≈ 1e-4 (see above), so is its Rayleigh quotient.
        #expect(abs(estimate.value - eigenvalues[0]) / eigenvalues[0] < 2e-3,
                "power iteration \(estimate.value), Jacobi \(eigenvalues[0])")
    }

    // MARK: - Spectra

    @Test func spectraAreSortedCompleteAndTheirTopMatchesTheTrainersPowerIteration() throws {
        let trainer = try Fixtures.trainer(Fixtures.syntheticConfig())
        for _ in 0..<4 { _ = try trainer.trainStep() }
        let analysis = RunAnalysis(network: trainer.network, data: trainer.data, chunkSize: 16, seed: 1)
        let result = try analysis.analyze(step: trainer.step, checkpoint: "memory", options: AnalysisOptions(samples: 32, hessianIterations: 2))
        let reference = SpectralNorms.largest(network: trainer.network, seed: trainer.config.seed)
        let matrices = trainer.network.weightMatrices
        #expect(Set(result.singularValues.keys) == Set(matrices.map(\.name)))
        #expect(Set(result.sigmaMax.keys) == Set(matrices.map(\.name)))
        for matrix in matrices {
            let values = try #require(result.singularValues[matrix.name])
            #expect(values.count == min(matrix.rows, matrix.cols))
            #expect(zip(values, values.dropFirst()).allSatisfy { $0 >= $1 })
            let sigma = try #require(result.sigmaMax[matrix.name])
            let powerIteration = try #require(reference[matrix.name])
            #expect(sigma == values[0])
            #expect(abs(sigma - powerIteration) / sigma < 1e-3, "\(matrix.name): sgesdd \(sigma), power iteration \(powerIteration)")
        }
    }

    // MARK: - The command and the pipeline

    /// A trained synthetic run with config.yaml and a checkpoint, as `ssgd train` leaves it.
    static func trainedRun(_ config: TrainingConfig) throws -> String {
        let directory = Fixtures.temporaryDirectory("ssgd-analyze")
        let trainer = try Fixtures.trainer(config, runDirectory: directory)
        try trainer.train()
        try AtomicFileWriter.write(config.yaml(), to: RunDirectory(path: directory).configPath)
        return directory
    }

    @Test func analyzeCommandWritesAnalysisJSONWithEveryKey() throws {
        var config = Fixtures.syntheticConfig(epochs: 1)
        config.maxSteps = 3
        let directory = try Self.trainedRun(config)
        let (status, output) = try SSGDProcess.run(["analyze", directory, "--samples", "40", "--hessian-iterations", "3"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("hessian max eigenvalue"))
        let path = RunDirectory(path: directory).file("analysis.json")
        let data = try #require(FileManager.default.contents(atPath: path))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for key in ["step", "samples", "input_gradient_norm", "hessian_max_eigenvalue", "singular_values", "sigma_max"] {
            #expect(object[key] != nil, "missing \(key)")
        }
        #expect(object["step"] as? Int == 3)
        #expect(object["samples"] as? Int == 40)
        for split in ["train", "test"] {
            let norms = try #require((object["input_gradient_norm"] as? [String: Any])?[split] as? [String: Any])
            for key in ["mean", "median", "max"] { #expect(norms[key] is Double, "input_gradient_norm.\(split).\(key)") }
            let hessian = try #require((object["hessian_max_eigenvalue"] as? [String: Any])?[split] as? [String: Any])
            for key in ["value", "iterations", "relative_change"] { #expect(hessian[key] != nil, "hessian_max_eigenvalue.\(split).\(key)") }
            #expect(hessian["iterations"] as? Int == 3)
        }
        let sigmas = try #require(object["sigma_max"] as? [String: Any])
        #expect(Set(sigmas.keys) == ["0.weight", "2.weight", "4.weight"])
        // The library type reads what the command wrote.
        let decoded = try AnalysisResult.read(path: path)
        #expect(decoded.inputGradientNorm.train.samples == 40)
        #expect(decoded.hessianMaxEigenvalue.test.value.isFinite)
    }

    @Test func analyzeCommandRefusesAFolderWithoutARun() throws {
        let directory = Fixtures.temporaryDirectory("ssgd-analyze-empty")
        let (status, output) = try SSGDProcess.run(["analyze", directory])
        #expect(status == 1)
        #expect(output.contains("not a run directory"))
    }

    @Test func spectralRegularisationLowersSigmaMaxAgainstVanillaAfterTheSameSteps() throws {
        var vanilla = Fixtures.syntheticConfig(method: .vanilla, epochs: 2)
        vanilla.lambda = nil
        var spectral = Fixtures.syntheticConfig(method: .spectral, epochs: 2)
        spectral.lambda = 1.0
        let options = AnalysisOptions(samples: 32, hessianIterations: 2)
        let plain = try RunAnalysis.analyze(run: RunDirectory(path: try Self.trainedRun(vanilla)), options: options).result
        let regularised = try RunAnalysis.analyze(run: RunDirectory(path: try Self.trainedRun(spectral)), options: options).result
        #expect(plain.step == 16 && regularised.step == 16)
        for (name, sigma) in plain.sigmaMax {
            let other = try #require(regularised.sigmaMax[name])
            #expect(other < sigma, "\(name): spectral \(other), vanilla \(sigma)")
        }
    }
}
