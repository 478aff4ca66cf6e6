import Engine
import Foundation

// `ssgd data inspect PATH`: recognise the data set format of a folder from its file names,
// load both splits exactly as training does (same preprocessing, so the same fingerprint a
// run records) and summarise them. The command only prints `DatasetSummary.report`.

public struct DatasetSummary: Sendable, Equatable {
    public struct SplitSummary: Sendable, Equatable {
        public var name: String
        public var count: Int
        public var shape: Shape
        public var classes: Int
        public var histogram: [Int]  // (classes)
        public var coarseClasses: Int
        public var coarseHistogram: [Int]?  // (coarseClasses), CIFAR-100 only

        init(_ dataset: Dataset) {
            name = dataset.name
            count = dataset.count
            shape = dataset.shape
            classes = dataset.classes
            histogram = dataset.classHistogram
            coarseClasses = dataset.coarseClasses
            coarseHistogram = dataset.coarseHistogram
        }
    }

    public var kind: DatasetKind
    public var directory: String
    /// True when the format was recognised from the files, false when it was given.
    public var detected: Bool
    /// From the class-name file shipped with the data set (batches.meta.txt, class_names.txt,
    /// fine_label_names.txt), when present and complete.
    public var classNames: [String]?
    public var coarseClassNames: [String]?
    public var train: SplitSummary
    public var test: SplitSummary
    public var fingerprint: String

    /// The human-readable summary `ssgd data inspect` prints.
    public var report: String {
        var lines = [
            "data set:    \(kind.rawValue) (\(detected ? "recognised from its files" : "as given by --dataset")) in \(directory)",
            "fingerprint: \(fingerprint)",
        ]
        for split in [train, test] {
            lines.append("")
            let coarse = split.coarseHistogram == nil ? "" : " (\(split.coarseClasses) coarse classes)"
            lines.append("\(split.name): \(split.count) samples of \(split.shape), \(split.classes) classes\(coarse)")
            lines += Self.histogramLines(title: "samples per class", split.histogram, names: classNames)
            if let coarse = split.coarseHistogram {
                lines += Self.histogramLines(title: "samples per coarse class", coarse, names: coarseClassNames)
            }
        }
        return lines.joined(separator: "\n")
    }

    static func histogramLines(title: String, _ histogram: [Int], names: [String]?) -> [String] {
        let smallest = histogram.min() ?? 0, largest = histogram.max() ?? 0
        var lines = ["  \(title) (min \(smallest), max \(largest)):"]
        func padded(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        if histogram.count <= 20 {
            let nameWidth = names.map { $0.map(\.count).max() ?? 0 } ?? 0
            for (label, count) in histogram.enumerated() {
                let name = names.map { " " + $0[label] + String(repeating: " ", count: nameWidth - $0[label].count) } ?? ""
                lines.append("    \(padded(String(label), 3))\(name) \(padded(String(count), 8))")
            }
        } else {
            for row in stride(from: 0, to: histogram.count, by: 10) {
                let end = min(row + 10, histogram.count)
                let counts = histogram[row..<end].map { padded(String($0), 6) }.joined()
                lines.append("    \(padded("\(row)–\(end - 1)", 5)):\(counts)")
            }
        }
        return lines
    }
}

public enum DatasetInspection {
    /// The files whose presence marks each format (any one is enough).
    static let markers: [(kind: DatasetKind, files: [String])] = [
        (.fashionMNIST, ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"]),
        (.cifar10, CIFARReader.cifar10TrainFiles + [CIFARReader.cifar10TestFile]),
        (.cifar100, [CIFARReader.cifar100TrainFile, CIFARReader.cifar100TestFile]),
        (.stl10, STL10Reader.files),
    ]

    /// The folders the data sets unpack to, for a hint when PATH is their parent.
    static let knownSubfolders = ["fashion-mnist", "cifar-10-batches-bin", "cifar-100-binary", "stl10_binary"]

    /// `--dataset` names: the config's `dataset` values; "mnist" reads as the same IDX format.
    public static func kind(named name: String) throws -> DatasetKind {
        let kinds = DatasetKind.allCases.filter { $0 != .synthetic }
        if name == "mnist" { return .fashionMNIST }
        guard let kind = DatasetKind(rawValue: name), kind != .synthetic else {
            throw DataError.inconsistent(
                "unknown data set '\(name)' for inspection; expected one of \(kinds.map(\.rawValue).joined(separator: ", ")) or mnist")
        }
        return kind
    }

    /// The format of the files in `directory`.
    public static func detect(directory: String) throws -> DatasetKind {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DataError.missing(path: directory, hint: "Give the folder that holds the data set files.")
        }
        func exists(_ file: String) -> Bool { fileManager.fileExists(atPath: (directory as NSString).appendingPathComponent(file)) }
        let found = markers.filter { $0.files.contains(where: exists) }.map(\.kind)
        if found.count == 1 { return found[0] }
        if found.count > 1 {
            throw DataError.unrecognizedFolder(
                path: directory,
                reason: "it holds files of several formats (\(found.map(\.rawValue).joined(separator: ", "))); pass --dataset NAME")
        }
        var reason =
            "none of the expected files is there (fashion-mnist: train-images-idx3-ubyte[.gz]; cifar10: data_batch_1.bin … test_batch.bin; "
            + "cifar100: train.bin, test.bin; stl10: train_X.bin, train_y.bin, test_X.bin, test_y.bin)"
        let nested = knownSubfolders.filter { exists($0) }
        if !nested.isEmpty {
            reason += "; it has \(nested.joined(separator: ", ")): inspect \(nested.count == 1 ? "that folder" : "one of those") instead"
        }
        throw DataError.unrecognizedFolder(path: directory, reason: reason)
    }

    /// Loads `directory` as `dataset` (or as the recognised format) and summarises it.
    public static func inspect(directory: String, dataset: DatasetKind? = nil) throws -> DatasetSummary {
        let kind = try dataset ?? detect(directory: directory)
        guard kind != .synthetic else {
            throw DataError.inconsistent("synthetic data has no files to inspect")
        }
        let data = try DatasetLoader.load(DataSpec(dataset: kind, dataPath: directory))
        let names = classNames(kind: kind, directory: directory, classes: data.classes, coarseClasses: data.train.coarseClasses)
        return DatasetSummary(
            kind: kind, directory: directory, detected: dataset == nil,
            classNames: names.fine, coarseClassNames: names.coarse,
            train: .init(data.train), test: .init(data.test), fingerprint: data.fingerprint)
    }

    /// Class names from the text files the archives ship, one name a line.
    static func classNames(kind: DatasetKind, directory: String, classes: Int, coarseClasses: Int) -> (fine: [String]?, coarse: [String]?) {
        func read(_ file: String, count: Int) -> [String]? {
            let path = (directory as NSString).appendingPathComponent(file)
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
            let names = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            return names.count == count ? names : nil
        }
        switch kind {
        case .cifar10: return (read("batches.meta.txt", count: classes), nil)
        case .cifar100: return (read("fine_label_names.txt", count: classes), read("coarse_label_names.txt", count: coarseClasses))
        case .stl10: return (read("class_names.txt", count: classes), nil)
        case .fashionMNIST, .synthetic: return (nil, nil)
        }
    }
}
