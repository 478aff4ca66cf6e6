import Engine
import Testing
import TestSupport

@Suite struct ReLUTests {
    @Test func forwardAndBackwardMatchAHandComputedCase() {
        let relu = ReLU(inputShape: Shape(4))
        relu.reserve(maxBatch: 1)
        let x: [Float] = [-2, 0, 0.5, 3]
        let y = x.withUnsafeBufferPointer { relu.forward($0.baseAddress!, batch: 1, context: .inference) }
        #expect(Array(UnsafeBufferPointer(start: y, count: 4)) == [0, 0, 0.5, 3])
        var dy: [Float] = [1, 1, 2, -4]
        var dx = [Float](repeating: 9, count: 4)
        dy.withUnsafeMutableBufferPointer { g in
            dx.withUnsafeMutableBufferPointer { relu.backward(outputGradient: g.baseAddress!, inputGradient: $0.baseAddress!, batch: 1) }
        }
        #expect(dx == [0, 0, 2, -4])
    }

    @Test func reluNetworkMatchesFiniteDifferences() {
        let network = MLP.make(inputShape: Shape(6), hidden: [8], classes: 3)
        network.reserve(maxBatch: 3)
        network.initializeParameters(seed: 11)
        let input = GradientCheck.gaussian(count: 18, seed: 12)
        // h = 1e-3 keeps the difference away from ReLU kinks for these seeded values.
        let result = GradientCheck.compare(network, input: input, labels: [2, 0, 1], batch: 3, step: 1e-3, absoluteFloor: 1e-2)
        #expect(result.worstRelativeError < 1e-2, "\(result)")
    }
}
