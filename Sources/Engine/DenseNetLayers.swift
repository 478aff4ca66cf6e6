// The building blocks of DenseNet (Huang, Liu, van der Maaten & Weinberger 2017, "Densely
// Connected Convolutional Networks"), without bottleneck or compression, as composite layers
// that own their sub-layers. Intermediate gradients live in the network's shared Workspace.
//
// Dimension letters: N batch, C input channels, K growth rate (new channels), S = H·W.

/// BN(C) → ReLU → conv3×3 p1 C→K (no bias); output (N, C + K, H, W) = [input, new K channels].
/// The ReLU is fused into the convolution (`Conv2d(inputReLU: true)` reads max(BN output, 0)
/// and masks its input gradient), so no (N, C, H, W) ReLU output is stored or re-read.
/// Backward: the new channels' gradient flows back through conv (with the ReLU mask) and BN; the
/// input channels' gradient passes straight through and is ADDED to that.
public final class DenseLayer: CompositeLayer {
    public let inputShape: Shape
    public let outputShape: Shape
    public let growthRate: Int
    public let norm: BatchNorm2d
    /// ReLU → conv3×3 in one layer.
    public let conv: Conv2d
    public let sublayers: [Layer]
    private let workspace: Workspace
    private let channels: Int
    private let spatial: Int
    private var output: FloatBuffer?  // (N, C + K, S)
    private var input: UnsafePointer<Float>?

    /// Sub-layer names follow densenet.pytorch's SingleLayer: "<name>.bn1", "<name>.conv1".
    public init(
        name: String, inputShape: Shape, growthRate: Int, ghostBatch: Int, winograd: Bool = true, workspace: Workspace
    ) {
        let (c, h, w) = inputShape.chw
        self.inputShape = inputShape
        self.growthRate = growthRate
        self.channels = c
        self.spatial = h * w
        self.workspace = workspace
        self.outputShape = Shape(c + growthRate, h, w)
        norm = BatchNorm2d(name: name + ".bn1", inputShape: inputShape, ghostBatch: ghostBatch)
        conv = Conv2d(
            name: name + ".conv1", inputShape: inputShape, outChannels: growthRate, kernel: 3,
            padding: 1, bias: false, inputReLU: true, winograd: winograd, workspace: workspace)
        sublayers = [norm, conv]
    }

    public func declare(into layout: ParameterLayout) {
        for layer in sublayers { layer.declare(into: layout) }
    }

    public func bind(_ arenas: Arenas) {
        for layer in sublayers { layer.bind(arenas) }
    }

    public func reserve(maxBatch: Int) {
        for layer in sublayers { layer.reserve(maxBatch: maxBatch) }
        workspace.reserve(.compositeA, count: maxBatch * growthRate * spatial)
        workspace.reserve(.compositeB, count: maxBatch * channels * spatial)
        if let output, output.count >= maxBatch * outputShape.count { return }
        output = FloatBuffer(count: maxBatch * outputShape.count)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext)
        -> UnsafeMutablePointer<Float>
    {
        guard let output else { preconditionFailure("DenseLayer: reserve(maxBatch:) not called") }
        precondition(batch * outputShape.count <= output.count, "DenseLayer: batch \(batch) exceeds reserved size")
        input = x
        let normalized = norm.forward(x, batch: batch, context: context)
        let new = conv.forward(normalized, batch: batch, context: context)  // (N, K, S)
        let y = output.pointer
        let (inCount, newCount) = (channels * spatial, growthRate * spatial)
        for n in 0..<batch {
            let target = y + n * (inCount + newCount)
            target.update(from: x + n * inCount, count: inCount)
            (target + inCount).update(from: new + n * newCount, count: newCount)
        }
        return y
    }

    public func backward(
        outputGradient dy: UnsafeMutablePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?,
        batch: Int
    ) {
        let (inCount, newCount) = (channels * spatial, growthRate * spatial)
        let newGradient = workspace.pointer(.compositeA)  // (N, K, S)
        let normalizedGradient = workspace.pointer(.compositeB)  // (N, C, S)
        for n in 0..<batch {
            (newGradient + n * newCount).update(from: dy + n * (inCount + newCount) + inCount, count: newCount)
        }
        conv.backward(outputGradient: newGradient, inputGradient: normalizedGradient, batch: batch)
        norm.backward(outputGradient: normalizedGradient, inputGradient: dx, batch: batch)
        guard let dx else { return }
        for n in 0..<batch {
            VectorKernels.add(dy + n * (inCount + newCount), into: dx + n * inCount, count: inCount)
        }
    }
}

/// BN(C) → ReLU → conv1×1 C→C (no bias) → average-pool 2×2 stride 2, computed as
/// BN → ReLU → average-pool → conv1×1: a 1×1 convolution and an average pool are both linear
/// and act on different axes (channels, positions), so they commute, and the convolution then
/// runs on a quarter of the positions. The parameters are the model's; `forwardMACs` is
/// MODELS.md's count for the conv at the input resolution (the model as defined), although the
/// engine does a quarter of it.
public final class Transition: CompositeLayer, CountsMACs {
    public let inputShape: Shape
    public let outputShape: Shape
    public let norm: BatchNorm2d
    public let relu: ReLU
    public let conv: Conv2d
    public let pool: AvgPool2d
    public let sublayers: [Layer]
    private let workspace: Workspace

    /// Sub-layer names follow densenet.pytorch's Transition: "<name>.bn1", "<name>.conv1".
    public init(name: String, inputShape: Shape, ghostBatch: Int, workspace: Workspace) {
        let channels = inputShape.chw.c
        self.inputShape = inputShape
        self.workspace = workspace
        norm = BatchNorm2d(name: name + ".bn1", inputShape: inputShape, ghostBatch: ghostBatch)
        relu = ReLU(inputShape: inputShape, inPlace: true)  // BN backward reads its input only
        pool = AvgPool2d(inputShape: inputShape, kernel: 2, stride: 2)
        conv = Conv2d(
            name: name + ".conv1", inputShape: pool.outputShape, outChannels: channels, kernel: 1, bias: false,
            workspace: workspace)
        outputShape = conv.outputShape
        sublayers = [norm, relu, pool, conv]
    }

    public var forwardMACs: Int {
        let (c, h, w) = inputShape.chw
        return conv.outChannels * c * h * w
    }

    public func declare(into layout: ParameterLayout) {
        for layer in sublayers { layer.declare(into: layout) }
    }

    public func bind(_ arenas: Arenas) {
        for layer in sublayers { layer.bind(arenas) }
    }

    public func reserve(maxBatch: Int) {
        for layer in sublayers { layer.reserve(maxBatch: maxBatch) }
        workspace.reserve(.compositeA, count: maxBatch * pool.outputShape.count)
        workspace.reserve(.compositeB, count: maxBatch * inputShape.count)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext)
        -> UnsafeMutablePointer<Float>
    {
        var y = UnsafeMutablePointer(mutating: x)
        for layer in sublayers { y = layer.forward(y, batch: batch, context: context) }
        return y
    }

    public func backward(
        outputGradient dy: UnsafeMutablePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?,
        batch: Int
    ) {
        let pooledGradient = workspace.pointer(.compositeA)  // (N, C, H/2, W/2)
        let activatedGradient = workspace.pointer(.compositeB)  // (N, C, H, W)
        conv.backward(outputGradient: dy, inputGradient: pooledGradient, batch: batch)
        pool.backward(outputGradient: pooledGradient, inputGradient: activatedGradient, batch: batch)
        relu.backward(outputGradient: activatedGradient, inputGradient: activatedGradient, batch: batch)
        norm.backward(outputGradient: activatedGradient, inputGradient: dx, batch: batch)
    }
}
