// Errors about data files. Each names the file, the problem and, where it can, the fix.

public enum DataError: Error, CustomStringConvertible, Equatable {
    case missing(path: String, hint: String)
    case unreadable(path: String, reason: String)
    case badMagic(path: String, expected: UInt32, found: UInt32)
    case truncated(path: String, expectedBytes: Int, foundBytes: Int)
    case badHeader(path: String, reason: String)
    case countMismatch(images: String, imageCount: Int, labels: String, labelCount: Int)
    case labelOutOfRange(path: String, index: Int, label: Int, classes: Int)
    /// A label outside a range that does not start at 0 (STL-10 stores 1...10) or that is not
    /// the training label (CIFAR-100's coarse label); `expected` says which values are valid.
    case invalidLabel(path: String, index: Int, label: Int, expected: String)
    /// A file of fixed-size records whose size is not a positive whole number of records.
    case partialRecord(path: String, size: Int, recordSize: Int, layout: String)
    /// A folder whose data set format could not be recognised (`ssgd data inspect`).
    case unrecognizedFolder(path: String, reason: String)
    case inconsistent(String)
    case tooSmall(String)

    public var description: String {
        switch self {
        case .missing(let path, let hint):
            return "data file not found: \(path). \(hint)"
        case .unreadable(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .badMagic(let path, let expected, let found):
            return "\(path): wrong magic number 0x\(String(found, radix: 16)) (expected 0x\(String(expected, radix: 16))); "
                + "this is not the expected IDX file, or it is corrupt"
        case .truncated(let path, let expected, let found):
            return "\(path): truncated or corrupt: expected \(expected) bytes of data, read \(found). Re-download or reinstall the data set"
        case .badHeader(let path, let reason):
            return "\(path): bad header: \(reason)"
        case .countMismatch(let images, let imageCount, let labels, let labelCount):
            return "\(images) has \(imageCount) images but \(labels) has \(labelCount) labels"
        case .labelOutOfRange(let path, let index, let label, let classes):
            return "\(path): label \(label) of sample \(index) is outside 0..<\(classes)"
        case .invalidLabel(let path, let index, let label, let expected):
            return "\(path): label \(label) of sample \(index) is outside \(expected)"
        case .partialRecord(let path, let size, let recordSize, let layout):
            let problem =
                size == 0
                ? "is empty"
                : "has \(size) bytes, not a whole number of \(recordSize)-byte records "
                    + "(\(size / recordSize) records and \(size % recordSize) bytes left over)"
            return "\(path) \(problem); expected \(layout). The file is truncated or not in this format: re-download it"
        case .unrecognizedFolder(let path, let reason):
            return "cannot tell which data set is in \(path): \(reason)"
        case .inconsistent(let message), .tooSmall(let message):
            return message
        }
    }
}
