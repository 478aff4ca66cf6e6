import Engine

// Config → network for a data set's input shape and classes.

public enum ModelFactory {
    public static func make(_ config: TrainingConfig, inputShape: Shape, classes: Int) throws -> Network {
        switch config.model {
        case .mlp:
            return MLP.make(inputShape: inputShape, hidden: config.hidden, classes: classes)
        case .vgg16, .nin, .densenet:
            throw ConfigError(key: "model", "model '\(config.model.rawValue)' is not available in this build yet")
        }
    }
}
