// Rectified linear unit, y = max(x, 0); backward passes the gradient where y > 0.

public final class ReLU: Layer {
    public let inputShape: Shape
    public var outputShape: Shape { inputShape }
    private var output: FloatBuffer?

    public init(inputShape: Shape) { self.inputShape = inputShape }

    public func reserve(maxBatch: Int) {
        let needed = maxBatch * inputShape.count
        if let output, output.count >= needed { return }
        output = FloatBuffer(count: needed)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext)
        -> UnsafeMutablePointer<Float>
    {
        guard let output else { preconditionFailure("ReLU: reserve(maxBatch:) not called") }
        let y = output.pointer
        VectorKernels.relu(x, y, count: batch * inputShape.count)
        return y
    }

    public func backward(
        outputGradient dy: UnsafeMutablePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?,
        batch: Int
    ) {
        guard let dx, let y = output?.pointer else { return }
        VectorKernels.reluBackward(y, dy, dx, count: batch * inputShape.count)
    }
}
