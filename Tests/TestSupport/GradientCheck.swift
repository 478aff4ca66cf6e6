import Engine

// Finite-difference oracles for the engine's analytic gradients. The engine is float32, so the
// checks use central differences with a step large enough to beat float rounding (h ≈ 1e-2 on
// unit-scale inputs) and compare with a relative error floored at `absoluteFloor`; the loss is
// summed in double by SoftmaxCrossEntropy.

public struct GradientComparison: CustomStringConvertible {
    public var worstRelativeError: Double = 0
    public var worstName = ""
    public var checked = 0
    public var description: String {
        "checked \(checked) coordinates, worst relative error \(worstRelativeError) at \(worstName)"
    }

    mutating func record(analytic: Double, numeric: Double, name: String, absoluteFloor: Double) {
        let error = abs(analytic - numeric) / max(abs(analytic) + abs(numeric), absoluteFloor)
        checked += 1
        if error > worstRelativeError {
            worstRelativeError = error
            worstName = "\(name): analytic \(analytic) numeric \(numeric)"
        }
    }
}

public enum GradientCheck {
    /// Summed loss of `network` on (input, labels) in the given mode.
    public static func loss(
        _ network: Network, input: [Float], labels: [Int32], batch: Int,
        context: ForwardContext = ForwardContext(mode: .training)
    ) -> Double {
        input.withUnsafeBufferPointer { x in
            labels.withUnsafeBufferPointer { y in
                let logits = network.forward(x.baseAddress!, batch: batch, context: context)
                return network.loss.forward(logits: logits, labels: y.baseAddress!, batch: batch).lossSum
            }
        }
    }

    /// Analytic gradients of the summed loss: (parameter gradients, input gradient).
    public static func analytic(
        _ network: Network, input: [Float], labels: [Int32], batch: Int,
        context: ForwardContext = ForwardContext(mode: .training)
    ) -> (parameters: [Float], input: [Float]) {
        network.gradients.zero()
        _ = loss(network, input: input, labels: labels, batch: batch, context: context)
        var inputGradient = [Float](repeating: 0, count: input.count)
        let dlogits = network.loss.backward(scale: 1)
        inputGradient.withUnsafeMutableBufferPointer { dx in
            network.backward(logitGradient: dlogits, batch: batch, inputGradient: dx.baseAddress!)
        }
        return (network.gradients.toArray(), inputGradient)
    }

    /// Compare analytic and central-difference gradients on `samples` random parameter
    /// coordinates per parameter tensor and on `samples` input coordinates.
    public static func compare(
        _ network: Network, input: [Float], labels: [Int32], batch: Int, samples: Int = 12,
        step h: Float = 1e-2, absoluteFloor: Double = 1e-2, seed: UInt64 = 7,
        context: ForwardContext = ForwardContext(mode: .training)
    ) -> GradientComparison {
        let (parameterGradient, inputGradient) = analytic(
            network, input: input, labels: labels, batch: batch, context: context)
        var generator = SplitMix64(seed: seed)
        var result = GradientComparison()
        for entry in network.parameterTable {
            for _ in 0..<min(samples, entry.count) {
                let i = entry.offset + generator.nextIndex(below: entry.count)
                let saved = network.parameters[i]
                network.parameters[i] = saved + h
                let plus = loss(network, input: input, labels: labels, batch: batch, context: context)
                network.parameters[i] = saved - h
                let minus = loss(network, input: input, labels: labels, batch: batch, context: context)
                network.parameters[i] = saved
                result.record(
                    analytic: Double(parameterGradient[i]), numeric: (plus - minus) / Double(2 * h),
                    name: "\(entry.name)[\(i - entry.offset)]", absoluteFloor: absoluteFloor)
            }
        }
        var x = input
        for _ in 0..<min(samples, x.count) {
            let i = generator.nextIndex(below: x.count)
            let saved = x[i]
            x[i] = saved + h
            let plus = loss(network, input: x, labels: labels, batch: batch, context: context)
            x[i] = saved - h
            let minus = loss(network, input: x, labels: labels, batch: batch, context: context)
            x[i] = saved
            result.record(
                analytic: Double(inputGradient[i]), numeric: (plus - minus) / Double(2 * h),
                name: "input[\(i)]", absoluteFloor: absoluteFloor)
        }
        return result
    }

    /// Standard-normal values from a seed.
    public static func gaussian(count: Int, seed: UInt64) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in generator.nextGaussian() }
    }
}
