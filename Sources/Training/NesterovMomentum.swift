import Engine

// Nesterov momentum in PyTorch's form (torch.optim.SGD, nesterov=True, dampening 0):
//   b ← μ·b + g;   θ ← θ − lr·(g + μ·b)
// with b = 0 before the first step (so b = g after it, as PyTorch initialises it).

public final class NesterovMomentum {
    public let momentum: Float
    /// The momentum buffer b, same layout as the parameter arena.
    public let velocity: FloatBuffer

    public init(parameterCount: Int, momentum: Double) {
        self.momentum = Float(momentum)
        velocity = FloatBuffer(count: parameterCount)
    }

    public func step(parameters: FloatBuffer, gradient: FloatBuffer, learningRate: Double) {
        VectorKernels.momentumStep(
            parameters: parameters.pointer, gradient: gradient.pointer, velocity: velocity.pointer,
            count: parameters.count, learningRate: Float(learningRate), momentum: momentum, nesterov: true)
    }
}
