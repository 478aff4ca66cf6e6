import Engine
import Testing
import TestSupport

struct Conv2dTests {
    @Test func aHandComputedThreeByThreeConvolutionWithPaddingGivesTheExpectedMap() {
        // One 2×2 input channel, one 3×3 kernel of ones, padding 1: every output is the sum of
        // the whole input (every 3×3 window around a 2×2 map covers all of it), plus the bias.
        let conv = Conv2d(name: "c", inputShape: Shape(1, 2, 2), outChannels: 1, kernel: 3, padding: 1)
        let network = makeNetwork([conv], maxBatch: 1)
        setParameter(network, "c.weight", [Float](repeating: 1, count: 9))
        setParameter(network, "c.bias", [0.5])
        let y = forward(network, [1, 2, 3, 4], batch: 1)
        #expect(y == [10.5, 10.5, 10.5, 10.5])
    }

    @Test func aHandComputedStrideTwoConvolutionPicksTheRightWindows() {
        // 1×3×3 input 1…9, 2×2 kernel [[1,0],[0,-1]], stride 1 → x[i,j] − x[i+1,j+1] = −4 everywhere;
        // with stride 2 and padding 1 the windows start at (−1,−1), (−1,1), (1,−1), (1,1).
        let x: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        let conv = Conv2d(name: "c", inputShape: Shape(1, 3, 3), outChannels: 1, kernel: 2, bias: false)
        let network = makeNetwork([conv], maxBatch: 1)
        setParameter(network, "c.weight", [1, 0, 0, -1])
        #expect(forward(network, x, batch: 1) == [-4, -4, -4, -4])
        let strided = Conv2d(
            name: "c", inputShape: Shape(1, 3, 3), outChannels: 1, kernel: 2, stride: 2, padding: 1, bias: false)
        let stridedNetwork = makeNetwork([strided], maxBatch: 1)
        setParameter(stridedNetwork, "c.weight", [1, 0, 0, -1])
        // (−1,−1): 0 − x[0,0] = −1; (−1,1): 0 − x[0,2] = −3; (1,−1): 0 − x[2,0] = −7; (1,1): x[1,1] − x[2,2] = 5 − 9.
        #expect(forward(stridedNetwork, x, batch: 1) == [-1, -3, -7, -4])
    }

    struct Geometry: CustomTestStringConvertible, Sendable {
        var batch, channels, height, width, out, kernel, stride, padding: Int
        var bias: Bool
        /// false: the layer keeps im2col or row shifts where Winograd would apply.
        var winograd = true
        var testDescription: String {
            "N\(batch) C\(channels) \(height)×\(width) → O\(out) k\(kernel) s\(stride) p\(padding) bias \(bias)"
                + (winograd ? "" : " no Winograd")
        }
    }

    static let geometries: [Geometry] = [
        Geometry(batch: 3, channels: 2, height: 5, width: 5, out: 4, kernel: 3, stride: 1, padding: 1, bias: true),
        Geometry(batch: 2, channels: 3, height: 7, width: 6, out: 5, kernel: 5, stride: 1, padding: 2, bias: true),
        Geometry(batch: 3, channels: 4, height: 4, width: 5, out: 3, kernel: 1, stride: 1, padding: 0, bias: true),
        Geometry(batch: 2, channels: 3, height: 7, width: 8, out: 4, kernel: 3, stride: 2, padding: 1, bias: false),
        Geometry(batch: 2, channels: 2, height: 6, width: 6, out: 3, kernel: 1, stride: 2, padding: 0, bias: true),
        Geometry(batch: 1, channels: 2, height: 5, width: 7, out: 2, kernel: 2, stride: 3, padding: 1, bias: false),
        // Row shifts ("same" convolutions, P ≥ 64 with at most 32 outputs, P ≥ 256 otherwise,
        // C·k ≥ 48; thin outputs in one stacked GEMM): 3×3 on a non-square map, 5×5 on 9×8,
        // 3×3 on exactly 8×8.
        Geometry(batch: 2, channels: 16, height: 16, width: 17, out: 4, kernel: 3, stride: 1, padding: 1, bias: true),
        Geometry(batch: 3, channels: 10, height: 9, width: 8, out: 3, kernel: 5, stride: 1, padding: 2, bias: true),
        Geometry(batch: 2, channels: 16, height: 8, width: 8, out: 5, kernel: 3, stride: 1, padding: 1, bias: false),
        // Too shallow for row shifts (C·k = 9 < 48): im2col, one sample per group.
        Geometry(batch: 2, channels: 3, height: 16, width: 17, out: 4, kernel: 3, stride: 1, padding: 1, bias: true),
        // Groups of samples (G = ⌈Conv2d.groupColumns / P⌉): several groups with a smaller last
        // one, for "same" convolutions (input gradient by the flipped kernel) and a strided one
        // (input gradient by col2im).
        Geometry(batch: 13, channels: 2, height: 5, width: 5, out: 3, kernel: 3, stride: 1, padding: 1, bias: false),
        Geometry(batch: 12, channels: 3, height: 6, width: 5, out: 2, kernel: 5, stride: 1, padding: 2, bias: true),
        Geometry(batch: 30, channels: 2, height: 6, width: 6, out: 3, kernel: 3, stride: 2, padding: 1, bias: true),
        // A wide output (more than 32 channels) on 8×8: im2col in groups of 4 samples, not row shifts.
        Geometry(batch: 5, channels: 3, height: 8, width: 8, out: 40, kernel: 3, stride: 1, padding: 1, bias: true),
        // Row shifts with a wide output (more than 32 channels): k GEMMs, not one stacked GEMM.
        Geometry(
            batch: 2, channels: 16, height: 16, width: 16, out: 40, kernel: 3, stride: 1, padding: 1, bias: true,
            winograd: false),
        // Winograd F(2×2, 3×3) (3×3, stride 1, padding 1, even map, C ≥ 16, O > 32): one group on
        // 8×8; 2×2 maps (one tile per sample, every window reads padding); a non-square map; and
        // groups of 8 samples on 16×16 (512 tiles) with a last group of 1; and a 32-wide map,
        // whose tile rows hold two 8-tile blocks that overlap at their shared window column.
        Geometry(batch: 3, channels: 16, height: 8, width: 8, out: 40, kernel: 3, stride: 1, padding: 1, bias: true),
        Geometry(batch: 5, channels: 16, height: 2, width: 2, out: 33, kernel: 3, stride: 1, padding: 1, bias: false),
        Geometry(batch: 2, channels: 17, height: 6, width: 4, out: 36, kernel: 3, stride: 1, padding: 1, bias: true),
        Geometry(batch: 9, channels: 16, height: 16, width: 16, out: 33, kernel: 3, stride: 1, padding: 1, bias: true),
        Geometry(batch: 3, channels: 16, height: 4, width: 32, out: 34, kernel: 3, stride: 1, padding: 1, bias: true),
    ]

    @Test(arguments: geometries)
    func forwardAndBackwardMatchTheNaiveSevenLoopConvolution(_ g: Geometry) {
        let conv = Conv2d(
            name: "c", inputShape: Shape(g.channels, g.height, g.width), outChannels: g.out, kernel: g.kernel,
            stride: g.stride, padding: g.padding, bias: g.bias, winograd: g.winograd)
        #expect(conv.usesWinograd == (g.winograd && g.kernel == 3 && g.stride == 1 && g.padding == 1
            && g.height % 2 == 0 && g.width % 2 == 0 && g.channels >= 16 && g.out > 32))
        let network = makeNetwork([conv], maxBatch: g.batch + 1, seed: 5)
        let x = GradientCheck.gaussian(count: g.batch * conv.inputShape.count, seed: 11)
        let weight = parameter(network, "c.weight")
        let bias = g.bias ? parameter(network, "c.bias") : nil
        func reference(_ x: [Float], _ weight: [Float]) -> [Float] {
            naiveConvolution(
                x, batch: g.batch, channels: g.channels, height: g.height, width: g.width, weight: weight,
                bias: bias, outChannels: g.out, kernel: g.kernel, stride: g.stride, padding: g.padding)
        }
        let dy = GradientCheck.gaussian(count: g.batch * conv.outputShape.count, seed: 12)
        network.gradients.zero()
        let (y, dx) = forwardBackward(network, x, dy, batch: g.batch)
        let expected = reference(x, weight)
        #expect(y.count == expected.count)
        // float32 sums of at most 75 products of unit-scale numbers: rounding well below 1e-4.
        #expect(maxAbsDifference(y, expected) < 1e-4)

        // The convolution is linear, so with L = Σ dy·y the gradients are exact linear maps:
        // ∂L/∂x[i] = Σ dy·conv(e_i), ∂L/∂W[j] = Σ dy·conv_{e_j}(x). Check them against the reference.
        func dot(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        let biasTerm = g.bias ? reference([Float](repeating: 0, count: x.count), weight) : nil
        for i in stride(from: 0, to: x.count, by: max(1, x.count / 17)) {
            var unit = [Float](repeating: 0, count: x.count)
            unit[i] = 1
            var response = reference(unit, weight)
            if let biasTerm { response = zip(response, biasTerm).map { $0 - $1 } }
            #expect(abs(dx[i] - dot(dy, response)) < 1e-4, "dx[\(i)]")
        }
        let dW = gradient(network, "c.weight")
        for j in stride(from: 0, to: weight.count, by: max(1, weight.count / 13)) {
            var unit = [Float](repeating: 0, count: weight.count)
            unit[j] = 1
            let response = naiveConvolution(
                x, batch: g.batch, channels: g.channels, height: g.height, width: g.width, weight: unit,
                bias: nil, outChannels: g.out, kernel: g.kernel, stride: g.stride, padding: g.padding)
            #expect(abs(dW[j] - dot(dy, response)) < 1e-3, "dW[\(j)]")
        }
        if g.bias {
            let db = gradient(network, "c.bias")
            let positions = y.count / (g.batch * g.out)
            for o in 0..<g.out {
                var sum: Float = 0
                for n in 0..<g.batch {
                    for p in 0..<positions { sum += dy[(n * g.out + o) * positions + p] }
                }
                #expect(abs(db[o] - sum) < 1e-4)
            }
        }
    }

    /// Two stacked 3×3 padding-1 convolutions with `outputs` channels each, for `batch` samples.
    struct Chain: CustomTestStringConvertible, Sendable {
        var shape: Shape, batch: Int, outputs: (Int, Int), winograd: Bool
        var testDescription: String { "\(shape) N\(batch) → \(outputs.0) → \(outputs.1)" }
    }

    @Test(arguments: [
        // Both input gradients from the flipped kernel: row shifts (16×16 maps), or im2col in
        // groups of 11 samples with a last group of 2 (5×5 maps, batch 13).
        Chain(shape: Shape(16, 16, 16), batch: 2, outputs: (16, 4), winograd: false),
        Chain(shape: Shape(3, 5, 5), batch: 13, outputs: (16, 4), winograd: false),
        // Winograd in both layers (the first computes no input gradient, the second does): on
        // 16×16 maps in groups of 8 samples and a last group of 1, and on 2×2 maps.
        Chain(shape: Shape(16, 16, 16), batch: 9, outputs: (36, 33), winograd: true),
        Chain(shape: Shape(16, 2, 2), batch: 3, outputs: (36, 33), winograd: true),
    ])
    func stackedSameConvolutionsMatchFiniteDifferences(_ chain: Chain) {
        // Conv3×3 p1 → conv3×3 p1 → global average pool (no ReLU: with hundreds of positions per
        // channel a finite-difference step crosses kinks).
        let workspace = Workspace()
        let first = Conv2d(
            name: "0", inputShape: chain.shape, outChannels: chain.outputs.0, kernel: 3, padding: 1, workspace: workspace)
        let second = Conv2d(
            name: "2", inputShape: first.outputShape, outChannels: chain.outputs.1, kernel: 3, padding: 1, bias: false,
            workspace: workspace)
        #expect(first.usesWinograd == chain.winograd && second.usesWinograd == chain.winograd)
        let network = makeNetwork(
            [first, second, GlobalAvgPool(inputShape: second.outputShape)], maxBatch: chain.batch, seed: 3)
        let x = GradientCheck.gaussian(count: chain.batch * chain.shape.count, seed: 8)
        let labels = (0..<chain.batch).map { Int32($0 % chain.outputs.1) }
        let result = GradientCheck.compare(
            network, input: x, labels: labels, batch: chain.batch, samples: 10, step: 1e-2)
        #expect(result.worstRelativeError < 1e-2, "\(result)")
        #expect(result.checked > 30)
    }

    @Test(arguments: [geometries[6], geometries[7], geometries[10], geometries[12], geometries[15], geometries[18]])
    func aFusedInputReLUGivesExactlyWhatReLUThenConvolutionGives(_ g: Geometry) {
        // The fused layer copies max(x, 0) where the separate pair copies the ReLU's output, and
        // masks dx where x ≤ 0 as ReLU's backward does: the same floats in the same GEMMs.
        let shape = Shape(g.channels, g.height, g.width)
        func conv(fused: Bool) -> Conv2d {
            Conv2d(name: "c", inputShape: shape, outChannels: g.out, kernel: g.kernel, stride: g.stride,
                   padding: g.padding, bias: g.bias, inputReLU: fused)
        }
        let fused = makeNetwork([conv(fused: true)], maxBatch: g.batch, seed: 5)
        let separate = makeNetwork([ReLU(inputShape: shape), conv(fused: false)], maxBatch: g.batch, seed: 5)
        let x = GradientCheck.gaussian(count: g.batch * shape.count, seed: 11)
        let dy = GradientCheck.gaussian(count: g.batch * fused.classes, seed: 12)
        fused.gradients.zero()
        separate.gradients.zero()
        let (y, dx) = forwardBackward(fused, x, dy, batch: g.batch)
        let (expectedY, expectedDx) = forwardBackward(separate, x, dy, batch: g.batch)
        #expect(y == expectedY)
        #expect(dx == expectedDx)
        #expect(fused.gradients.toArray() == separate.gradients.toArray())
        #expect(dx.contains(0) && y.contains { $0 != 0 })
    }

    @Test func backwardAccumulatesParameterGradientsAndOverwritesTheInputGradient() {
        let conv = Conv2d(name: "c", inputShape: Shape(2, 4, 4), outChannels: 3, kernel: 3, padding: 1)
        let network = makeNetwork([conv], maxBatch: 2)
        let x = GradientCheck.gaussian(count: 2 * 32, seed: 1)
        let dy = GradientCheck.gaussian(count: 2 * 48, seed: 2)
        network.gradients.zero()
        let (_, once) = forwardBackward(network, x, dy, batch: 2)
        let firstGradient = network.gradients.toArray()
        let twice = withExtendedLifetime(x) { backward(network, dy, batch: 2) }
        #expect(once == twice)
        #expect(maxAbsDifference(network.gradients.toArray(), firstGradient.map { 2 * $0 }) < 1e-5)
    }

    @Test func declaresAKaimingWeightMatrixOfOutByInTimesKernelArea() {
        let conv = Conv2d(name: "features.0", inputShape: Shape(3, 8, 8), outChannels: 4, kernel: 3, padding: 1)
        let network = makeNetwork([conv], maxBatch: 1)
        let names = network.parameterTable.map(\.name)
        #expect(names == ["features.0.weight", "features.0.bias"])
        #expect(network.parameterTable[0].shape == [4, 3, 3, 3])
        #expect(network.parameterTable[0].role == .weight(rows: 4, cols: 27))
        #expect(network.parameterTable[0].initializer == .kaimingNormal(fanIn: 27))
        #expect(network.weightMatrices.count == 1)
        #expect(conv.forwardMACs == 4 * 27 * 64)
    }

    @Test func aConvBatchNormPoolLinearNetworkMatchesFiniteDifferences() {
        // Conv → BN → ReLU → max-pool → conv1×1 → Linear, batch 3 with ghost batch 2 (chunks of
        // 2 and 1 samples; a chunk of 1 sample still has 16 values per channel).
        let workspace = Workspace()
        let conv = Conv2d(name: "0", inputShape: Shape(2, 4, 4), outChannels: 3, kernel: 3, padding: 1,
                          bias: false, workspace: workspace)
        let norm = BatchNorm2d(name: "1", inputShape: conv.outputShape, ghostBatch: 2)
        let relu = ReLU(inputShape: conv.outputShape)
        let pool = MaxPool2d(inputShape: conv.outputShape, kernel: 2)
        let pointwise = Conv2d(name: "4", inputShape: pool.outputShape, outChannels: 2, kernel: 1, workspace: workspace)
        let linear = Linear(name: "5", inputShape: pointwise.outputShape, outFeatures: 3)
        let network = makeNetwork([conv, norm, relu, pool, pointwise, linear], maxBatch: 3, seed: 9)
        setParameter(network, "1.weight", [0.8, 1.3, 1.1])  // γ, β away from 1, 0
        setParameter(network, "1.bias", [0.2, -0.1, 0.3])
        let x = GradientCheck.gaussian(count: 3 * 32, seed: 4)
        let result = GradientCheck.compare(network, input: x, labels: [0, 2, 1], batch: 3, samples: 10)
        // Central differences with h = 1e-2 in float32: truncation O(h²) and rounding
        // O(ε·|L|/h) are both ~1e-4 relative; 1e-2 leaves room for a ReLU/max kink near a sample.
        #expect(result.worstRelativeError < 1e-2, "\(result)")
        #expect(result.checked > 40)
    }
}
