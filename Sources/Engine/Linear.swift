// Fully connected layer, PyTorch layout: y = x Wᵀ + b.
// Dimension letters: N batch, I input features, O output features.
//
// Split GEMMs (`splitGEMMs`): each product is computed as `blocks` fixed pieces of its output —
// y and dx by column blocks, dW by row blocks — that `jobs` may run at once. A piece is the same
// GEMM call with the same shape whoever runs it and whenever, and no output element is summed
// over pieces, so the result depends on `blocks` only, never on how many threads ran them. This
// lets several lanes share one unit without cutting its batch into chunks (which would need a
// gradient arena per chunk, their sum, and GEMMs half as deep).

/// Runs jobs 0..<count, possibly at the same time, and returns when all are done.
public typealias BlockJobs = (_ count: Int, _ job: (Int) -> Void) -> Void

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
    private var blocks = 1
    /// Unsplit, the one piece is the whole product, computed here.
    private var jobs: BlockJobs = { count, job in for index in 0..<count { job(index) } }

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

    /// Compute every product as `blocks` fixed output pieces handed to `jobs` (see above).
    public func splitGEMMs(blocks: Int, jobs: @escaping BlockJobs) {
        precondition(blocks >= 1, "Linear \(name): at least one block")
        self.blocks = blocks
        self.jobs = jobs
    }

    /// Piece `block` of `count` items: [count·block / blocks, count·(block + 1) / blocks).
    @inline(__always)
    private func piece(_ block: Int, of count: Int) -> Range<Int> {
        (count * block / blocks)..<(count * (block + 1) / blocks)
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
        // y[:, O_b] = x · W[O_b, :]ᵀ (+ bias), one column block of y per piece (all of y unsplit)
        jobs(blocks) { block in
            let columns = piece(block, of: outFeatures)
            gemm(
                .none, .transposed, m: batch, n: columns.count, k: inFeatures, x, lda: inFeatures,
                weight + columns.lowerBound * inFeatures, ldb: inFeatures, beta: hasBias ? 1 : 0,
                y + columns.lowerBound, ldc: outFeatures)
        }
        return y
    }

    public func backward(
        outputGradient dy: UnsafeMutablePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?,
        batch: Int
    ) {
        guard let x = input else { preconditionFailure("Linear \(name): backward before forward") }
        let (i, o) = (inFeatures, outFeatures)
        // Piece b adds dW's row block O_b and writes dx's column block I_b (unsplit: all of both).
        jobs(blocks) { block in
            let rows = piece(block, of: o)
            // dW[O_b, :] += dy[:, O_b]ᵀ · x
            gemm(.transposed, .none, m: rows.count, n: i, k: batch, dy + rows.lowerBound, lda: o,
                 x, ldb: i, beta: 1, weightGradient + rows.lowerBound * i, ldc: i)
            guard let dx else { return }
            // dx[:, I_b] = dy · W[:, I_b]
            let columns = piece(block, of: i)
            gemm(.none, .none, m: batch, n: columns.count, k: o, dy, lda: o,
                 weight + columns.lowerBound, ldb: i, beta: 0, dx + columns.lowerBound, ldc: i)
        }
        if let biasGradient {
            for n in 0..<batch {
                let row = dy + n * o
                for index in 0..<o { biasGradient[index] += row[index] }
            }
        }
    }
}
