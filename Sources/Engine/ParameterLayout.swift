// All trainable parameters of a network live in ONE contiguous arena, gradients in a second
// with the same layout, and non-trainable state (BN running statistics) in a third
// (DESIGN §3). Layers hold offsets into them; all-reduce, update, checkpoint and transfer are
// then one contiguous operation each.

/// What a parameter is, which decides regularisation and initialisation.
public enum ParameterRole: Sendable, Equatable {
    /// A weight matrix regularised as rows × cols (a conv kernel out×in×kh×kw is out × in·kh·kw).
    case weight(rows: Int, cols: Int)
    case bias
    case normScale
    case normShift
}

public enum StateRole: Sendable, Equatable {
    case runningMean
    case runningVariance
}

/// How a parameter starts.
public enum Initializer: Sendable, Equatable {
    /// A weight matrix with this fan-in, drawn as the network's `InitScheme` says (by default
    /// He/Kaiming normal, N(0, 2/fanIn), after which the case is named).
    case kaimingNormal(fanIn: Int)
    /// A bias: U(−1/√fanIn, 1/√fanIn) (PyTorch's default), or 0 under `InitScheme.lecunNormal`.
    case uniformFanIn(fanIn: Int)
    case constant(Float)
}

public struct ParameterEntry: Sendable, Equatable {
    /// PyTorch-style name, e.g. "0.weight" or "features.3.running_mean".
    public var name: String
    public var offset: Int
    /// Tensor shape as PyTorch stores it, e.g. [out, in] or [out, in, kh, kw].
    public var shape: [Int]
    public var role: ParameterRole
    public var initializer: Initializer
    public var count: Int { shape.reduce(1, *) }
}

public struct StateEntry: Sendable, Equatable {
    public var name: String
    public var offset: Int
    public var shape: [Int]
    public var role: StateRole
    public var initialValue: Float
    public var count: Int { shape.reduce(1, *) }
}

/// Hands out arena offsets while layers declare themselves.
public final class ParameterLayout {
    public private(set) var parameters: [ParameterEntry] = []
    public private(set) var state: [StateEntry] = []
    public private(set) var parameterCount = 0
    public private(set) var stateCount = 0
    /// Channels of every batch-norm layer, in declaration order (their batch statistics).
    public private(set) var normalizationChannels = 0
    /// Every BN layer, in declaration (= batch statistics) order.
    public private(set) var batchNormLayers: [BatchNorm2d] = []
    private var prefixes: [String] = []

    public init() {}

    /// Declare sub-layers under a name prefix, e.g. "features.3".
    public func scoped(_ prefix: String, _ body: () -> Void) {
        prefixes.append(prefix)
        body()
        prefixes.removeLast()
    }

    private func qualified(_ name: String) -> String {
        (prefixes + [name]).filter { !$0.isEmpty }.joined(separator: ".")
    }

    public func addParameter(
        _ name: String, shape: [Int], role: ParameterRole, initializer: Initializer
    ) -> Int {
        let offset = parameterCount
        parameters.append(
            ParameterEntry(
                name: qualified(name), offset: offset, shape: shape, role: role,
                initializer: initializer))
        parameterCount += shape.reduce(1, *)
        return offset
    }

    public func addState(_ name: String, shape: [Int], role: StateRole, initialValue: Float) -> Int {
        let offset = stateCount
        state.append(
            StateEntry(
                name: qualified(name), offset: offset, shape: shape, role: role,
                initialValue: initialValue))
        stateCount += shape.reduce(1, *)
        return offset
    }

    /// Reserve `channels` (mean, variance) pairs of batch statistics for `owner`, which folds
    /// them into its running statistics; returns the channel offset.
    public func addNormalizationChannels(_ channels: Int, owner: BatchNorm2d) -> Int {
        let offset = normalizationChannels
        normalizationChannels += channels
        batchNormLayers.append(owner)
        return offset
    }
}

/// The allocated arenas a layer binds to.
public struct Arenas {
    public let parameters: UnsafeMutablePointer<Float>
    public let gradients: UnsafeMutablePointer<Float>
    public let state: UnsafeMutablePointer<Float>
    /// Batch statistics of the last training forward: for every BN channel c (in declaration
    /// order) the batch mean at [c] and the unbiased batch variance at [channels + c].
    public let batchStatistics: UnsafeMutablePointer<Float>
    public let normalizationChannels: Int
}
