import Data
import Engine

// Config → network for a data set's input shape and classes.

public enum ModelFactory {
    /// `sharingWith`: build a lane's replica that reads that network's parameters and state.
    public static func make(
        _ config: TrainingConfig, inputShape: Shape, classes: Int, sharingWith replicated: Network? = nil
    ) throws -> Network {
        let network = Network(
            layers: try layers(config, inputShape: inputShape, classes: classes), classes: classes, sharingWith: replicated)
        network.setBatchNormMomentum(Float(config.bnMomentum))
        return network
    }

    /// Whether any convolution of the config's model computes by Winograd (for its data set's
    /// input shape).
    public static func hasWinogradLayers(_ config: TrainingConfig) -> Bool {
        guard config.model != .mlp, config.convAlgorithm == .winograd else { return false }
        let (shape, classes) = DatasetLoader.inputShapeAndClasses(config)
        func winograd(_ layer: Layer) -> Bool {
            if let conv = layer as? Conv2d { return conv.usesWinograd }
            return (layer as? CompositeLayer)?.sublayers.contains(where: winograd) ?? false
        }
        return ((try? layers(config, inputShape: shape, classes: classes)) ?? []).contains(where: winograd)
    }

    /// The config's layers, before any arena is allocated (see MemoryEstimate).
    public static func layers(_ config: TrainingConfig, inputShape: Shape, classes: Int) throws -> [Layer] {
        if config.model != .mlp {
            guard inputShape.rank == 3 else {
                throw ConfigError(key: "model", "\(config.model.rawValue) needs image input (channels × height × width), the data set gives \(inputShape)")
            }
        }
        let winograd = config.convAlgorithm == .winograd
        switch config.model {
        case .mlp:
            return MLP.layers(inputShape: inputShape, hidden: config.hidden, classes: classes)
        case .vgg16:
            guard inputShape[1] >= 32, inputShape[2] >= 32 else {
                throw ConfigError(key: "model", "vgg16 pools five times and needs images of at least 32×32, the data set gives \(inputShape)")
            }
            return VGG.vgg16BNLayers(classes: classes, ghostBatch: config.ghostBatch, inputShape: inputShape,
                               widthDivisor: config.widthDivisor, dropout: Float(config.dropout), winograd: winograd)
        case .nin:
            guard inputShape[1] >= 8, inputShape[2] >= 8 else {
                throw ConfigError(key: "model", "nin needs images of at least 8×8, the data set gives \(inputShape)")
            }
            return NIN.layers(classes: classes, inputShape: inputShape, dropout: Float(config.dropout), winograd: winograd)
        case .densenet:
            guard inputShape[1] >= 4, inputShape[2] >= 4 else {
                throw ConfigError(key: "model", "densenet pools twice and needs images of at least 4×4, the data set gives \(inputShape)")
            }
            return DenseNet.layers(depth: config.depth, growth: config.growth, inputShape: inputShape, classes: classes,
                                 ghostBatch: config.ghostBatch, winograd: winograd)
        }
    }
}
