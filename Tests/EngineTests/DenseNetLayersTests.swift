import Engine
import Testing
import TestSupport

struct DenseNetLayersTests {
    @Test func aDenseLayerOutputsItsInputFollowedByTheNewChannels() {
        let workspace = Workspace()
        let shape = Shape(2, 3, 3)
        let layer = DenseLayer(name: "dense1.0", inputShape: shape, growthRate: 4, ghostBatch: 2, workspace: workspace)
        let network = makeNetwork([layer], maxBatch: 2)
        #expect(layer.outputShape == Shape(6, 3, 3))
        #expect(network.parameterTable.map(\.name) == ["dense1.0.bn1.weight", "dense1.0.bn1.bias", "dense1.0.conv1.weight"])
        #expect(network.parameterCount == 2 * 2 + 4 * 2 * 9)
        let x = GradientCheck.gaussian(count: 2 * shape.count, seed: 3)
        let y = forward(network, x, batch: 2)
        // Sample n: first 18 values are its input, the next 36 the conv of ReLU(BN(x)).
        #expect(Array(y[0..<18]) == Array(x[0..<18]))
        #expect(Array(y[54..<72]) == Array(x[18..<36]))
        // The new channels equal the same BN → ReLU → conv run as separate layers.
        let separate = makeNetwork([
            BatchNorm2d(name: "dense1.0.bn1", inputShape: shape, ghostBatch: 2), ReLU(inputShape: shape),
            Conv2d(name: "dense1.0.conv1", inputShape: shape, outChannels: 4, kernel: 3, padding: 1, bias: false),
        ], maxBatch: 2)
        separate.parameters.copy(from: network.parameters)
        let new = forward(separate, x, batch: 2)
        #expect(Array(y[18..<54]) == Array(new[0..<36]))
        #expect(Array(y[72..<108]) == Array(new[36..<72]))
    }

    @Test func aDenseLayerAddsThePassThroughGradientToTheBranchGradient() {
        // With a zero gradient on the new channels the input gradient is exactly the pass-through;
        // with a zero pass-through gradient it is exactly the branch gradient.
        let shape = Shape(2, 3, 3)
        let layer = DenseLayer(name: "d", inputShape: shape, growthRate: 2, ghostBatch: 2, workspace: Workspace())
        let network = makeNetwork([layer], maxBatch: 2)
        let x = GradientCheck.gaussian(count: 36, seed: 1)
        let dy = GradientCheck.gaussian(count: 72, seed: 2)
        var passOnly = dy, branchOnly = dy
        for n in 0..<2 {
            for i in 0..<18 { branchOnly[n * 36 + i] = 0 }
            for i in 18..<36 { passOnly[n * 36 + i] = 0 }
        }
        let (_, dxPass) = forwardBackward(network, x, passOnly, batch: 2)
        #expect(dxPass == Array(dy[0..<18]) + Array(dy[36..<54]))
        let (_, dxBranch) = forwardBackward(network, x, branchOnly, batch: 2)
        let (_, dxBoth) = forwardBackward(network, x, dy, batch: 2)
        #expect(maxAbsDifference(dxBoth, zip(dxPass, dxBranch).map { $0 + $1 }) < 1e-6)
        #expect(maxAbsDifference(dxBranch, [Float](repeating: 0, count: 36)) > 1e-3)
    }

    @Test func aTransitionComputesBNReLUConvThenPoolByPoolingFirst() {
        // The model's order (BN → ReLU → conv1×1 → avg-pool) as separate layers, against the
        // transition, which pools before the convolution: equal up to float rounding, in the
        // output, the input gradient and every parameter gradient.
        let shape = Shape(5, 6, 4)
        let transition = Transition(name: "trans1", inputShape: shape, ghostBatch: 3, workspace: Workspace())
        let network = makeNetwork([transition], maxBatch: 3, seed: 4)
        let norm = BatchNorm2d(name: "trans1.bn1", inputShape: shape, ghostBatch: 3)
        let conv = Conv2d(name: "trans1.conv1", inputShape: shape, outChannels: 5, kernel: 1, bias: false)
        let reference = makeNetwork(
            [norm, ReLU(inputShape: shape), conv, AvgPool2d(inputShape: conv.outputShape, kernel: 2, stride: 2)],
            maxBatch: 3)
        #expect(network.parameterTable.map(\.name) == reference.parameterTable.map(\.name))
        setParameter(network, "trans1.bn1.weight", [0.8, 1.3, 1.1, 0.9, 1.2])
        setParameter(network, "trans1.bn1.bias", [0.2, -0.1, 0.3, 0.0, -0.2])
        reference.parameters.copy(from: network.parameters)
        #expect(transition.outputShape == Shape(5, 3, 2))
        #expect(transition.forwardMACs == 5 * 5 * 6 * 4)
        let x = GradientCheck.gaussian(count: 3 * shape.count, seed: 9)
        let dy = GradientCheck.gaussian(count: 3 * 30, seed: 10)
        network.gradients.zero()
        reference.gradients.zero()
        let (y, dx) = forwardBackward(network, x, dy, batch: 3)
        let (expectedY, expectedDx) = forwardBackward(reference, x, dy, batch: 3)
        #expect(maxAbsDifference(y, expectedY) < 1e-5)
        #expect(maxAbsDifference(dx, expectedDx) < 1e-5)
        #expect(maxAbsDifference(network.gradients.toArray(), reference.gradients.toArray()) < 1e-4)
    }

    @Test func aTinyDenseNetMatchesFiniteDifferences() {
        // Stem conv → dense layer → transition → dense layer → BN → ReLU → GAP → linear.
        let workspace = Workspace()
        let stem = Conv2d(name: "conv1", inputShape: Shape(2, 4, 4), outChannels: 3, kernel: 3, padding: 1,
                          bias: false, workspace: workspace)
        let dense1 = DenseLayer(name: "dense1.0", inputShape: stem.outputShape, growthRate: 2, ghostBatch: 2, workspace: workspace)
        let transition = Transition(name: "trans1", inputShape: dense1.outputShape, ghostBatch: 2, workspace: workspace)
        let dense2 = DenseLayer(name: "dense2.0", inputShape: transition.outputShape, growthRate: 2, ghostBatch: 2, workspace: workspace)
        let norm = BatchNorm2d(name: "bn1", inputShape: dense2.outputShape, ghostBatch: 2)
        let pool = GlobalAvgPool(inputShape: dense2.outputShape)
        let network = makeNetwork([
            stem, dense1, transition, dense2, norm, ReLU(inputShape: dense2.outputShape), pool,
            Linear(name: "fc", inputShape: pool.outputShape, outFeatures: 3),
        ], maxBatch: 3, seed: 6)
        #expect(transition.outputShape == Shape(5, 2, 2))
        let x = GradientCheck.gaussian(count: 3 * 32, seed: 7)
        // h = 1e-3 (see PoolingTests: with many values per BN channel a 1e-2 step can cross a ReLU
        // kink); float32 rounding then contributes ~1e-3 relative at most. Bound 1e-2.
        let result = GradientCheck.compare(network, input: x, labels: [0, 1, 2], batch: 3, samples: 8, step: 1e-3)
        #expect(result.worstRelativeError < 1e-2, "\(result)")
        #expect(result.checked > 60)
    }
}
