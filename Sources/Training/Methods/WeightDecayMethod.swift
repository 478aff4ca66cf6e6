import Engine

// Weight decay on the regularised matrices: ∇ of (λ/2)‖W‖² is λW (default λ = 1e-4).

public final class WeightDecayMethod: TrainingMethod {
    public static let defaultLambda = 1e-4
    public let state = FloatBuffer(count: 0)
    public let decay: WeightDecay

    public init(config: TrainingConfig, matrices: RegularizedMatrices) {
        decay = WeightDecay(lambda: Float(config.effectiveLambda), matrices: matrices)
    }

    public func addGradientTerm(parameters: FloatBuffer, gradient: FloatBuffer) {
        decay.apply(parameters: parameters, gradient: gradient)
    }
}

/// grad += λW on each matrix.
public struct WeightDecay: Sendable {
    public let lambda: Float
    public let matrices: [WeightMatrix]

    public init(lambda: Float, matrices: [WeightMatrix]) {
        self.lambda = lambda
        self.matrices = matrices
    }

    public func apply(parameters: FloatBuffer, gradient: FloatBuffer) {
        for matrix in matrices {
            axpy(count: matrix.count, alpha: lambda, parameters.pointer + matrix.offset, gradient.pointer + matrix.offset)
        }
    }
}
