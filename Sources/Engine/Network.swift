// A feed-forward network: a chain of layers over three contiguous arenas, ending in logits.
// Composite layers (e.g. a DenseNet layer with its concatenation) appear as one link.

public final class Network {
    public let layers: [Layer]
    public let inputShape: Shape
    public let classes: Int
    public let parameterTable: [ParameterEntry]
    public let stateTable: [StateEntry]
    /// Trainable parameters (one contiguous arena), their gradients (same layout) and
    /// non-trainable state (BN running statistics).
    public let parameters: FloatBuffer
    public let gradients: FloatBuffer
    public let state: FloatBuffer
    /// Batch statistics written by training-mode BN forwards: means then variances.
    public let batchStatistics: FloatBuffer
    public let normalizationChannels: Int
    /// The layers that own running statistics, in batch-statistics order.
    public let batchNormLayers: [BatchNorm2d]
    public let loss: SoftmaxCrossEntropy

    public private(set) var maxBatch = 0
    /// The largest transformed kernel set (16·O·C floats) of this network's Winograd layers, 0
    /// without any: what each SharedKernelSlots slot must hold for chunks of its units.
    public let winogradKernelCapacity: Int
    // Ping-pong buffers for gradients flowing between layers, each maxBatch × largest activation.
    private var gradientA = FloatBuffer(count: 0)
    private var gradientB = FloatBuffer(count: 0)

    /// Numbers the Winograd layers in forward order (Conv2d.winogradOrdinal) and returns the
    /// largest transformed kernel set among them.
    private static func numberWinogradLayers(_ layers: [Layer]) -> Int {
        var ordinal = 0
        var capacity = 0
        func visit(_ layer: Layer) {
            if let composite = layer as? CompositeLayer {
                for sublayer in composite.sublayers { visit(sublayer) }
            } else if let conv = layer as? Conv2d, conv.usesWinograd {
                conv.winogradOrdinal = ordinal
                ordinal += 1
                capacity = max(capacity, conv.winogradKernelCount)
            }
        }
        for layer in layers { visit(layer) }
        return capacity
    }

    /// `sharingWith`: a replica for another lane — it reads (never writes) `replicated`'s
    /// parameters and state arenas, and has its own gradients, batch statistics, activations
    /// and workspaces. The layer lists must describe the same model.
    public init(layers: [Layer], classes: Int, sharingWith replicated: Network? = nil) {
        precondition(!layers.isEmpty, "a network needs at least one layer")
        for (previous, next) in zip(layers, layers.dropFirst()) {
            precondition(
                previous.outputShape.count == next.inputShape.count,
                "layer output \(previous.outputShape) does not feed input \(next.inputShape)")
        }
        precondition(
            layers[layers.count - 1].outputShape.count == classes,
            "last layer gives \(layers[layers.count - 1].outputShape), expected \(classes) logits")
        self.layers = layers
        winogradKernelCapacity = Self.numberWinogradLayers(layers)
        self.inputShape = layers[0].inputShape
        self.classes = classes
        let layout = ParameterLayout()
        for layer in layers { layer.declare(into: layout) }
        parameterTable = layout.parameters
        stateTable = layout.state
        if let replicated {
            precondition(
                replicated.parameterTable == layout.parameters && replicated.stateTable == layout.state,
                "a replica must have the layout of the network it shares arenas with")
        }
        parameters = replicated?.parameters ?? FloatBuffer(count: layout.parameterCount)
        gradients = FloatBuffer(count: layout.parameterCount)
        state = replicated?.state ?? FloatBuffer(count: layout.stateCount)
        normalizationChannels = layout.normalizationChannels
        batchNormLayers = layout.batchNormLayers
        batchStatistics = FloatBuffer(count: 2 * layout.normalizationChannels)
        loss = SoftmaxCrossEntropy(classes: classes)
        let arenas = Arenas(
            parameters: parameters.pointer, gradients: gradients.pointer, state: state.pointer,
            batchStatistics: batchStatistics.pointer,
            normalizationChannels: layout.normalizationChannels)
        for layer in layers { layer.bind(arenas) }
        if replicated == nil { resetState() }
    }

    public var parameterCount: Int { parameters.count }

    /// Every BN layer's weight of a step's batch statistics in its running statistics.
    public func setBatchNormMomentum(_ momentum: Float) {
        for layer in batchNormLayers { layer.momentum = momentum }
    }

    /// Each BN layer folds its channels of a step's batch statistics (2·normalizationChannels
    /// values, laid out as `batchStatistics`) into its running statistics.
    public func foldBatchStatistics(_ statistics: [Float]) {
        precondition(
            statistics.count == 2 * normalizationChannels,
            "step batch statistics hold \(statistics.count) values, the network's BN layers need \(2 * normalizationChannels)")
        statistics.withUnsafeBufferPointer { values in
            guard let base = values.baseAddress else { return }
            for layer in batchNormLayers { layer.foldBatchStatistics(base, totalChannels: normalizationChannels) }
        }
    }

    /// The regularised weight matrices (conv kernels as out × in·kh·kw), in arena order.
    public var weightMatrices: [WeightMatrix] {
        parameterTable.compactMap { entry in
            if case .weight(let rows, let cols) = entry.role {
                return WeightMatrix(name: entry.name, offset: entry.offset, rows: rows, cols: cols)
            }
            return nil
        }
    }

    /// Allocate every activation and workspace for batches up to `maxBatch` (once).
    public func reserve(maxBatch: Int) {
        guard maxBatch > self.maxBatch else { return }
        self.maxBatch = maxBatch
        for layer in layers { layer.reserve(maxBatch: maxBatch) }
        loss.reserve(maxBatch: maxBatch)
        let largest = layers.map { max($0.inputShape.count, $0.outputShape.count) }.max() ?? 0
        gradientA = FloatBuffer(count: maxBatch * largest)
        gradientB = FloatBuffer(count: maxBatch * largest)
    }

    /// Parameters drawn from `seed`: entry i uses the generator (seed, i), so adding a layer at
    /// the end does not change the others. Weight matrices and their biases follow `scheme`
    /// (InitScheme); constants (BN γ = 1, β = 0) are the same under every scheme.
    public func initializeParameters(seed: UInt64, scheme: InitScheme = .kaimingNormal) {
        for (index, entry) in parameterTable.enumerated() {
            var generator = SplitMix64(keys: seed, UInt64(index))
            let values = parameters.pointer + entry.offset
            func gaussian(variance: Float) {
                let std = variance.squareRoot()
                for i in 0..<entry.count { values[i] = generator.nextGaussian() * std }
            }
            func uniform(bound: Float) {
                for i in 0..<entry.count { values[i] = (2 * generator.nextUnitFloat() - 1) * bound }
            }
            switch (entry.initializer, scheme) {
            case (.kaimingNormal(let fanIn), .kaimingNormal): gaussian(variance: 2 / Float(fanIn))
            case (.kaimingNormal(let fanIn), .lecunNormal): gaussian(variance: 1 / Float(fanIn))
            case (.kaimingNormal(let fanIn), .pytorch): uniform(bound: 1 / Float(fanIn).squareRoot())
            case (.uniformFanIn, .lecunNormal): values.update(repeating: 0, count: entry.count)
            case (.uniformFanIn(let fanIn), _): uniform(bound: 1 / Float(fanIn).squareRoot())
            case (.constant(let value), _): values.update(repeating: value, count: entry.count)
            }
        }
    }

    /// Running statistics back to their initial values (mean 0, variance 1).
    public func resetState() {
        for entry in stateTable {
            (state.pointer + entry.offset).update(repeating: entry.initialValue, count: entry.count)
        }
    }

    /// Logits (batch × classes) for `input` (batch × inputShape.count).
    public func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext)
        -> UnsafeMutablePointer<Float>
    {
        precondition(batch <= maxBatch, "batch \(batch) exceeds reserved \(maxBatch); call reserve(maxBatch:)")
        var x = input
        var y: UnsafeMutablePointer<Float>!
        for layer in layers {
            y = layer.forward(x, batch: batch, context: context)
            x = UnsafePointer(y)
        }
        return y
    }

    /// Back-propagate `logitGradient` (batch × classes), accumulating into `gradients`.
    /// Writes ∂/∂input into `inputGradient` when given.
    public func backward(
        logitGradient: UnsafeMutablePointer<Float>, batch: Int,
        inputGradient: UnsafeMutablePointer<Float>? = nil
    ) {
        var dy = logitGradient
        var useA = true
        for index in stride(from: layers.count - 1, through: 0, by: -1) {
            let dx: UnsafeMutablePointer<Float>?
            if index == 0 {
                dx = inputGradient
            } else {
                dx = useA ? gradientA.pointer : gradientB.pointer
                useA.toggle()
            }
            layers[index].backward(outputGradient: dy, inputGradient: dx, batch: batch)
            if let dx { dy = dx }
        }
    }
}

/// A regularised weight matrix inside the parameter arena.
public struct WeightMatrix: Sendable, Equatable {
    public var name: String
    public var offset: Int
    public var rows: Int
    public var cols: Int
    public var count: Int { rows * cols }

    public init(name: String, offset: Int, rows: Int, cols: Int) {
        self.name = name
        self.offset = offset
        self.rows = rows
        self.cols = cols
    }
}
