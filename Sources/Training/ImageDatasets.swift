// CIFAR-10, CIFAR-100 and STL-10 in their standard binary formats.

enum ImageDatasets {
    static func load(_ config: TrainingConfig) throws -> DatasetPair {
        throw DataError.inconsistent("data set '\(config.dataset.rawValue)' is not supported by this build yet")
    }
}
