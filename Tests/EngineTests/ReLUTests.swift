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

    /// conv → BN → ReLU → conv → BN → ReLU → linear, with the ReLUs in place or not.
    func block(inPlace: Bool) -> [Layer] {
        let workspace = Workspace()
        let conv1 = Conv2d(name: "c1", inputShape: Shape(3, 6, 6), outChannels: 4, kernel: 3, padding: 1, bias: false, workspace: workspace)
        let norm1 = BatchNorm2d(name: "n1", inputShape: conv1.outputShape, ghostBatch: 4)
        let conv2 = Conv2d(name: "c2", inputShape: conv1.outputShape, outChannels: 5, kernel: 3, padding: 1, workspace: workspace)
        let norm2 = BatchNorm2d(name: "n2", inputShape: conv2.outputShape, ghostBatch: 4)
        return [conv1, norm1, ReLU(inputShape: conv1.outputShape, inPlace: inPlace), conv2, norm2,
                ReLU(inputShape: conv2.outputShape, inPlace: inPlace), Linear(name: "l", inputShape: Shape(conv2.outputShape.count), outFeatures: 3)]
    }

    @Test func inPlaceReLUGivesTheSameBitsAsItsOwnBuffer() {
        let input = GradientCheck.gaussian(count: 4 * 3 * 36, seed: 5)
        let outputGradient = GradientCheck.gaussian(count: 4 * 3, seed: 6)
        var results: [(output: [Float], inputGradient: [Float], gradients: [Float])] = []
        for inPlace in [false, true] {
            let network = makeNetwork(block(inPlace: inPlace), maxBatch: 4, seed: 9)
            let (output, inputGradient) = forwardBackward(network, input, outputGradient, batch: 4)
            results.append((output, inputGradient, Array(network.gradients.buffer)))
        }
        #expect(results[0].output == results[1].output)
        #expect(results[0].inputGradient == results[1].inputGradient)
        #expect(results[0].gradients == results[1].gradients)
        #expect(results[0].gradients.contains { $0 != 0 })
    }

    @Test func inPlaceReLUNetworkMatchesFiniteDifferences() {
        let network = makeNetwork(block(inPlace: true), maxBatch: 4, seed: 3)
        let input = GradientCheck.gaussian(count: 4 * 3 * 36, seed: 4)
        let result = GradientCheck.compare(network, input: input, labels: [2, 0, 1, 1], batch: 4, step: 1e-3, absoluteFloor: 1e-2)
        #expect(result.worstRelativeError < 2e-2, "\(result)")
    }

    @Test func theModelsUseInPlaceReLUsWhereThePreviousLayerAllowsIt() {
        func inPlaceCount(_ layers: [Layer]) -> (inPlace: Int, all: Int) {
            let relus = layers.compactMap { $0 as? ReLU }
            return (relus.filter(\.inPlace).count, relus.count)
        }
        #expect(inPlaceCount(VGG.vgg16BNLayers(classes: 10, ghostBatch: 64)) == (14, 14))
        #expect(inPlaceCount(NIN.layers(classes: 10)).inPlace == inPlaceCount(NIN.layers(classes: 10)).all)
        #expect(inPlaceCount(MLP.layers(inputShape: Shape(8), hidden: [4, 4], classes: 2)) == (2, 2))
    }
}
