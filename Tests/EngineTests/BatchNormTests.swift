import Engine
import Testing
import TestSupport

struct BatchNormTests {
    @Test func aHandComputedBatchIsNormalisedPerChannelAndReportsUnbiasedVariance() {
        // Channel 0 over (N, S) = {1, 3 | 5, 7}: mean 4, biased variance 5, unbiased 20/3.
        // Channel 1 = {2, 2 | 2, 2}: mean 2, variance 0 → output β.
        let norm = BatchNorm2d(name: "bn", inputShape: Shape(2, 1, 2), ghostBatch: 8)
        let network = makeNetwork([norm], maxBatch: 2)
        setParameter(network, "bn.weight", [2, 1])
        setParameter(network, "bn.bias", [1, 0.5])
        let y = forward(network, [1, 3, 2, 2, 5, 7, 2, 2], batch: 2)
        let s = (Float(5) + 1e-5).squareRoot()
        let expected: [Float] = [2 * -3 / s + 1, 2 * -1 / s + 1, 0.5, 0.5, 2 * 1 / s + 1, 2 * 3 / s + 1, 0.5, 0.5]
        #expect(maxAbsDifference(y, expected) < 1e-6)
        #expect(network.batchStatistics.toArray() == [4, 2, 20.0 / 3.0, 0])
    }

    @Test func ghostBatchesOfABatchOfEightEqualTwoSeparateBatchesOfFourBitForBit() {
        let shape = Shape(3, 2, 2)
        let x = GradientCheck.gaussian(count: 8 * shape.count, seed: 21).map { 2 * $0 + 0.5 }
        let dy = GradientCheck.gaussian(count: 8 * shape.count, seed: 22)
        let whole = makeNetwork([BatchNorm2d(name: "bn", inputShape: shape, ghostBatch: 4)], maxBatch: 8)
        let part = makeNetwork([BatchNorm2d(name: "bn", inputShape: shape, ghostBatch: 4)], maxBatch: 4)
        for network in [whole, part] {
            setParameter(network, "bn.weight", [1.5, 0.5, -1])
            setParameter(network, "bn.bias", [0.1, 0.2, 0.3])
        }
        let (y, dx) = forwardBackward(whole, x, dy, batch: 8)
        let statistics = whole.batchStatistics.toArray()
        var yParts: [Float] = []
        var dxParts: [Float] = []
        var chunkStatistics: [[Float]] = []
        part.gradients.zero()
        for half in 0..<2 {
            let range = (half * 4 * shape.count)..<((half + 1) * 4 * shape.count)
            let (y, dx) = forwardBackward(part, Array(x[range]), Array(dy[range]), batch: 4)
            yParts += y
            dxParts += dx
            chunkStatistics.append(part.batchStatistics.toArray())
        }
        #expect(y == yParts)
        #expect(dx == dxParts)
        // γ/β gradients: the whole batch sums both chunks (per chunk, then across), the parts add
        // up in the same order.
        #expect(maxAbsDifference(whole.gradients.toArray(), part.gradients.toArray()) < 1e-5)
        // Statistics: the mean over chunks of the chunk means / unbiased variances.
        let averaged = zip(chunkStatistics[0], chunkStatistics[1]).map { ($0 + $1) / 2 }
        #expect(maxAbsDifference(statistics, averaged) < 1e-6)
        #expect(chunkStatistics[0] != chunkStatistics[1])
    }

    @Test func trainingForwardLeavesRunningStatisticsAloneAndInferenceUsesThem() {
        let norm = BatchNorm2d(name: "bn", inputShape: Shape(2, 2, 1), ghostBatch: 2)
        let network = makeNetwork([norm], maxBatch: 2)
        let x: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]
        _ = forward(network, x, batch: 2)
        #expect(network.state.toArray() == [0, 0, 1, 1])
        #expect(network.stateTable.map(\.name) == ["bn.running_mean", "bn.running_var"])
        #expect(network.parameterTable.map(\.name) == ["bn.weight", "bn.bias"])
        // running_mean [1, −1], running_var [4, 0.25]: y = (x − m)/√(v + ε)
        for (i, v) in [Float(1), -1, 4, 0.25].enumerated() { network.state[i] = v }
        let (y, dx) = forwardBackward(network, x, [Float](repeating: 1, count: 8), batch: 2, context: .inference)
        let a = 1 / (Float(4) + 1e-5).squareRoot(), b = 1 / (Float(0.25) + 1e-5).squareRoot()
        let expected: [Float] = [0, a, 4 * b, 5 * b, 4 * a, 5 * a, 8 * b, 9 * b]
        #expect(maxAbsDifference(y, expected) < 1e-5)
        // Inference backward is the per-channel affine map's transpose.
        #expect(maxAbsDifference(dx, [a, a, b, b, a, a, b, b]) < 1e-6)
    }

    @Test func gradientsThroughUnevenGhostChunksMatchFiniteDifferences() {
        // Batch 5 in chunks of 2, 2, 1 so every chunk's statistics enter the gradient.
        let shape = Shape(2, 3, 3)
        let norm = BatchNorm2d(name: "0", inputShape: shape, ghostBatch: 2)
        let relu = ReLU(inputShape: shape)
        let linear = Linear(name: "2", inputShape: shape, outFeatures: 3)
        let network = makeNetwork([norm, relu, linear], maxBatch: 5, seed: 3)
        setParameter(network, "0.weight", [1.2, 0.7])
        setParameter(network, "0.bias", [0.3, -0.2])
        let x = GradientCheck.gaussian(count: 5 * shape.count, seed: 8)
        let result = GradientCheck.compare(network, input: x, labels: [0, 1, 2, 1, 0], batch: 5, samples: 12)
        // h = 1e-2 central differences in float32 (loss summed in double): ~1e-4 relative error
        // expected; 1e-2 allows a ReLU kink near a sampled coordinate.
        #expect(result.worstRelativeError < 1e-2, "\(result)")
        // And in inference mode, where BN is a fixed affine map.
        network.state[2] = 0.5
        // A step of 1e-3 here: shifting β moves all 45 values of a channel, so h = 1e-2 would
        // likely carry one across the ReLU kink; float32 rounding at 1e-3 is still ~1e-3 relative.
        let inference = GradientCheck.compare(
            network, input: x, labels: [0, 1, 2, 1, 0], batch: 5, samples: 8, step: 1e-3, context: .inference)
        #expect(inference.worstRelativeError < 1e-2, "\(inference)")
    }

    @Test func flatFeatureInputIsNormalisedPerFeature() {
        let norm = BatchNorm2d(name: "bn", inputShape: Shape(3), ghostBatch: 4)
        let network = makeNetwork([norm], maxBatch: 4)
        let y = forward(network, [1, 10, 0, 3, 10, 0, 1, 10, 4, 3, 10, 4], batch: 4)
        // Feature 0: {1, 3, 1, 3} → ±1/√(1 + ε); feature 1 constant → 0; feature 2: {0, 0, 4, 4} → ±1.
        let e = 1 / (Float(1) + 1e-5).squareRoot(), f = 2 / (Float(4) + 1e-5).squareRoot()
        #expect(maxAbsDifference(y, [-e, 0, -f, e, 0, -f, -e, 0, f, e, 0, f]) < 1e-6)
        #expect(network.batchStatistics.toArray().count == 6)
    }
}

struct BatchNormRunningStatisticsTests {
    /// Two BN layers share one step-statistics vector (all means, then all variances); each
    /// folds its own channels with its own momentum.
    @Test func eachLayerFoldsItsChannelsOfTheStepStatisticsWithItsMomentum() {
        let first = BatchNorm2d(name: "a", inputShape: Shape(2, 1, 1), ghostBatch: 4)
        let second = BatchNorm2d(name: "b", inputShape: Shape(2, 1, 1), ghostBatch: 4)
        let network = makeNetwork([first, second], maxBatch: 4)
        #expect(network.batchNormLayers.count == 2)
        #expect(first.momentum == 0.1)
        network.setBatchNormMomentum(0.25)
        second.momentum = 0.5
        // means: a = [1, 2], b = [3, 4]; variances: a = [5, 6], b = [7, 8]
        network.foldBatchStatistics([1, 2, 3, 4, 5, 6, 7, 8])
        func state(_ name: String) -> [Float] {
            let entry = network.stateTable.first { $0.name == name }!
            return (0..<entry.count).map { network.state[entry.offset + $0] }
        }
        // running mean starts at 0, running variance at 1.
        #expect(state("a.running_mean") == [0.25 * 1, 0.25 * 2])
        #expect(state("a.running_var") == [0.75 + 0.25 * 5, 0.75 + 0.25 * 6])
        #expect(state("b.running_mean") == [0.5 * 3, 0.5 * 4])
        #expect(state("b.running_var") == [0.5 + 0.5 * 7, 0.5 + 0.5 * 8])
    }
}
