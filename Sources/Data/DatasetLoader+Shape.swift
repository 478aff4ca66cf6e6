import Engine

extension DatasetLoader {
    /// The per-sample input shape and class count `load(config)` would produce, without reading
    /// any data: enough to build the model (e.g. to export a checkpoint on a machine without
    /// the data set). Fashion-MNIST is taken as the standard 28×28.
    public static func inputShapeAndClasses(_ config: DataSpec) -> (shape: Shape, classes: Int) {
        switch config.dataset {
        case .synthetic: return (Shape(config.syntheticShape), config.syntheticClasses)
        case .fashionMNIST: return (Shape(1, 28, 28), 10)
        case .cifar10: return (CIFARReader.shape, CIFARReader.cifar10Classes)
        case .cifar100: return (CIFARReader.shape, CIFARReader.cifar100Classes)
        case .stl10: return (STL10Reader.shape, STL10Reader.classes)
        }
    }
}

extension DatasetLoader {
    /// Train + test samples `load(spec)` reads: exact for synthetic data, the published sizes
    /// of the real data sets (for sizing memory before loading).
    public static func expectedSampleCount(_ spec: DataSpec) -> Double {
        switch spec.dataset {
        case .synthetic: Double(spec.syntheticTrainSamples) + Double(spec.syntheticTestSamples)
        case .fashionMNIST: 70_000
        case .cifar10, .cifar100: 60_000
        case .stl10: 13_000
        }
    }

    /// Training samples `load(spec)` reads (exact for synthetic data, the published sizes of
    /// the real data sets): enough to count a run's steps before it starts.
    public static func expectedTrainSampleCount(_ spec: DataSpec) -> Int {
        switch spec.dataset {
        case .synthetic: spec.syntheticTrainSamples
        case .fashionMNIST: 60_000
        case .cifar10, .cifar100: 50_000
        case .stl10: 5_000
        }
    }
}
