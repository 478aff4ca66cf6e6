// Pooling over each channel's map (PyTorch semantics, floor output size).
//
// Dimension letters: N batch, C channels, H×W input map, HO×WO output map.
// HO = (H + 2·padding − kernel)/stride + 1 (floor), likewise WO.
// - MaxPool2d: padding never wins (padded positions are −∞); backward routes each output
//   gradient to the arg-max recorded in forward (the first maximum in row-major window order).
// - AvgPool2d: count_include_pad = false, i.e. the mean of the in-bounds elements only.
// - GlobalAvgPool: C×H×W → C, the mean over each map.

/// Geometry shared by the windowed pools.
struct PoolGeometry {
    let channels: Int, h: Int, w: Int, ho: Int, wo: Int
    let kernel: Int, stride: Int, padding: Int

    init(layer: String, inputShape: Shape, kernel: Int, stride: Int, padding: Int) {
        let (c, h, w) = inputShape.chw
        precondition(kernel >= 1 && stride >= 1, "\(layer): kernel and stride must be positive")
        precondition(
            padding >= 0 && 2 * padding <= kernel,
            "\(layer): padding \(padding) must be at most half the kernel \(kernel)")
        self.channels = c
        self.h = h
        self.w = w
        self.ho = (h + 2 * padding - kernel) / stride + 1
        self.wo = (w + 2 * padding - kernel) / stride + 1
        precondition(ho >= 1 && wo >= 1, "\(layer): kernel \(kernel) does not fit input \(inputShape)")
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }

    var outputShape: Shape { Shape(channels, ho, wo) }

    /// In-bounds input rows [lo, hi) of output row `o` along an axis of `size`.
    @inline(__always)
    func window(_ o: Int, size: Int) -> (lo: Int, hi: Int) {
        let start = o * stride - padding
        return (max(start, 0), min(start + kernel, size))
    }
}

public final class MaxPool2d: Layer {
    public let inputShape: Shape
    public let outputShape: Shape
    private let geometry: PoolGeometry
    private var output: FloatBuffer?  // (N, C, HO, WO)
    private var argmax: UnsafeMutablePointer<Int32>?  // (N, C, HO, WO), index into the input map
    private var argmaxCount = 0

    public init(inputShape: Shape, kernel: Int, stride: Int? = nil, padding: Int = 0) {
        geometry = PoolGeometry(
            layer: "MaxPool2d", inputShape: inputShape, kernel: kernel, stride: stride ?? kernel,
            padding: padding)
        self.inputShape = inputShape
        self.outputShape = geometry.outputShape
    }

    deinit { argmax?.deallocate() }

    public func reserve(maxBatch: Int) {
        let needed = maxBatch * outputShape.count
        if let output, output.count >= needed { return }
        output = FloatBuffer(count: needed)
        argmax?.deallocate()
        argmax = UnsafeMutablePointer<Int32>.allocate(capacity: max(needed, 1))
        argmaxCount = needed
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext)
        -> UnsafeMutablePointer<Float>
    {
        guard let output, let argmax else { preconditionFailure("MaxPool2d: reserve(maxBatch:) not called") }
        precondition(batch * outputShape.count <= output.count, "MaxPool2d: batch \(batch) exceeds reserved size")
        let g = geometry
        let y = output.pointer
        for plane in 0..<(batch * g.channels) {
            let source = x + plane * g.h * g.w
            let target = y + plane * g.ho * g.wo
            let indices = argmax + plane * g.ho * g.wo
            for oh in 0..<g.ho {
                let (r0, r1) = g.window(oh, size: g.h)
                for ow in 0..<g.wo {
                    let (c0, c1) = g.window(ow, size: g.w)
                    var best = -Float.infinity
                    var bestIndex = r0 * g.w + c0
                    for r in r0..<r1 {
                        for c in c0..<c1 where source[r * g.w + c] > best {
                            best = source[r * g.w + c]
                            bestIndex = r * g.w + c
                        }
                    }
                    target[oh * g.wo + ow] = best
                    indices[oh * g.wo + ow] = Int32(bestIndex)
                }
            }
        }
        return y
    }

    public func backward(
        outputGradient dy: UnsafeMutablePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?,
        batch: Int
    ) {
        guard let dx, let argmax else { return }
        let g = geometry
        dx.update(repeating: 0, count: batch * inputShape.count)
        for plane in 0..<(batch * g.channels) {
            let target = dx + plane * g.h * g.w
            let source = dy + plane * g.ho * g.wo
            let indices = argmax + plane * g.ho * g.wo
            for i in 0..<(g.ho * g.wo) { target[Int(indices[i])] += source[i] }
        }
    }
}

public final class AvgPool2d: Layer {
    public let inputShape: Shape
    public let outputShape: Shape
    private let geometry: PoolGeometry
    private var output: FloatBuffer?  // (N, C, HO, WO)

    public init(inputShape: Shape, kernel: Int, stride: Int? = nil, padding: Int = 0) {
        geometry = PoolGeometry(
            layer: "AvgPool2d", inputShape: inputShape, kernel: kernel, stride: stride ?? kernel,
            padding: padding)
        self.inputShape = inputShape
        self.outputShape = geometry.outputShape
    }

    public func reserve(maxBatch: Int) {
        let needed = maxBatch * outputShape.count
        if let output, output.count >= needed { return }
        output = FloatBuffer(count: needed)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext)
        -> UnsafeMutablePointer<Float>
    {
        guard let output else { preconditionFailure("AvgPool2d: reserve(maxBatch:) not called") }
        precondition(batch * outputShape.count <= output.count, "AvgPool2d: batch \(batch) exceeds reserved size")
        let g = geometry
        let y = output.pointer
        for plane in 0..<(batch * g.channels) {
            let source = x + plane * g.h * g.w
            let target = y + plane * g.ho * g.wo
            for oh in 0..<g.ho {
                let (r0, r1) = g.window(oh, size: g.h)
                for ow in 0..<g.wo {
                    let (c0, c1) = g.window(ow, size: g.w)
                    var sum: Float = 0
                    for r in r0..<r1 {
                        for c in c0..<c1 { sum += source[r * g.w + c] }
                    }
                    target[oh * g.wo + ow] = sum / Float((r1 - r0) * (c1 - c0))
                }
            }
        }
        return y
    }

    public func backward(
        outputGradient dy: UnsafeMutablePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?,
        batch: Int
    ) {
        guard let dx else { return }
        let g = geometry
        dx.update(repeating: 0, count: batch * inputShape.count)
        for plane in 0..<(batch * g.channels) {
            let target = dx + plane * g.h * g.w
            let source = dy + plane * g.ho * g.wo
            for oh in 0..<g.ho {
                let (r0, r1) = g.window(oh, size: g.h)
                for ow in 0..<g.wo {
                    let (c0, c1) = g.window(ow, size: g.w)
                    let share = source[oh * g.wo + ow] / Float((r1 - r0) * (c1 - c0))
                    for r in r0..<r1 {
                        for c in c0..<c1 { target[r * g.w + c] += share }
                    }
                }
            }
        }
    }
}

public final class GlobalAvgPool: Layer {
    public let inputShape: Shape
    public let outputShape: Shape
    private let channels: Int
    private let spatial: Int
    private var output: FloatBuffer?  // (N, C)

    public init(inputShape: Shape) {
        let (c, h, w) = inputShape.chw
        self.inputShape = inputShape
        self.channels = c
        self.spatial = h * w
        self.outputShape = Shape(c)
    }

    public func reserve(maxBatch: Int) {
        if let output, output.count >= maxBatch * channels { return }
        output = FloatBuffer(count: maxBatch * channels)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext)
        -> UnsafeMutablePointer<Float>
    {
        guard let output else { preconditionFailure("GlobalAvgPool: reserve(maxBatch:) not called") }
        precondition(batch * channels <= output.count, "GlobalAvgPool: batch \(batch) exceeds reserved size")
        let y = output.pointer
        let inverse = 1 / Float(spatial)
        for plane in 0..<(batch * channels) {
            let source = x + plane * spatial
            var sum: Float = 0
            for i in 0..<spatial { sum += source[i] }
            y[plane] = sum * inverse
        }
        return y
    }

    public func backward(
        outputGradient dy: UnsafeMutablePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?,
        batch: Int
    ) {
        guard let dx else { return }
        let inverse = 1 / Float(spatial)
        for plane in 0..<(batch * channels) {
            (dx + plane * spatial).update(repeating: dy[plane] * inverse, count: spatial)
        }
    }
}

/// C×H×W → C·H·W. Memory is already flat, so forward and backward are copies; use it where a
/// model reads better with an explicit flatten (a Linear accepts any input shape directly).
public final class Flatten: Layer {
    public let inputShape: Shape
    public let outputShape: Shape

    public init(inputShape: Shape) {
        self.inputShape = inputShape
        self.outputShape = Shape(inputShape.count)
    }

    public func reserve(maxBatch: Int) {}

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext)
        -> UnsafeMutablePointer<Float>
    {
        // The input buffer belongs to the previous layer and is valid until its next forward.
        UnsafeMutablePointer(mutating: x)
    }

    public func backward(
        outputGradient dy: UnsafeMutablePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?,
        batch: Int
    ) {
        guard let dx, dx != dy else { return }
        dx.update(from: dy, count: batch * inputShape.count)
    }
}
