import Data
import Engine

// Loading data straight from a training config: the config's `dataSpec` is all the data layer reads.
extension DatasetLoader {
    public static func load(_ config: TrainingConfig) throws -> DatasetPair {
        try load(config.dataSpec)
    }

    public static func inputShapeAndClasses(_ config: TrainingConfig) -> (shape: Shape, classes: Int) {
        inputShapeAndClasses(config.dataSpec)
    }
}
