import Engine

// An in-memory labelled data set: images (N, C, H, W) as float32 after preprocessing, labels
// as Int32 in 0..<classes. Every worker holds the whole data set; only indices travel.

public final class Dataset: @unchecked Sendable {
    public let name: String
    public let shape: Shape
    public let classes: Int
    public let images: FloatBuffer  // (N, shape.count)
    public let labels: [Int32]  // (N)
    /// A second, coarser labelling kept alongside the training labels (CIFAR-100's 20
    /// superclasses), in 0..<coarseClasses; nil for data sets that have none.
    public let coarseLabels: [Int32]?  // (N)
    public let coarseClasses: Int

    public init(
        name: String, shape: Shape, classes: Int, images: FloatBuffer, labels: [Int32],
        coarseLabels: [Int32]? = nil, coarseClasses: Int = 0
    ) {
        precondition(images.count == labels.count * shape.count, "\(name): \(images.count) floats for \(labels.count) samples of \(shape)")
        precondition(
            coarseLabels.map { $0.count == labels.count && coarseClasses > 0 } ?? true,
            "\(name): \(coarseLabels?.count ?? 0) coarse labels in \(coarseClasses) classes for \(labels.count) samples")
        self.name = name
        self.shape = shape
        self.classes = classes
        self.images = images
        self.labels = labels
        self.coarseLabels = coarseLabels
        self.coarseClasses = coarseLabels == nil ? 0 : coarseClasses
    }

    public var count: Int { labels.count }
    public var sampleSize: Int { shape.count }

    public func sample(_ index: Int) -> UnsafeMutablePointer<Float> { images.pointer + index * sampleSize }

    /// Samples per class, for `ssgd data inspect`.
    public var classHistogram: [Int] {
        var histogram = [Int](repeating: 0, count: classes)
        for label in labels { histogram[Int(label)] += 1 }
        return histogram
    }

    /// Samples per coarse class; nil when the data set has no coarse labels.
    public var coarseHistogram: [Int]? {
        guard let coarseLabels else { return nil }
        var histogram = [Int](repeating: 0, count: coarseClasses)
        for label in coarseLabels { histogram[Int(label)] += 1 }
        return histogram
    }
}

/// A training set and a test set of the same shape and classes.
public struct DatasetPair: Sendable {
    public let train: Dataset
    public let test: Dataset

    public init(train: Dataset, test: Dataset) throws {
        guard train.shape == test.shape, train.classes == test.classes else {
            throw DataError.inconsistent(
                "train set is \(train.shape) with \(train.classes) classes but test set is \(test.shape) with \(test.classes)")
        }
        self.init(checked: train, test: test)
    }

    /// For callers that built both splits with the same shape and classes.
    init(checked train: Dataset, test: Dataset) {
        self.train = train
        self.test = test
    }

    public var shape: Shape { train.shape }
    public var classes: Int { train.classes }

    /// SHA-256 (hex) over both splits' sizes, shapes, all labels and every 61st image value:
    /// different data sets or different preprocessing give different fingerprints, and it is
    /// cheap enough to compute at every start.
    public var fingerprint: String {
        var hasher = SHA256()
        for split in [train, test] {
            hasher.update(string: "\(split.name)|\(split.shape)|\(split.classes)|\(split.count)|")
            hasher.update(array: split.labels)
            var sampled = [Float]()
            sampled.reserveCapacity(split.images.count / 61 + 1)
            for i in stride(from: 0, to: split.images.count, by: 61) { sampled.append(split.images[i]) }
            hasher.update(array: sampled)
        }
        return SHA256.hex(hasher.finalize())
    }
}

public enum Split: UInt8, Sendable, CustomStringConvertible {
    case train = 0
    case test = 1
    public var description: String { self == .train ? "train" : "test" }
}

extension DatasetPair {
    public func dataset(_ split: Split) -> Dataset { split == .train ? train : test }
}
