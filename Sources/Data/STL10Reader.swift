import Engine
import Foundation

// STL-10, binary version (Coates, Lee & Ng 2011, "An Analysis of Single-Layer Networks in
// Unsupervised Feature Learning"; https://cs.stanford.edu/~acoates/stl10/), folder stl10_binary/:
//   train_X.bin, test_X.bin: N images of 3×96×96 bytes (27648), no header; each channel's
//     96×96 plane is stored column-major (the row index varies fastest), so byte
//     c·9216 + x·96 + y is pixel (channel c, row y, column x).
//   train_y.bin, test_y.bin: N label bytes, classes numbered 1–10 (→ 0–9 here).
// The unlabeled split (unlabeled_X.bin) is not used. Pixels come back scaled to [0, 1] in
// row-major (C, H, W); DatasetLoader applies contrast normalisation.

public enum STL10Reader {
    public static let side = 96
    public static let shape = Shape(3, 96, 96)  // (C, H, W)
    public static let imageBytes = 3 * 96 * 96
    public static let classes = 10
    public static let files = ["train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin"]

    static let imageLayout =
        "images of 27648 bytes (3 channels of 96×96, each channel stored column-major), no header"

    static func hint(_ directory: String) -> String {
        "Expected \(files.joined(separator: ", ")) in \(directory) (the folder stl10_binary of the STL-10 binary version). "
            + "Download the STL-10 binary version (stl10_binary.tar.gz, https://cs.stanford.edu/~acoates/stl10/), "
            + "unpack it and set data_path to its stl10_binary folder."
            + ImageDatasets.subfolderHint(directory, "stl10_binary")
    }

    /// STL-10 from an stl10_binary folder: train_X/train_y (5000) and test_X/test_y (8000).
    public static func load(directory: String) throws -> (train: Dataset, test: Dataset) {
        let hint = hint(directory)
        let paths = try ImageDatasets.requireFiles(files, in: directory, hint: hint)
        let train = try loadSplit(imagePath: paths[0], labelPath: paths[1], name: "stl10-train", hint: hint)
        let test = try loadSplit(imagePath: paths[2], labelPath: paths[3], name: "stl10-test", hint: hint)
        return (train, test)
    }

    static func loadSplit(imagePath: String, labelPath: String, name: String, hint: String) throws -> Dataset {
        let pixels = try CompressedFile.read(path: imagePath, hint: hint)
        guard !pixels.isEmpty, pixels.count % imageBytes == 0 else {
            throw DataError.partialRecord(path: imagePath, size: pixels.count, recordSize: imageBytes, layout: imageLayout)
        }
        let count = pixels.count / imageBytes
        let stored = try CompressedFile.read(path: labelPath, hint: hint)
        guard stored.count == count else {
            throw DataError.countMismatch(images: imagePath, imageCount: count, labels: labelPath, labelCount: stored.count)
        }
        var labels = [Int32](repeating: 0, count: count)  // (N)
        for (index, label) in stored.enumerated() {
            guard label >= 1 && Int(label) <= classes else {
                throw DataError.invalidLabel(
                    path: labelPath, index: index, label: Int(label),
                    expected: "1...\(classes) (STL-10 numbers its classes 1–10, one byte per image)")
            }
            labels[index] = Int32(label) - 1
        }
        let images = FloatBuffer(count: count * imageBytes)  // (N, 3, 96, 96)
        let plane = side * side
        pixels.withUnsafeBufferPointer { source in
            for p in 0..<(count * 3) {  // one (image, channel) plane at a time
                let input = source.baseAddress! + p * plane  // column-major (W, H)
                let out = images.pointer + p * plane  // row-major (H, W)
                for x in 0..<side {
                    let column = input + x * side
                    for y in 0..<side { out[y * side + x] = Float(column[y]) / 255 }
                }
            }
        }
        return Dataset(name: name, shape: shape, classes: classes, images: images, labels: labels)
    }
}
