import Engine
import Foundation

// Config → preprocessed train/test sets. Global contrast normalisation is applied to every
// real data set (the paper's preprocessing); synthetic data is already zero-mean.

public enum DatasetLoader {
    public static let fashionMNISTHint =
        "Fashion-MNIST comes with the Debian package dataset-fashion-mnist "
        + "(sudo apt-get install dataset-fashion-mnist, files in /usr/share/datasets/fashion-mnist), "
        + "or set data_path to a folder holding train-images-idx3-ubyte.gz and its three siblings."

    public static func load(_ config: DataSpec) throws -> DatasetPair {
        switch config.dataset {
        case .synthetic:
            return SyntheticData.make(
                shape: Shape(config.syntheticShape), classes: config.syntheticClasses,
                trainSamples: config.syntheticTrainSamples, testSamples: config.syntheticTestSamples,
                noise: Float(config.syntheticNoise), seed: config.seed)
        case .fashionMNIST:
            let directory = config.dataPath
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw DataError.missing(path: directory, hint: fashionMNISTHint)
            }
            let train = try IDXReader.loadSplit(directory: directory, prefix: "train", name: "fashion-mnist-train", classes: 10, hint: fashionMNISTHint)
            let test = try IDXReader.loadSplit(directory: directory, prefix: "t10k", name: "fashion-mnist-test", classes: 10, hint: fashionMNISTHint)
            GlobalContrastNormalization.apply(to: train)
            GlobalContrastNormalization.apply(to: test)
            return try DatasetPair(train: train, test: test)
        case .cifar10, .cifar100, .stl10:
            return try ImageDatasets.load(config)
        }
    }
}
