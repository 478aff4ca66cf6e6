// Rectified linear unit, y = max(x, 0); backward passes the gradient where y > 0.
//
// In place (`inPlace: true`) it overwrites its input with y and keeps no buffer of its own:
// backward needs only y. That is safe only after a layer whose backward never reads its own
// output — Conv2d, Linear and BatchNorm2d read their inputs — and saves one activation-sized
// buffer per use (a VGG-16 block is conv → BN → ReLU: three such buffers become two), with the
// same arithmetic and so the same bits.

public final class ReLU: Layer {
    public let inputShape: Shape
    public var outputShape: Shape { inputShape }
    /// Overwrite the input instead of writing a buffer of its own.
    public let inPlace: Bool
    private var output: FloatBuffer?
    /// Where the last forward wrote y (the input itself when in place).
    private var lastOutput: UnsafePointer<Float>?

    public init(inputShape: Shape, inPlace: Bool = false) {
        self.inputShape = inputShape
        self.inPlace = inPlace
    }

    public func reserve(maxBatch: Int) {
        if inPlace { return }
        let needed = maxBatch * inputShape.count
        if let output, output.count >= needed { return }
        output = FloatBuffer(count: needed)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext)
        -> UnsafeMutablePointer<Float>
    {
        let y: UnsafeMutablePointer<Float>
        if inPlace {
            // The previous layer's output buffer, which that layer hands out as mutable.
            y = UnsafeMutablePointer(mutating: x)
        } else {
            guard let output else { preconditionFailure("ReLU: reserve(maxBatch:) not called") }
            y = output.pointer
        }
        VectorKernels.relu(x, y, count: batch * inputShape.count)
        lastOutput = UnsafePointer(y)
        return y
    }

    public func backward(
        outputGradient dy: UnsafeMutablePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?,
        batch: Int
    ) {
        guard let dx, let y = lastOutput else { return }
        VectorKernels.reluBackward(y, dy, dx, count: batch * inputShape.count)
    }
}
