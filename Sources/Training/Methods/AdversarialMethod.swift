import Engine

// Adversarial training with the fast gradient method (Goodfellow et al. 2015), the paper's
// baseline: a unit's loss is α·L(x) + (1−α)·L(x + η), η = ε·g/‖g‖₂ per example, g = ∇ₓL(x).
// It changes only the per-unit loss; nothing is added per step and nothing persists.

public final class AdversarialMethod: TrainingMethod {
    public static let defaultLambda = 0.0
    public let state = FloatBuffer(count: 0)
    public init(config: TrainingConfig, matrices: RegularizedMatrices) {}
    public func addGradientTerm(parameters: FloatBuffer, gradient: FloatBuffer) {}

    public static func makeObjective(config: TrainingConfig, unitSize: Int, sampleSize: Int) -> UnitObjective {
        AdversarialObjective(
            alpha: Float(config.adversarialAlpha), epsilon: Float(config.adversarialEpsilon), unitSize: unitSize,
            sampleSize: sampleSize)
    }
}

public final class AdversarialObjective: UnitObjective {
    public let alpha: Float
    public let epsilon: Float
    private let perturbed: FloatBuffer  // (unitSize, sampleSize)
    private let inputGradient: FloatBuffer  // (unitSize, sampleSize)

    public init(alpha: Float, epsilon: Float, unitSize: Int, sampleSize: Int) {
        self.alpha = alpha
        self.epsilon = epsilon
        perturbed = FloatBuffer(count: unitSize * sampleSize)
        inputGradient = FloatBuffer(count: unitSize * sampleSize)
    }

    public func run(_ unit: UnitInput, network: Network, recordBatchStatistics: () -> Void) -> (lossSum: Double, correct: Int) {
        let n = unit.count
        let logits = network.forward(unit.input, batch: n, context: unit.context)
        let clean = network.loss.forward(logits: logits, labels: unit.labels, batch: n)
        recordBatchStatistics()
        // α·L(x): its input gradient g gives the direction of the perturbation.
        network.backward(logitGradient: network.loss.backward(scale: alpha), batch: n, inputGradient: inputGradient.pointer)
        AdversarialPerturbation.perturb(
            unit.input, gradient: inputGradient.pointer, into: perturbed.pointer, batch: n, sampleSize: unit.sampleSize,
            epsilon: epsilon)
        // (1−α)·L(x + η)
        let adversarialLogits = network.forward(perturbed.pointer, batch: n, context: unit.context)
        let adversarial = network.loss.forward(logits: adversarialLogits, labels: unit.labels, batch: n)
        network.backward(logitGradient: network.loss.backward(scale: 1 - alpha), batch: n)
        let a = Double(alpha)
        return (a * clean.lossSum + (1 - a) * adversarial.lossSum, clean.correct)
    }
}
