import Engine
import Foundation

// CIFAR-10 and CIFAR-100, binary versions (Krizhevsky 2009, "Learning Multiple Layers of
// Features from Tiny Images"; https://www.cs.toronto.edu/~kriz/cifar.html). Every file is a run
// of fixed-size records, no header:
//   CIFAR-10  (cifar-10-batches-bin/): [label 0–9] + image                       3073 bytes
//   CIFAR-100 (cifar-100-binary/):     [coarse label 0–19][fine label 0–99] + image  3074 bytes
// image = 3072 bytes: 1024 red, 1024 green, 1024 blue, each 32×32 row-major, which is already
// the (C, H, W) order of a Dataset sample. CIFAR-100 trains on the fine labels and keeps the
// coarse ones in `Dataset.coarseLabels`.
//
// These readers return pixels scaled to [0, 1]; DatasetLoader applies contrast normalisation.

public enum CIFARReader {
    public static let shape = Shape(3, 32, 32)  // (C, H, W)
    public static let imageBytes = 3 * 32 * 32

    public static let cifar10TrainFiles = (1...5).map { "data_batch_\($0).bin" }
    public static let cifar10TestFile = "test_batch.bin"
    public static let cifar10Classes = 10
    public static let cifar100TrainFile = "train.bin"
    public static let cifar100TestFile = "test.bin"
    public static let cifar100Classes = 100
    public static let cifar100CoarseClasses = 20

    static let cifar10Layout = "records of 3073 bytes: 1 label byte (0–9) + 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each 32×32 row-major)"
    static let cifar100Layout =
        "records of 3074 bytes: 1 coarse label byte (0–19) + 1 fine label byte (0–99) + 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each 32×32 row-major)"

    static func cifar10Hint(_ directory: String) -> String {
        "Expected \(cifar10TrainFiles.joined(separator: ", ")) and \(cifar10TestFile) in \(directory) "
            + "(the folder cifar-10-batches-bin of the CIFAR-10 binary version). Download the CIFAR-10 binary version "
            + "(cifar-10-binary.tar.gz, https://www.cs.toronto.edu/~kriz/cifar.html), unpack it and set data_path to its cifar-10-batches-bin folder."
            + ImageDatasets.subfolderHint(directory, "cifar-10-batches-bin")
    }

    static func cifar100Hint(_ directory: String) -> String {
        "Expected \(cifar100TrainFile) and \(cifar100TestFile) in \(directory) "
            + "(the folder cifar-100-binary of the CIFAR-100 binary version). Download the CIFAR-100 binary version "
            + "(cifar-100-binary.tar.gz, https://www.cs.toronto.edu/~kriz/cifar.html), unpack it and set data_path to its cifar-100-binary folder."
            + ImageDatasets.subfolderHint(directory, "cifar-100-binary")
    }

    /// CIFAR-10 from a cifar-10-batches-bin folder: train = data_batch_1…5.bin, test = test_batch.bin.
    public static func loadCIFAR10(directory: String) throws -> (train: Dataset, test: Dataset) {
        let hint = cifar10Hint(directory)
        let trainPaths = try ImageDatasets.requireFiles(cifar10TrainFiles, in: directory, hint: hint)
        let testPaths = try ImageDatasets.requireFiles([cifar10TestFile], in: directory, hint: hint)
        let train = try loadSplit(paths: trainPaths, name: "cifar10-train", coarse: false, hint: hint)
        let test = try loadSplit(paths: testPaths, name: "cifar10-test", coarse: false, hint: hint)
        return (train, test)
    }

    /// CIFAR-100 from a cifar-100-binary folder: train.bin and test.bin; fine labels for
    /// training, coarse labels kept alongside.
    public static func loadCIFAR100(directory: String) throws -> (train: Dataset, test: Dataset) {
        let hint = cifar100Hint(directory)
        let paths = try ImageDatasets.requireFiles([cifar100TrainFile, cifar100TestFile], in: directory, hint: hint)
        let train = try loadSplit(paths: [paths[0]], name: "cifar100-train", coarse: true, hint: hint)
        let test = try loadSplit(paths: [paths[1]], name: "cifar100-test", coarse: true, hint: hint)
        return (train, test)
    }

    /// Concatenates the records of `paths` (in order) into one Dataset.
    static func loadSplit(paths: [String], name: String, coarse: Bool, hint: String) throws -> Dataset {
        let labelBytes = coarse ? 2 : 1
        let recordSize = labelBytes + imageBytes
        let layout = coarse ? cifar100Layout : cifar10Layout
        var files = [(path: String, bytes: [UInt8])]()
        for path in paths {
            let bytes = try CompressedFile.read(path: path, hint: hint)
            guard !bytes.isEmpty, bytes.count % recordSize == 0 else {
                throw DataError.partialRecord(path: path, size: bytes.count, recordSize: recordSize, layout: layout)
            }
            files.append((path, bytes))
        }
        // The published batches hold 10,000 records each. A file of a tiny fraction of its
        // siblings' records passes the record-size check but is almost surely cut short (a
        // record-aligned truncation): refuse it rather than train on a different data set.
        let largest = files.map { $0.bytes.count / recordSize }.max() ?? 0
        for file in files where (file.bytes.count / recordSize) * 100 < largest {
            throw DataError.inconsistent(
                "\(file.path) holds \(file.bytes.count / recordSize) record(s) while a sibling batch holds \(largest): "
                + "it looks truncated; restore it from the archive (\(hint))")
        }
        let count = files.reduce(0) { $0 + $1.bytes.count / recordSize }
        let images = FloatBuffer(count: count * imageBytes)  // (N, 3, 32, 32)
        var labels = [Int32](repeating: 0, count: count)  // (N)
        var coarseLabels = [Int32](repeating: 0, count: coarse ? count : 0)  // (N) or empty
        var n = 0
        for (path, bytes) in files {
            try bytes.withUnsafeBufferPointer { source in
                for record in 0..<(bytes.count / recordSize) {
                    let base = record * recordSize
                    if coarse {
                        let superclass = Int(source[base])
                        guard superclass < cifar100CoarseClasses else {
                            throw DataError.invalidLabel(
                                path: path, index: record, label: superclass,
                                expected: "0..<\(cifar100CoarseClasses) (the coarse label, first byte of each \(recordSize)-byte record)")
                        }
                        coarseLabels[n] = Int32(superclass)
                    }
                    let classes = coarse ? cifar100Classes : cifar10Classes
                    let label = Int(source[base + labelBytes - 1])
                    guard label < classes else {
                        throw DataError.labelOutOfRange(path: path, index: record, label: label, classes: classes)
                    }
                    labels[n] = Int32(label)
                    let out = images.pointer + n * imageBytes
                    for i in 0..<imageBytes { out[i] = Float(source[base + labelBytes + i]) / 255 }
                    n += 1
                }
            }
        }
        if coarse {
            return Dataset(
                name: name, shape: shape, classes: cifar100Classes, images: images, labels: labels,
                coarseLabels: coarseLabels, coarseClasses: cifar100CoarseClasses)
        }
        return Dataset(name: name, shape: shape, classes: cifar10Classes, images: images, labels: labels)
    }
}
