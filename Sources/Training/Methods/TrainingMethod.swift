import Engine

// The seam for regularisation methods (paper §4: vanilla, weight decay, adversarial, spectral).
// A method may do two things, each optional:
//  - change a unit's loss and gradient (`UnitObjective`), wherever the unit runs: in `train`,
//    on every lane and on every worker (adversarial training's FGM perturbation);
//  - add a parameter-gradient term once per step to the averaged gradient, on the process that
//    owns the parameters (decay's λW, spectral's λσ·u·vᵀ).
// It owns its persistent state (`state`: spectral's `v` vectors), which runs checkpoint and
// restore with the parameters. Safetensors exports hold the model only (PyTorch's state_dict
// has no place for a method's state), so no method state is exported.
//
// Adding a method: one file with a type conforming to `TrainingMethod`, one test file, and its
// registration — a case in `Method` below and one line in `Method.implementation`.

/// Which weight matrices a method regularises: every linear and conv weight (conv kernels as
/// out × in·kh·kw), never biases or BN γ/β. The one definition: `Network.weightMatrices`.
public typealias RegularizedMatrices = [WeightMatrix]

/// One unit's samples, prepared for forward/backward.
public struct UnitInput {
    /// (count, sampleSize)
    public var input: UnsafeMutablePointer<Float>
    /// (count)
    public var labels: UnsafePointer<Int32>
    public var count: Int
    public var sampleSize: Int
    public var context: ForwardContext

    public init(input: UnsafeMutablePointer<Float>, labels: UnsafePointer<Int32>, count: Int, sampleSize: Int, context: ForwardContext) {
        self.input = input
        self.labels = labels
        self.count = count
        self.sampleSize = sampleSize
        self.context = context
    }
}

/// A method's per-unit loss: forward, loss and backward of one unit, accumulating into
/// `network.gradients` (zeroed by the caller). It calls `recordBatchStatistics` once, right
/// after the forward pass whose BN batch statistics the unit reports. Returns the unit's loss
/// sum and correct count. Instances are per runner (they may own scratch buffers).
public protocol UnitObjective: AnyObject {
    func run(_ unit: UnitInput, network: Network, recordBatchStatistics: () -> Void) -> (lossSum: Double, correct: Int)
}

/// The plain loss: forward, softmax cross-entropy, backward.
public final class PlainObjective: UnitObjective {
    public init() {}

    public func run(_ unit: UnitInput, network: Network, recordBatchStatistics: () -> Void) -> (lossSum: Double, correct: Int) {
        let logits = network.forward(unit.input, batch: unit.count, context: unit.context)
        let result = network.loss.forward(logits: logits, labels: unit.labels, batch: unit.count)
        recordBatchStatistics()
        network.backward(logitGradient: network.loss.backward(scale: 1), batch: unit.count)
        return result
    }
}

public protocol TrainingMethod: AnyObject {
    /// λ when the config does not set it (0: the method has no λ).
    static var defaultLambda: Double { get }
    /// Built once per process that owns parameters; `matrices` are the network's regularised ones.
    init(config: TrainingConfig, matrices: RegularizedMatrices)
    /// Persistent state (may be empty): checkpointed and restored with the run.
    var state: FloatBuffer { get }
    /// Once per step, after the gradient sum is divided by the batch size.
    func addGradientTerm(parameters: FloatBuffer, gradient: FloatBuffer)
    /// The per-unit loss of this method, for a runner of units of up to `unitSize` samples.
    static func makeObjective(config: TrainingConfig, unitSize: Int, sampleSize: Int) -> UnitObjective
}

extension TrainingMethod {
    public static func makeObjective(config: TrainingConfig, unitSize: Int, sampleSize: Int) -> UnitObjective {
        PlainObjective()
    }
}

/// The methods a config can name (`method:`): the registration.
public enum Method: String, Sendable, CaseIterable {
    case vanilla, decay, adversarial, spectral

    public var implementation: any TrainingMethod.Type {
        switch self {
        case .vanilla: VanillaMethod.self
        case .decay: WeightDecayMethod.self
        case .adversarial: AdversarialMethod.self
        case .spectral: SpectralNormMethod.self
        }
    }
}

extension TrainingConfig {
    /// This config's method, built for a network's regularised matrices.
    public func makeMethod(matrices: RegularizedMatrices) -> TrainingMethod {
        method.implementation.init(config: self, matrices: matrices)
    }
}

/// No regularisation.
public final class VanillaMethod: TrainingMethod {
    public static let defaultLambda = 0.0
    public let state = FloatBuffer(count: 0)
    public init(config: TrainingConfig, matrices: RegularizedMatrices) {}
    public func addGradientTerm(parameters: FloatBuffer, gradient: FloatBuffer) {}
}
