import Engine
import Testing
import TestSupport
import Training

// The method seam: the registration, each method's state and per-step term, the per-unit objective.

struct MethodTests {
    private static func network() throws -> Network {
        let config = Fixtures.syntheticConfig()
        return try ModelFactory.make(config, inputShape: Shape(1, 6, 6), classes: 4)
    }

    @Test(arguments: Method.allCases)
    func everyRegisteredMethodBuildsWithTheStateItCheckpoints(method: Method) throws {
        let network = try Self.network()
        var config = Fixtures.syntheticConfig(method: method)
        config.lambda = nil
        let built = config.makeMethod(matrices: network.weightMatrices)
        #expect(type(of: built) == method.implementation)
        #expect(config.effectiveLambda == method.implementation.defaultLambda)
        // Only spectral keeps state: one right singular vector (cols floats) per matrix.
        let expected = method == .spectral ? network.weightMatrices.map(\.cols).reduce(0, +) : 0
        #expect(built.state.count == expected)
    }

    @Test func vanillaAndAdversarialAddNoGradientTermDecayAddsLambdaW() throws {
        let network = try Self.network()
        network.initializeParameters(seed: 3)
        for method in [Method.vanilla, .adversarial, .decay] {
            var config = Fixtures.syntheticConfig(method: method)
            config.lambda = 0.5
            let gradient = FloatBuffer(count: network.parameterCount)
            config.makeMethod(matrices: network.weightMatrices).addGradientTerm(parameters: network.parameters, gradient: gradient)
            let values = gradient.toArray()
            if method == .decay {
                for matrix in network.weightMatrices {
                    for i in 0..<matrix.count { #expect(values[matrix.offset + i] == 0.5 * network.parameters[matrix.offset + i]) }
                }
                #expect(values.contains { $0 != 0 })
            } else {
                #expect(values.allSatisfy { $0 == 0 })
            }
        }
    }

    /// With ε = 0 the perturbed input is the input, so α·L(x) + (1−α)·L(x) is the plain loss
    /// and its gradient the plain gradient (up to rounding of α·g + (1−α)·g).
    @Test func theAdversarialObjectiveWithZeroEpsilonIsThePlainObjective() throws {
        var config = Fixtures.syntheticConfig(method: .adversarial)
        config.adversarialEpsilon = 0
        config.adversarialAlpha = 0.25
        let network = try Self.network()
        network.initializeParameters(seed: 4)
        network.reserve(maxBatch: 8)
        let input = FloatBuffer(count: 8 * 36)
        for i in 0..<input.count { input[i] = Float((i * 37) % 11) / 11 - 0.5 }
        let labels: [Int32] = [0, 1, 2, 3, 0, 1, 2, 3]
        func run(_ objective: UnitObjective) -> (Double, Int, [Float], Int) {
            network.gradients.zero()
            var recorded = 0
            let result = labels.withUnsafeBufferPointer { y in
                objective.run(
                    UnitInput(input: input.pointer, labels: y.baseAddress!, count: 8, sampleSize: 36, context: ForwardContext(mode: .training)),
                    network: network) { recorded += 1 }
            }
            return (result.lossSum, result.correct, network.gradients.toArray(), recorded)
        }
        let plain = run(PlainObjective())
        let adversarial = run(AdversarialMethod.makeObjective(config: config, unitSize: 8, sampleSize: 36))
        #expect(plain.3 == 1 && adversarial.3 == 1)
        #expect(abs(plain.0 - adversarial.0) < 1e-9 * max(1, abs(plain.0)))
        #expect(plain.1 == adversarial.1)
        let worst = zip(plain.2, adversarial.2).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-6)
    }

    @Test func bnMomentumIsAConfigKeyThatReachesEveryBatchNormLayerAndTheHashOnlyWhenChanged() throws {
        var config = try TrainingConfig.parse(yaml: "model: vgg16\nwidth_divisor: 16\ndataset: synthetic\nsynthetic_shape: [3, 32, 32]")
        #expect(config.bnMomentum == 0.1)
        let defaultHash = config.trajectoryHash
        #expect(config.yaml().contains("bn_momentum: 0.1"))
        try config.set("bn_momentum", value: "0.3")
        #expect(config.bnMomentum == 0.3)
        #expect(config.trajectoryHash != defaultHash)
        let network = try ModelFactory.make(config, inputShape: Shape(3, 32, 32), classes: 10)
        #expect(!network.batchNormLayers.isEmpty)
        #expect(network.batchNormLayers.allSatisfy { $0.momentum == Float(0.3) })
        var bad = config
        bad.bnMomentum = 1.5
        #expect(throws: ConfigError.self) { try bad.validate() }
    }
}
