// How much memory a network will take, computed from its layer list before any arena or
// activation is allocated, so a config that cannot fit is refused with figures instead of
// dying in an allocation (DESIGN §6: bad input gets a clear error).
//
// Counts (floats): parameters and state from the layout the layers declare (exact); per
// sample, every leaf layer's output plus an equal gradient buffer, and a convolution's im2col
// columns and GEMM-order output, or its Winograd transforms (an upper bound: the shared
// workspace takes only the largest).
// All arithmetic is in Double so absurd sizes cannot overflow.

public struct MemoryEstimate: Sendable, Equatable {
    /// Trainable parameters (exact).
    public var parameters: Double
    /// Non-trainable state, e.g. BN running statistics (exact).
    public var state: Double
    /// Activation, gradient and workspace floats per sample of a micro-batch (upper bound).
    public var activationsPerSample: Double
    /// The largest transformed kernel set (16·O·C floats) of the Winograd layers, 0 without any:
    /// chunked units share two of these (SharedKernelSlots).
    public var largestWinogradKernel: Double

    public init(layers: [Layer]) {
        let layout = ParameterLayout()
        var perSample = 0.0
        var largestKernel = 0.0
        func visit(_ layer: Layer) {
            if let composite = layer as? CompositeLayer {
                perSample += 2 * Double(layer.outputShape.count)
                for sublayer in composite.sublayers { visit(sublayer) }
                return
            }
            // An in-place ReLU writes over its input: only the gradient side counts.
            let inPlace = (layer as? ReLU)?.inPlace ?? false
            perSample += (inPlace ? 1 : 2) * Double(layer.outputShape.count)
            if let conv = layer as? Conv2d {
                let positions = Double(conv.outputShape.count / max(conv.outChannels, 1))
                if conv.usesWinograd {
                    // V (16·C per 2×2 tile = 4·C per position) and M (4·O per position).
                    perSample += 4 * Double(conv.inChannels + conv.outChannels) * positions
                    largestKernel = max(largestKernel, Double(conv.winogradKernelCount))
                } else {
                    perSample += Double(conv.inChannels * conv.kernel.h * conv.kernel.w) * positions + Double(conv.outputShape.count)
                }
            }
        }
        for layer in layers {
            layer.declare(into: layout)
            visit(layer)
        }
        parameters = Double(layout.parameterCount)
        state = Double(layout.stateCount)
        activationsPerSample = perSample + 2 * Double(layers.first?.inputShape.count ?? 0)
        largestWinogradKernel = largestKernel
    }

    /// Bytes of one replica training micro-batches of `batch` samples: parameters, gradients
    /// and state, plus activations.
    public func replicaBytes(batch: Int) -> Double {
        4 * (2 * parameters + state + Double(batch) * activationsPerSample)
    }
}
