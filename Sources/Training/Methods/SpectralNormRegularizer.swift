import Engine

/// Spectral norm regularisation (Yoshida & Miyato 2017): ∇ of (λ/2)·σ(W)² is λ·σ·u₁v₁ᵀ. Per
/// step and matrix, ONE power iteration from a persistent unit vector v:
///   u = W v; û = u/‖u‖; v' = Wᵀ û; σ = ‖v'‖; v̂ = v'/σ; grad += λ·σ·û·v̂ᵀ
/// The vectors are state: checkpointed, never given gradients.
public final class SpectralNormRegularizer {
    public let lambda: Float
    public let matrices: [WeightMatrix]
    /// Persistent right singular vector estimates, matrix after matrix (cols floats each).
    public let vectors: FloatBuffer
    /// σ estimated at the last `apply`/`iterate`, per matrix.
    public private(set) var sigmas: [Float]
    private let vectorOffsets: [Int]
    private let u: FloatBuffer  // (max rows)
    private let v: FloatBuffer  // (max cols)

    public init(matrices: [WeightMatrix], lambda: Double, seed: UInt64) {
        self.lambda = Float(lambda)
        self.matrices = matrices
        var offsets = [Int]()
        var total = 0
        for matrix in matrices {
            offsets.append(total)
            total += matrix.cols
        }
        vectorOffsets = offsets
        vectors = FloatBuffer(count: total)
        sigmas = [Float](repeating: 0, count: matrices.count)
        u = FloatBuffer(count: matrices.map(\.rows).max() ?? 0)
        v = FloatBuffer(count: matrices.map(\.cols).max() ?? 0)
        // Gaussian start from (seed, matrix index), normalised.
        for (index, matrix) in matrices.enumerated() {
            var generator = SplitMix64(keys: seed, 0x5350_4543, UInt64(index))
            let start = vectors.pointer + offsets[index]
            for i in 0..<matrix.cols { start[i] = generator.nextGaussian() }
            let length = norm2(count: matrix.cols, start)
            scale(count: matrix.cols, by: 1 / length, start)
        }
    }

    /// One power iteration per matrix, updating the persistent vectors and σ.
    public func iterate(parameters: FloatBuffer) {
        for index in matrices.indices { powerIteration(index, parameters: parameters) }
    }

    /// One power iteration per matrix, then grad += λ·σ·û·v̂ᵀ.
    public func apply(parameters: FloatBuffer, gradient: FloatBuffer) {
        for (index, matrix) in matrices.enumerated() {
            let sigma = powerIteration(index, parameters: parameters)
            ger(rows: matrix.rows, cols: matrix.cols, alpha: lambda * sigma, u.pointer,
                vectors.pointer + vectorOffsets[index], gradient.pointer + matrix.offset)
        }
    }

    /// Leaves û in `u` and v̂ in the persistent vector; returns σ.
    @discardableResult
    private func powerIteration(_ index: Int, parameters: FloatBuffer) -> Float {
        let matrix = matrices[index]
        let w = parameters.pointer + matrix.offset
        let persistent = vectors.pointer + vectorOffsets[index]
        // u = W v̂, û = u/‖u‖
        gemv(.none, rows: matrix.rows, cols: matrix.cols, w, persistent, beta: 0, u.pointer)
        let uLength = norm2(count: matrix.rows, u.pointer)
        guard uLength > 0 else {
            sigmas[index] = 0
            return 0
        }
        scale(count: matrix.rows, by: 1 / uLength, u.pointer)
        // v' = Wᵀ û, σ = ‖v'‖, v̂ = v'/σ
        gemv(.transposed, rows: matrix.rows, cols: matrix.cols, w, u.pointer, beta: 0, v.pointer)
        let sigma = norm2(count: matrix.cols, v.pointer)
        guard sigma > 0 else {
            sigmas[index] = 0
            return 0
        }
        scale(count: matrix.cols, by: 1 / sigma, v.pointer)
        persistent.update(from: v.pointer, count: matrix.cols)
        sigmas[index] = sigma
        return sigma
    }
}
