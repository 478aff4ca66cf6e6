import Data
import Engine
import TestSupport
import Testing
import Training

@Suite struct AdversarialTests {
    @Test func eachExamplesPerturbationHasNormEpsilon() {
        let sampleSize = 10, batch = 4
        let x = GradientCheck.gaussian(count: batch * sampleSize, seed: 1)
        var g = GradientCheck.gaussian(count: batch * sampleSize, seed: 2)
        for i in 0..<sampleSize { g[i] *= 1e-3 }  // a tiny gradient still gets the full ε
        var out = [Float](repeating: 0, count: x.count)
        AdversarialPerturbation.perturb(x, gradient: g, into: &out, batch: batch, sampleSize: sampleSize, epsilon: 1.5)
        for n in 0..<batch {
            var squares: Float = 0
            for i in 0..<sampleSize { squares += (out[n * sampleSize + i] - x[n * sampleSize + i]) * (out[n * sampleSize + i] - x[n * sampleSize + i]) }
            #expect(abs(squares.squareRoot() - 1.5) < 1e-4)
        }
    }

    @Test func unitLossAndGradientAreTheAlphaMixOfCleanAndPerturbed() throws {
        var config = Fixtures.syntheticConfig(method: .adversarial)
        config.adversarialAlpha = 0.3
        config.adversarialEpsilon = 0.8
        let data = try DatasetLoader.load(config)
        let network = try ModelFactory.make(config, inputShape: data.shape, classes: data.classes)
        network.initializeParameters(seed: 5)
        let runner = try ShardRunner(network: network, data: data, config: config)
        let indices: [Int32] = (0..<Int32(config.ghostBatch)).map { $0 * 3 }
        var unitGradient = [Float]()
        let outcomes = try indices.withUnsafeBufferPointer { buffer in
            try runner.train(step: 0, epoch: 0, firstUnit: 0, unitCount: 1, indices: buffer) { _, sum in
                unitGradient = Array(UnsafeBufferPointer(start: sum, count: network.parameterCount))
            }
        }
        // Independent computation with the test's own finite-difference helper functions.
        let n = indices.count, size = data.shape.count
        var x = [Float](repeating: 0, count: n * size)
        var labels = [Int32](repeating: 0, count: n)
        for (j, index) in indices.enumerated() {
            for i in 0..<size { x[j * size + i] = data.train.sample(Int(index))[i] }
            labels[j] = data.train.labels[Int(index)]
        }
        network.reserve(maxBatch: n)  // the runner reserved only a chunk's rows
        let clean = GradientCheck.analytic(network, input: x, labels: labels, batch: n)
        var perturbed = [Float](repeating: 0, count: x.count)
        AdversarialPerturbation.perturb(x, gradient: clean.input, into: &perturbed, batch: n, sampleSize: size, epsilon: 0.8)
        let adversarial = GradientCheck.analytic(network, input: perturbed, labels: labels, batch: n)
        let cleanLoss = GradientCheck.loss(network, input: x, labels: labels, batch: n)
        let adversarialLoss = GradientCheck.loss(network, input: perturbed, labels: labels, batch: n)
        #expect(adversarialLoss > cleanLoss)  // the perturbation goes uphill
        let alpha = Double(Float(0.3))
        #expect(abs(outcomes.lossSums[0] - (alpha * cleanLoss + (1 - alpha) * adversarialLoss)) < 1e-3)
        var worst: Float = 0
        for i in 0..<network.parameterCount {
            let expected = Float(0.3) * clean.parameters[i] + Float(0.7) * adversarial.parameters[i]
            worst = max(worst, abs(expected - unitGradient[i]) / max(abs(expected), 1e-2))
        }
        #expect(worst < 1e-3)
    }
}
