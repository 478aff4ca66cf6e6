// Fully connected layer, PyTorch layout: y = x Wᵀ + b.
// Dimension letters: N batch, I input features, O output features.

public final class Linear: Layer {
    public let inputShape: Shape
    public let outputShape: Shape
    public let inFeatures: Int
    public let outFeatures: Int
    public let hasBias: Bool
    private let name: String

    private var weightOffset = 0
    private var biasOffset = 0
    private var weight: UnsafeMutablePointer<Float>!  // (O, I)
    private var weightGradient: UnsafeMutablePointer<Float>!  // (O, I)
    private var bias: UnsafeMutablePointer<Float>?  // (O)
    private var biasGradient: UnsafeMutablePointer<Float>?  // (O)
    private var output: FloatBuffer?  // (N, O)
    private var input: UnsafePointer<Float>?  // (N, I), the last forward's input

    /// `name` is the PyTorch module name, e.g. "0" or "classifier.1".
    public init(name: String, inputShape: Shape, outFeatures: Int, bias: Bool = true) {
        self.name = name
        self.inputShape = inputShape
        self.inFeatures = inputShape.count
        self.outFeatures = outFeatures
        self.outputShape = Shape(outFeatures)
        self.hasBias = bias
    }

    public func declare(into layout: ParameterLayout) {
        layout.scoped(name) {
            weightOffset = layout.addParameter(
                "weight", shape: [outFeatures, inFeatures],
                role: .weight(rows: outFeatures, cols: inFeatures),
                initializer: .kaimingNormal(fanIn: inFeatures))
            if hasBias {
                biasOffset = layout.addParameter(
                    "bias", shape: [outFeatures], role: .bias,
                    initializer: .uniformFanIn(fanIn: inFeatures))
            }
        }
    }

    public func bind(_ arenas: Arenas) {
        weight = arenas.parameters + weightOffset
        weightGradient = arenas.gradients + weightOffset
        if hasBias {
            bias = arenas.parameters + biasOffset
            biasGradient = arenas.gradients + biasOffset
        }
    }

    public func reserve(maxBatch: Int) {
        if let output, output.count >= maxBatch * outFeatures { return }
        output = FloatBuffer(count: maxBatch * outFeatures)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext)
        -> UnsafeMutablePointer<Float>
    {
        guard let output else { preconditionFailure("Linear \(name): reserve(maxBatch:) not called") }
        precondition(batch * outFeatures <= output.count, "Linear \(name): batch \(batch) exceeds reserved size")
        input = x
        let y = output.pointer
        if let bias {
            for n in 0..<batch { (y + n * outFeatures).update(from: bias, count: outFeatures) }
        }
        // y (N,O) = x (N,I) · Wᵀ (I,O) + [bias]
        gemm(
            .none, .transposed, m: batch, n: outFeatures, k: inFeatures, x, lda: inFeatures,
            weight, ldb: inFeatures, beta: hasBias ? 1 : 0, y, ldc: outFeatures)
        return y
    }

    public func backward(
        outputGradient dy: UnsafeMutablePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?,
        batch: Int
    ) {
        guard let x = input else { preconditionFailure("Linear \(name): backward before forward") }
        // dW (O,I) += dyᵀ (O,N) · x (N,I)
        gemm(
            .transposed, .none, m: outFeatures, n: inFeatures, k: batch, dy, lda: outFeatures,
            x, ldb: inFeatures, beta: 1, weightGradient, ldc: inFeatures)
        if let biasGradient {
            for n in 0..<batch {
                let row = dy + n * outFeatures
                for o in 0..<outFeatures { biasGradient[o] += row[o] }
            }
        }
        if let dx {
            // dx (N,I) = dy (N,O) · W (O,I)
            gemm(
                .none, .none, m: batch, n: inFeatures, k: outFeatures, dy, lda: outFeatures,
                weight, ldb: inFeatures, beta: 0, dx, ldc: inFeatures)
        }
    }
}
