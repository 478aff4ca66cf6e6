import Engine

// Spectral norm regularisation (Yoshida & Miyato 2017), default λ = 0.01: once per step, one
// power iteration per regularised matrix from its persistent `v`, then grad += λ·σ·û·v̂ᵀ
// (SpectralNormRegularizer). The `v` vectors are this method's checkpointed state.

public final class SpectralNormMethod: TrainingMethod {
    public static let defaultLambda = 0.01
    public let regularizer: SpectralNormRegularizer

    public init(config: TrainingConfig, matrices: RegularizedMatrices) {
        regularizer = SpectralNormRegularizer(matrices: matrices, lambda: config.effectiveLambda, seed: config.seed)
    }

    public var state: FloatBuffer { regularizer.vectors }

    public func addGradientTerm(parameters: FloatBuffer, gradient: FloatBuffer) {
        regularizer.apply(parameters: parameters, gradient: gradient)
    }
}
