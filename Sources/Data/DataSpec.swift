import Engine

// What the data layer needs to know to load a data set: which one, where, and for synthetic
// data its size and seed. The training config derives it (`TrainingConfig.dataSpec`); the
// data layer never sees the rest of a config.

public enum DatasetKind: String, Sendable, CaseIterable {
    case fashionMNIST = "fashion-mnist"
    case synthetic, cifar10, cifar100, stl10
}

public enum Augmentation: String, Sendable, CaseIterable {
    case none
    case cropFlip = "crop_flip"
}

public struct DataSpec: Sendable, Equatable {
    public var dataset = DatasetKind.fashionMNIST
    public var dataPath = "/usr/share/datasets/fashion-mnist"
    public var syntheticTrainSamples = 4096
    public var syntheticTestSamples = 1024
    public var syntheticClasses = 10
    public var syntheticShape = [1, 28, 28]
    public var syntheticNoise: Double = 1.0
    /// Seeds the synthetic data (real data sets ignore it).
    public var seed: UInt64 = 1

    public init() {}

    public init(dataset: DatasetKind, dataPath: String) {
        self.dataset = dataset
        self.dataPath = dataPath
    }
}
