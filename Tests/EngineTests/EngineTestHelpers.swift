import Engine
import TestSupport

// Small helpers shared by the engine tests: run one layer (wrapped in a Network so it gets
// arenas) on arrays, and naive references.

/// A network made of `layers`, reserved for `maxBatch`, parameters drawn from `seed`.
func makeNetwork(_ layers: [Layer], maxBatch: Int, seed: UInt64 = 1) -> Network {
    let network = Network(layers: layers, classes: layers[layers.count - 1].outputShape.count)
    network.reserve(maxBatch: maxBatch)
    network.initializeParameters(seed: seed)
    return network
}

/// Forward `input` through `network`, returning the output as an array.
func forward(
    _ network: Network, _ input: [Float], batch: Int, context: ForwardContext = ForwardContext(mode: .training)
) -> [Float] {
    input.withUnsafeBufferPointer { x in
        let y = network.forward(x.baseAddress!, batch: batch, context: context)
        return Array(UnsafeBufferPointer(start: y, count: batch * network.classes))
    }
}

/// Backward `outputGradient` through `network` (after a forward), returning the input gradient;
/// parameter gradients accumulate in `network.gradients`. Layers keep a pointer to their forward
/// input, so the input array of that forward must still be alive: use `forwardBackward` unless
/// the caller holds it (`withExtendedLifetime`) or the layers do not read it (pools, dropout).
func backward(_ network: Network, _ outputGradient: [Float], batch: Int) -> [Float] {
    var dy = outputGradient
    var dx = [Float](repeating: .nan, count: batch * network.inputShape.count)
    dy.withUnsafeMutableBufferPointer { g in
        dx.withUnsafeMutableBufferPointer { d in
            network.backward(logitGradient: g.baseAddress!, batch: batch, inputGradient: d.baseAddress!)
        }
    }
    return dx
}

/// Forward then backward with the input kept alive in between: (output, input gradient).
func forwardBackward(
    _ network: Network, _ input: [Float], _ outputGradient: [Float], batch: Int,
    context: ForwardContext = ForwardContext(mode: .training)
) -> (output: [Float], inputGradient: [Float]) {
    withExtendedLifetime(input) {
        let y = forward(network, input, batch: batch, context: context)
        return (y, backward(network, outputGradient, batch: batch))
    }
}

/// Values of the parameter named `name` in `network`.
func parameter(_ network: Network, _ name: String) -> [Float] {
    guard let entry = network.parameterTable.first(where: { $0.name == name }) else { return [] }
    return Array(UnsafeBufferPointer(start: network.parameters.pointer + entry.offset, count: entry.count))
}

func gradient(_ network: Network, _ name: String) -> [Float] {
    guard let entry = network.parameterTable.first(where: { $0.name == name }) else { return [] }
    return Array(UnsafeBufferPointer(start: network.gradients.pointer + entry.offset, count: entry.count))
}

func setParameter(_ network: Network, _ name: String, _ values: [Float]) {
    guard let entry = network.parameterTable.first(where: { $0.name == name }) else { return }
    precondition(values.count == entry.count, "\(name) has \(entry.count) values, got \(values.count)")
    for (i, v) in values.enumerated() { network.parameters[entry.offset + i] = v }
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "compare \(a.count) with \(b.count) values")
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// Direct convolution (cross-correlation) with zero padding: the naive 7-loop reference.
/// x (N, C, H, W), weight (O, C, K, K), bias (O) → (N, O, HO, WO).
func naiveConvolution(
    _ x: [Float], batch: Int, channels: Int, height: Int, width: Int,
    weight: [Float], bias: [Float]?, outChannels: Int, kernel: Int, stride: Int, padding: Int
) -> [Float] {
    let ho = (height + 2 * padding - kernel) / stride + 1
    let wo = (width + 2 * padding - kernel) / stride + 1
    var y = [Float](repeating: 0, count: batch * outChannels * ho * wo)
    for n in 0..<batch {
        for o in 0..<outChannels {
            for oh in 0..<ho {
                for ow in 0..<wo {
                    var sum = Double(bias?[o] ?? 0)
                    for c in 0..<channels {
                        for ki in 0..<kernel {
                            for kj in 0..<kernel {
                                let ih = oh * stride - padding + ki
                                let iw = ow * stride - padding + kj
                                guard ih >= 0, ih < height, iw >= 0, iw < width else { continue }
                                sum += Double(x[((n * channels + c) * height + ih) * width + iw])
                                    * Double(weight[((o * channels + c) * kernel + ki) * kernel + kj])
                            }
                        }
                    }
                    y[((n * outChannels + o) * ho + oh) * wo + ow] = Float(sum)
                }
            }
        }
    }
    return y
}

/// Two-class synthetic images (C, H, W): class 1 is brighter in the left half, class 0 in the
/// right half, plus unit Gaussian noise. Returns (images, labels).
func syntheticImages(count: Int, shape: Shape, seed: UInt64) -> ([Float], [Int32]) {
    let (c, h, w) = shape.chw
    var noise = GradientCheck.gaussian(count: count * shape.count, seed: seed)
    var labels = [Int32]()
    for n in 0..<count {
        let label = Int32(n % 2)
        labels.append(label)
        for channel in 0..<c {
            for row in 0..<h {
                for col in 0..<w {
                    let left = col < w / 2
                    noise[((n * c + channel) * h + row) * w + col] += (left == (label == 1)) ? 1 : -1
                }
            }
        }
    }
    return (noise, labels)
}

/// Plain SGD on a fixed batch; returns the mean loss before and after `steps` steps.
func trainPlainSGD(
    _ network: Network, input: [Float], labels: [Int32], batch: Int, steps: Int, learningRate: Float
) -> (first: Double, last: Double) {
    var first = 0.0
    for step in 0..<steps {
        let context = ForwardContext(mode: .training, seed: 3, step: UInt64(step), unit: 0)
        let (parameterGradient, _) = GradientCheck.analytic(
            network, input: input, labels: labels, batch: batch, context: context)
        if step == 0 {
            first = GradientCheck.loss(network, input: input, labels: labels, batch: batch, context: context)
                / Double(batch)
        }
        for i in 0..<network.parameterCount {
            network.parameters[i] -= learningRate * parameterGradient[i] / Float(batch)
        }
    }
    let last = GradientCheck.loss(
        network, input: input, labels: labels, batch: batch,
        context: ForwardContext(mode: .training, seed: 3, step: UInt64(steps), unit: 0)) / Double(batch)
    return (first, last)
}
