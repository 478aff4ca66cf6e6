import Engine
import Foundation

// The IDX format of MNIST and Fashion-MNIST (LeCun et al.): big-endian header
// [magic 0x00000803, count, rows, cols] + count·rows·cols unsigned bytes for images;
// [magic 0x00000801, count] + count bytes for labels. Files may be gzip-compressed.

public enum IDXReader {
    public static let imageMagic: UInt32 = 0x0000_0803
    public static let labelMagic: UInt32 = 0x0000_0801

    static func bigEndian32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    /// Images as raw bytes (N, rows, cols).
    public static func readImages(path: String, hint: String) throws -> (pixels: [UInt8], count: Int, rows: Int, cols: Int) {
        let bytes = try CompressedFile.read(path: path, hint: hint)
        guard bytes.count >= 16 else { throw DataError.truncated(path: path, expectedBytes: 16, foundBytes: bytes.count) }
        let magic = bigEndian32(bytes, 0)
        guard magic == imageMagic else { throw DataError.badMagic(path: path, expected: imageMagic, found: magic) }
        let count = Int(bigEndian32(bytes, 4)), rows = Int(bigEndian32(bytes, 8)), cols = Int(bigEndian32(bytes, 12))
        guard rows > 0, cols > 0, rows <= 4096, cols <= 4096, count > 0 else {
            throw DataError.badHeader(path: path, reason: "count \(count), rows \(rows), cols \(cols) are not a valid image set")
        }
        let expected = count * rows * cols
        guard bytes.count - 16 >= expected else {
            throw DataError.truncated(path: path, expectedBytes: expected, foundBytes: bytes.count - 16)
        }
        return (Array(bytes[16..<(16 + expected)]), count, rows, cols)
    }

    public static func readLabels(path: String, hint: String, classes: Int) throws -> [Int32] {
        let bytes = try CompressedFile.read(path: path, hint: hint)
        guard bytes.count >= 8 else { throw DataError.truncated(path: path, expectedBytes: 8, foundBytes: bytes.count) }
        let magic = bigEndian32(bytes, 0)
        guard magic == labelMagic else { throw DataError.badMagic(path: path, expected: labelMagic, found: magic) }
        let count = Int(bigEndian32(bytes, 4))
        guard bytes.count - 8 >= count else {
            throw DataError.truncated(path: path, expectedBytes: count, foundBytes: bytes.count - 8)
        }
        var labels = [Int32](repeating: 0, count: count)
        for i in 0..<count {
            let label = Int(bytes[8 + i])
            guard label < classes else { throw DataError.labelOutOfRange(path: path, index: i, label: label, classes: classes) }
            labels[i] = Int32(label)
        }
        return labels
    }

    /// One split of an MNIST-style directory: `prefix`-images-idx3-ubyte[.gz] and
    /// `prefix`-labels-idx1-ubyte[.gz], pixels scaled to [0, 1].
    public static func loadSplit(directory: String, prefix: String, name: String, classes: Int, hint: String) throws -> Dataset {
        func locate(_ stem: String) -> String {
            let plain = (directory as NSString).appendingPathComponent(stem)
            let zipped = plain + ".gz"
            return FileManager.default.fileExists(atPath: zipped) ? zipped : plain
        }
        let imagePath = locate("\(prefix)-images-idx3-ubyte")
        let labelPath = locate("\(prefix)-labels-idx1-ubyte")
        let (pixels, count, rows, cols) = try readImages(path: imagePath, hint: hint)
        let labels = try readLabels(path: labelPath, hint: hint, classes: classes)
        guard labels.count == count else {
            throw DataError.countMismatch(images: imagePath, imageCount: count, labels: labelPath, labelCount: labels.count)
        }
        let images = FloatBuffer(count: pixels.count)
        for i in 0..<pixels.count { images[i] = Float(pixels[i]) / 255 }
        return Dataset(name: name, shape: Shape(1, rows, cols), classes: classes, images: images, labels: labels)
    }
}
