import Foundation

// CIFAR-10, CIFAR-100 and STL-10 in their standard binary formats (CIFARReader,
// STL10Reader), contrast-normalised like every real data set. `data_path` names the folder
// that holds the files.

enum ImageDatasets {
    static func load(_ config: DataSpec) throws -> DatasetPair {
        let directory = config.dataPath
        let (train, test): (Dataset, Dataset)
        switch config.dataset {
        case .cifar10: (train, test) = try CIFARReader.loadCIFAR10(directory: directory)
        case .cifar100: (train, test) = try CIFARReader.loadCIFAR100(directory: directory)
        case .stl10: (train, test) = try STL10Reader.load(directory: directory)
        case .fashionMNIST, .synthetic:
            preconditionFailure("ImageDatasets.load called for \(config.dataset.rawValue)")
        }
        GlobalContrastNormalization.apply(to: train)
        GlobalContrastNormalization.apply(to: test)
        return try DatasetPair(train: train, test: test)
    }

    /// Full paths of `files` in `directory`; throws `missing` naming the folder or the first
    /// absent file, with `hint` (which lists every expected file).
    static func requireFiles(_ files: [String], in directory: String, hint: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DataError.missing(path: directory, hint: hint)
        }
        let paths = files.map { (directory as NSString).appendingPathComponent($0) }
        for path in paths where !FileManager.default.fileExists(atPath: path) {
            throw DataError.missing(path: path, hint: hint)
        }
        return paths
    }

    /// " (PATH/SUB exists: set data_path to it)" when data_path names the folder one level up.
    static func subfolderHint(_ directory: String, _ subfolder: String) -> String {
        let nested = (directory as NSString).appendingPathComponent(subfolder)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: nested, isDirectory: &isDirectory), isDirectory.boolValue else { return "" }
        return " \(nested) exists: set data_path to it."
    }
}
