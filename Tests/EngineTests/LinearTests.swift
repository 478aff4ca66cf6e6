import Engine
import Testing
import TestSupport

@Suite struct LinearTests {
    @Test func forwardMatchesAHandComputedCase() {
        let linear = Linear(name: "fc", inputShape: Shape(2), outFeatures: 2)
        let network = Network(layers: [linear], classes: 2)
        network.reserve(maxBatch: 1)
        // W = [[1, 2], [3, 4]], b = [0.5, -1]; x = [1, -1] → y = [1−2+0.5, 3−4−1] = [−0.5, −2]
        let values: [Float] = [1, 2, 3, 4, 0.5, -1]
        for (i, v) in values.enumerated() { network.parameters[i] = v }
        let x: [Float] = [1, -1]
        let y = x.withUnsafeBufferPointer { network.forward($0.baseAddress!, batch: 1, context: .inference) }
        #expect(y[0] == -0.5)
        #expect(y[1] == -2)
    }

    @Test func backwardMatchesFiniteDifferences() {
        let network = Network(layers: [Linear(name: "0", inputShape: Shape(5), outFeatures: 3)], classes: 3)
        network.reserve(maxBatch: 4)
        network.initializeParameters(seed: 3)
        let input = GradientCheck.gaussian(count: 20, seed: 4)
        // Linear + softmax is smooth, so h = 1e-2 in float32 gives ~1e-4 relative agreement.
        let result = GradientCheck.compare(network, input: input, labels: [0, 1, 2, 1], batch: 4)
        #expect(result.checked > 20)
        #expect(result.worstRelativeError < 2e-3, "\(result)")
    }

    @Test func weightRoleIsTheRegularisedMatrix() {
        let network = MLP.make(inputShape: Shape(6), hidden: [4], classes: 3)
        #expect(network.weightMatrices.map(\.name) == ["0.weight", "2.weight"])
        #expect(network.weightMatrices.map(\.rows) == [4, 3])
        #expect(network.weightMatrices.map(\.cols) == [6, 4])
    }
}
