import Engine
import Testing
import TestSupport

@Suite struct MLPTests {
    @Test func referenceMLPHasTheParameterCountOfMODELS() {
        let network = MLP.make(inputShape: Shape(1, 28, 28), hidden: [1024, 1024], classes: 10)
        #expect(network.parameterCount == 1_863_690)
        #expect(network.parameterTable.map(\.name) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"])
    }

    @Test func wholeMLPMatchesFiniteDifferencesForParametersAndInput() {
        let network = MLP.make(inputShape: Shape(1, 3, 3), hidden: [7, 5], classes: 4)
        network.reserve(maxBatch: 4)
        network.initializeParameters(seed: 21)
        let input = GradientCheck.gaussian(count: 36, seed: 22)
        let result = GradientCheck.compare(network, input: input, labels: [3, 1, 0, 2], batch: 4, samples: 20, step: 1e-3)
        #expect(result.checked >= 90)
        #expect(result.worstRelativeError < 1e-2, "\(result)")
    }

    @Test func initializationIsSeededAndHeScaled() {
        let a = MLP.make(inputShape: Shape(784), hidden: [1024], classes: 10)
        let b = MLP.make(inputShape: Shape(784), hidden: [1024], classes: 10)
        a.initializeParameters(seed: 5)
        b.initializeParameters(seed: 5)
        #expect(a.parameters.toArray() == b.parameters.toArray())
        // He normal: Var(W) = 2 / fanIn for the first layer.
        let first = a.parameterTable[0]
        var squares = 0.0
        for i in 0..<first.count { squares += Double(a.parameters[first.offset + i] * a.parameters[first.offset + i]) }
        let variance = squares / Double(first.count)
        #expect(abs(variance - 2.0 / 784) / (2.0 / 784) < 0.02)
        b.initializeParameters(seed: 6)
        #expect(a.parameters.toArray() != b.parameters.toArray())
    }
}
