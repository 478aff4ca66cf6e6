// Scratch memory shared by the layers of one network (Caffe's shared column buffer).
//
// Layers run one after another, so a conv layer's im2col columns, a composite layer's
// intermediate gradients and the like can live in a few buffers that every layer of a network
// shares. Each layer asks for the sizes it needs in `reserve(maxBatch:)` (the buffers only
// grow); forward/backward fetch the pointers afresh, because a later reserve may have grown
// them. Not thread-safe: one workspace per network, one network per thread.

public final class Workspace {
    /// What a slot holds. A layer uses a slot only between its own entry and exit, except
    /// composite layers, which hold the `composite*` slots around calls into their sub-layers
    /// (which use only `columns`, `reordered`, `flippedKernel` and `kernelRows`).
    public enum Slot: Int, CaseIterable, Sendable {
        /// im2col columns of a convolution, (K, N·P), or its Winograd transformed input V or dV.
        case columns
        /// Convolution output or output gradient in GEMM order, (O, N·P), or Winograd's M or dM.
        case reordered
        /// A convolution's flipped kernel for its input gradient, (C, O·KH·KW).
        case flippedKernel
        /// A row-shifted convolution's kernel rows, or their gradient, (k, O, C·k); or a
        /// Winograd convolution's transformed kernel U, then its gradient dU, (16, O, C).
        case kernelRows
        /// Intermediate gradients of composite layers.
        case compositeA
        case compositeB
    }

    private var buffers: [FloatBuffer] = Slot.allCases.map { _ in FloatBuffer(count: 0) }

    public init() {}

    /// Make `slot` hold at least `count` floats (allocates only when it must grow).
    public func reserve(_ slot: Slot, count: Int) {
        if buffers[slot.rawValue].count < count { buffers[slot.rawValue] = FloatBuffer(count: count) }
    }

    @inline(__always)
    public func pointer(_ slot: Slot) -> UnsafeMutablePointer<Float> { buffers[slot.rawValue].pointer }

    public func capacity(_ slot: Slot) -> Int { buffers[slot.rawValue].count }

    /// Floats held by all slots (for memory reports).
    public var totalCount: Int { buffers.reduce(0) { $0 + $1.count } }
}

/// Layers that can report their forward multiply-accumulates per image (MODELS.md counts
/// conv and linear layers only; everything else counts 0).
public protocol CountsMACs {
    var forwardMACs: Int { get }
    /// The multiply-accumulates the layer's GEMMs actually perform per image (fewer than
    /// `forwardMACs` for a Winograd convolution).
    var executedMACs: Int { get }
}

extension CountsMACs {
    public var executedMACs: Int { forwardMACs }
}

/// Layers built from other layers (a DenseNet layer, a transition); model statistics recurse
/// into `sublayers`.
public protocol CompositeLayer: Layer {
    var sublayers: [Layer] { get }
}
