import Engine

// Config → network for a data set's input shape and classes.

public enum ModelFactory {
    public static func make(_ config: TrainingConfig, inputShape: Shape, classes: Int) throws -> Network {
        let network = try architecture(config, inputShape: inputShape, classes: classes)
        network.setBatchNormMomentum(Float(config.bnMomentum))
        return network
    }

    private static func architecture(_ config: TrainingConfig, inputShape: Shape, classes: Int) throws -> Network {
        if config.model != .mlp {
            guard inputShape.rank == 3 else {
                throw ConfigError(key: "model", "\(config.model.rawValue) needs image input (channels × height × width), the data set gives \(inputShape)")
            }
        }
        switch config.model {
        case .mlp:
            return MLP.make(inputShape: inputShape, hidden: config.hidden, classes: classes)
        case .vgg16:
            guard inputShape[1] >= 32, inputShape[2] >= 32 else {
                throw ConfigError(key: "model", "vgg16 pools five times and needs images of at least 32×32, the data set gives \(inputShape)")
            }
            return VGG.vgg16BN(classes: classes, ghostBatch: config.ghostBatch, inputShape: inputShape,
                               widthDivisor: config.widthDivisor, dropout: Float(config.dropout))
        case .nin:
            guard inputShape[1] >= 8, inputShape[2] >= 8 else {
                throw ConfigError(key: "model", "nin needs images of at least 8×8, the data set gives \(inputShape)")
            }
            return NIN.make(classes: classes, inputShape: inputShape, dropout: Float(config.dropout))
        case .densenet:
            guard inputShape[1] >= 4, inputShape[2] >= 4 else {
                throw ConfigError(key: "model", "densenet pools twice and needs images of at least 4×4, the data set gives \(inputShape)")
            }
            return DenseNet.make(depth: config.depth, growth: config.growth, inputShape: inputShape, classes: classes,
                                 ghostBatch: config.ghostBatch)
        }
    }
}
