// Inverted dropout (Srivastava et al. 2014): in training each element is kept with
// probability 1 − p and scaled by 1/(1 − p); in inference it is the identity.
// The mask of a forward pass is drawn from SplitMix64(keys: seed, step, unit, salt), one draw
// per element in (N, features) order, so any process computing the same unit draws the same
// mask (DESIGN §4). `salt` tells the dropout layers of one model apart.

public final class Dropout: Layer {
    public let inputShape: Shape
    public var outputShape: Shape { inputShape }
    public let probability: Float
    public let salt: UInt64
    private var output: FloatBuffer?  // (N, F)
    private var mask: FloatBuffer?  // (N, F): 0 or 1/(1 − p)
    private var lastMode: Mode = .inference

    public init(inputShape: Shape, probability: Float, salt: UInt64) {
        precondition(
            probability >= 0 && probability < 1, "Dropout: probability must be in [0, 1), got \(probability)")
        self.inputShape = inputShape
        self.probability = probability
        self.salt = salt
    }

    public func reserve(maxBatch: Int) {
        let needed = maxBatch * inputShape.count
        if let output, output.count >= needed { return }
        output = FloatBuffer(count: needed)
        mask = FloatBuffer(count: needed)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext)
        -> UnsafeMutablePointer<Float>
    {
        guard let output, let mask else { preconditionFailure("Dropout: reserve(maxBatch:) not called") }
        let count = batch * inputShape.count
        precondition(count <= output.count, "Dropout: batch \(batch) exceeds reserved size")
        lastMode = context.mode
        let y = output.pointer
        if context.mode == .inference || probability == 0 {
            lastMode = .inference
            y.update(from: x, count: count)
            return y
        }
        var generator = SplitMix64(keys: context.seed, context.step, context.unit, salt)
        // A chunk of a unit draws the mask of its own rows of the unit's mask.
        if let chunk = context.chunk { generator.advance(by: chunk.sampleOffset * inputShape.count) }
        let keep = 1 / (1 - probability)
        let m = mask.pointer
        for i in 0..<count {
            m[i] = generator.nextUnitFloat() < probability ? 0 : keep
            y[i] = x[i] * m[i]
        }
        return y
    }

    /// The mask (0 or 1/(1 − p)) of the last training forward, for tests.
    public func lastMask(count: Int) -> [Float] {
        guard let mask else { return [] }
        return Array(UnsafeBufferPointer(start: mask.pointer, count: min(count, mask.count)))
    }

    public func backward(
        outputGradient dy: UnsafeMutablePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?,
        batch: Int
    ) {
        guard let dx, let mask else { return }
        let count = batch * inputShape.count
        if lastMode == .inference {
            if dx != dy { dx.update(from: dy, count: count) }
            return
        }
        let m = mask.pointer
        for i in 0..<count { dx[i] = dy[i] * m[i] }
    }
}
