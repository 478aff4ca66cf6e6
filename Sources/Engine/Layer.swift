// The layer contract (after Caffe's layer.hpp and llm.c's forward/backward pairs).
//
// Lifecycle: a layer is built with its per-sample input shape; `declare` asks a
// ParameterLayout for the offsets of its parameters and state; the Network then allocates the
// three arenas (parameters, gradients, state) once and calls `bind`; `reserve(maxBatch:)`
// allocates activations and workspaces once per shape. After that, forward/backward allocate
// nothing.
//
// Contracts:
// - forward stores exactly what backward needs and returns a pointer to its own output
//   buffer (batch × outputShape.count), valid until the next forward.
// - backward ACCUMULATES (+=) parameter gradients into the gradient arena, which the caller
//   zeroes once per unit; it WRITES (=) the input gradient into `inputGradient` when that is
//   non-nil (nil for the first layer when nobody needs ∇ₓ).
// - Training/inference is an argument, never a global.

public enum Mode: Sendable { case training, inference }

/// Where a layer's randomness comes from in this forward pass: dropout masks are drawn from
/// (seed, step, unit) so any process computing the same unit draws the same mask.
public struct ForwardContext: Sendable {
    public var mode: Mode
    public var seed: UInt64
    public var step: UInt64
    public var unit: UInt64
    /// Set when this pass computes one chunk of a unit (see ChunkCollective.swift).
    public var chunk: ChunkContext?

    public init(mode: Mode, seed: UInt64 = 0, step: UInt64 = 0, unit: UInt64 = 0, chunk: ChunkContext? = nil) {
        self.mode = mode
        self.seed = seed
        self.step = step
        self.unit = unit
        self.chunk = chunk
    }

    public static let inference = ForwardContext(mode: .inference)
}

public protocol Layer: AnyObject {
    var inputShape: Shape { get }
    var outputShape: Shape { get }
    /// Register parameters and state; called once, before `bind`.
    func declare(into layout: ParameterLayout)
    /// Point at the allocated arenas; called once.
    func bind(_ arenas: Arenas)
    /// Allocate activations and workspaces for batches up to `maxBatch`.
    func reserve(maxBatch: Int)
    func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext)
        -> UnsafeMutablePointer<Float>
    func backward(
        outputGradient: UnsafeMutablePointer<Float>, inputGradient: UnsafeMutablePointer<Float>?,
        batch: Int)
}

/// Layers with neither parameters nor state need not implement declare/bind.
extension Layer {
    public func declare(into layout: ParameterLayout) {}
    public func bind(_ arenas: Arenas) {}
}
