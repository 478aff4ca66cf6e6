// Size and cost of a network, computed from its layer list (MODELS.md conventions):
// FLOPs = 2 × multiply-accumulates of the conv and linear layers only; BN, ReLU, pooling,
// concatenation and the loss are not counted.

public struct ModelInfo: Sendable, Equatable, CustomStringConvertible {
    /// Trainable parameters (the parameter arena's length).
    public var parameterCount: Int
    /// Non-trainable state (BN running statistics).
    public var stateCount: Int
    public var batchNormLayers: Int
    /// γ and β of all BN layers.
    public var batchNormParameters: Int
    /// Forward multiply-accumulates per image (conv + linear).
    public var forwardMACs: Int
    /// Those the GEMMs perform (fewer with Winograd convolutions).
    public var executedMACs: Int

    public var forwardFLOPs: Int { 2 * forwardMACs }

    public init(_ network: Network) {
        parameterCount = network.parameterCount
        stateCount = network.state.count
        batchNormLayers = 0
        batchNormParameters = 0
        forwardMACs = 0
        executedMACs = 0
        for layer in network.layers { visit(layer) }
    }

    /// A composite that counts its own MACs (e.g. a transition that reorders its work) is
    /// taken at its word; its sublayers still count BN layers.
    private mutating func visit(_ layer: Layer, countingMACs: Bool = true) {
        let counted = layer as? CountsMACs
        if countingMACs, let counted {
            forwardMACs += counted.forwardMACs
            executedMACs += counted.executedMACs
        }
        if let composite = layer as? CompositeLayer {
            for sublayer in composite.sublayers { visit(sublayer, countingMACs: countingMACs && counted == nil) }
            return
        }
        if let norm = layer as? BatchNorm2d {
            batchNormLayers += 1
            batchNormParameters += 2 * norm.channels
        }
    }

    public var description: String {
        let mmacs = Double(forwardMACs) / 1e6
        return "\(parameterCount) parameters, \(batchNormLayers) BN layers (\(batchNormParameters) γ,β), "
            + "\(formatted(mmacs)) MMACs = \(formatted(2 * mmacs)) MFLOPs forward per image"
    }

    private func formatted(_ value: Double) -> String {
        let thousandths = Int((value * 1000).rounded())
        let fraction = String(thousandths % 1000)
        return "\(thousandths / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}

extension Linear: CountsMACs {
    public var forwardMACs: Int { inFeatures * outFeatures }
}
