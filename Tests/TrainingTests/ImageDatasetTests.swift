import Data
import Engine
import Foundation
import TestSupport
import Testing
import Training

// CIFAR-10, CIFAR-100 and STL-10 readers and `ssgd data inspect`'s library half, on tiny files
// written byte for byte in each format. Every image byte encodes its (sample, channel, row,
// column), so a transposed or shifted read changes values.

/// The byte stored for pixel (channel c, row y, column x) of sample n.
func pixelByte(_ n: Int, _ c: Int, _ y: Int, _ x: Int) -> UInt8 { UInt8((n * 11 + c * 80 + y * 7 + x * 3) % 256) }

enum ImageFiles {
    static func write(_ bytes: [UInt8], _ directory: String, _ file: String) {
        _ = FileManager.default.createFile(atPath: "\(directory)/\(file)", contents: Data(bytes))
    }

    /// 3072 bytes: R, G, B planes of 32×32, row-major.
    static func cifarImage(_ n: Int) -> [UInt8] {
        var bytes = [UInt8]()
        for c in 0..<3 { for y in 0..<32 { for x in 0..<32 { bytes.append(pixelByte(n, c, y, x)) } } }
        return bytes
    }

    /// 27648 bytes: 3 planes of 96×96, each column-major (row index fastest).
    static func stlImage(_ n: Int) -> [UInt8] {
        var bytes = [UInt8]()
        for c in 0..<3 { for x in 0..<96 { for y in 0..<96 { bytes.append(pixelByte(n, c, y, x)) } } }
        return bytes
    }

    /// CIFAR-10 records for labels, images numbered from `first`.
    static func cifar10(_ labels: [UInt8], first: Int = 0) -> [UInt8] {
        labels.enumerated().flatMap { [$0.element] + cifarImage(first + $0.offset) }
    }

    static func cifar100(_ labels: [(coarse: UInt8, fine: UInt8)], first: Int = 0) -> [UInt8] {
        labels.enumerated().flatMap { [$0.element.coarse, $0.element.fine] + cifarImage(first + $0.offset) }
    }

    static let cifar10TrainLabels: [[UInt8]] = [[0, 9], [3], [3, 1], [7], [2]]  // 7 samples in 5 batches
    static let cifar10TestLabels: [UInt8] = [5, 9, 0]

    /// A cifar-10-batches-bin folder: 7 train samples (numbered 0…6) in five batches, 3 test.
    static func cifar10Folder(replacing: [String: [UInt8]] = [:]) -> String {
        let directory = Fixtures.temporaryDirectory("ssgd-cifar10")
        var first = 0
        for (i, labels) in cifar10TrainLabels.enumerated() {
            let file = "data_batch_\(i + 1).bin"
            write(replacing[file] ?? cifar10(labels, first: first), directory, file)
            first += labels.count
        }
        write(replacing["test_batch.bin"] ?? cifar10(cifar10TestLabels), directory, "test_batch.bin")
        return directory
    }

    static let cifar100TrainLabels: [(coarse: UInt8, fine: UInt8)] = [(4, 0), (19, 99), (4, 55), (0, 30)]
    static let cifar100TestLabels: [(coarse: UInt8, fine: UInt8)] = [(1, 2), (1, 2)]

    static func cifar100Folder(train: [UInt8]? = nil, test: [UInt8]? = nil) -> String {
        let directory = Fixtures.temporaryDirectory("ssgd-cifar100")
        write(train ?? cifar100(cifar100TrainLabels), directory, "train.bin")
        write(test ?? cifar100(cifar100TestLabels), directory, "test.bin")
        return directory
    }

    static let stlTrainLabels: [UInt8] = [1, 10, 5]  // classes 0, 9, 4
    static let stlTestLabels: [UInt8] = [2, 2]

    static func stlFolder(trainX: [UInt8]? = nil, trainY: [UInt8]? = nil) -> String {
        let directory = Fixtures.temporaryDirectory("ssgd-stl10")
        write(trainX ?? (0..<3).flatMap(stlImage), directory, "train_X.bin")
        write(trainY ?? stlTrainLabels, directory, "train_y.bin")
        write((0..<2).flatMap(stlImage), directory, "test_X.bin")
        write(stlTestLabels, directory, "test_y.bin")
        return directory
    }

    static func bigEndian(_ value: Int) -> [UInt8] {
        [UInt8((value >> 24) & 0xFF), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    /// An MNIST-style IDX folder of 4×4 images, 4 train and 2 test.
    static func idxFolder() -> String {
        let directory = Fixtures.temporaryDirectory("ssgd-idx")
        func images(_ count: Int) -> [UInt8] {
            bigEndian(0x803) + bigEndian(count) + bigEndian(4) + bigEndian(4) + (0..<(count * 16)).map { UInt8($0 * 13 % 256) }
        }
        func labels(_ values: [UInt8]) -> [UInt8] { bigEndian(0x801) + bigEndian(values.count) + values }
        write(images(4), directory, "train-images-idx3-ubyte")
        write(labels([1, 1, 8, 0]), directory, "train-labels-idx1-ubyte")
        write(images(2), directory, "t10k-images-idx3-ubyte")
        write(labels([3, 1]), directory, "t10k-labels-idx1-ubyte")
        return directory
    }
}

func loadError(_ body: () throws -> Any) -> DataError? {
    do {
        _ = try body()
        return nil
    } catch let error as DataError { return error } catch {
        Issue.record("expected a DataError, got \(error)")
        return nil
    }
}

func config(_ dataset: DatasetKind, _ directory: String) -> TrainingConfig {
    var config = TrainingConfig()
    config.dataset = dataset
    config.dataPath = directory
    return config
}

/// Every pixel of sample `index` of `dataset` equals pixelByte(n, c, y, x) / 255.
func expectPixels(_ dataset: Dataset, sample index: Int, encode n: Int, sourceLocation: SourceLocation = #_sourceLocation) {
    let (channels, height, width) = dataset.shape.chw
    let x = dataset.sample(index)
    var mismatches = 0
    for c in 0..<channels {
        for row in 0..<height {
            for column in 0..<width where x[(c * height + row) * width + column] != Float(pixelByte(n, c, row, column)) / 255 {
                mismatches += 1
            }
        }
    }
    #expect(mismatches == 0, "\(dataset.name) sample \(index): \(mismatches) pixels misplaced", sourceLocation: sourceLocation)
}

@Suite struct CIFAR10Tests {
    @Test func readsBatchesInOrderWithRowMajorPlanes() throws {
        let (train, test) = try CIFARReader.loadCIFAR10(directory: ImageFiles.cifar10Folder())
        #expect(train.count == 7 && test.count == 3)
        #expect(train.shape == Shape(3, 32, 32) && train.classes == 10)
        #expect(train.labels == [0, 9, 3, 3, 1, 7, 2])
        #expect(test.labels == [5, 9, 0])
        #expect(train.coarseLabels == nil)
        for n in 0..<7 { expectPixels(train, sample: n, encode: n) }
        expectPixels(test, sample: 2, encode: 2)
        // Channel 1 (green), row 4, column 30 of sample 5.
        #expect(train.sample(5)[1 * 1024 + 4 * 32 + 30] == Float(pixelByte(5, 1, 4, 30)) / 255)
    }

    @Test func loaderNormalisesAndKeepsThePixelOrder() throws {
        // One bright pixel at (channel 2, row 17, column 3); GCN keeps it the maximum.
        var image = [UInt8](repeating: 10, count: 3072)
        image[2 * 1024 + 17 * 32 + 3] = 250
        let directory = ImageFiles.cifar10Folder(replacing: ["test_batch.bin": [4] + image])
        let data = try DatasetLoader.load(config(.cifar10, directory))
        #expect(data.train.count == 7 && data.test.count == 1)
        let x = Array(UnsafeBufferPointer(start: data.test.sample(0), count: 3072))
        #expect(x.firstIndex(of: x.max()!) == 2 * 1024 + 17 * 32 + 3)
        let mean = x.reduce(0, +) / 3072
        #expect(abs(mean) < 1e-5)
        #expect(data.train.name == "cifar10-train" && data.test.name == "cifar10-test")
    }

    @Test func partialRecordNamesFileSizeAndRecordSize() {
        let truncated = Array(ImageFiles.cifar10([3, 1], first: 3).dropLast(100))
        let error = loadError { try CIFARReader.loadCIFAR10(directory: ImageFiles.cifar10Folder(replacing: ["data_batch_3.bin": truncated])) }
        guard case .partialRecord(let path, let size, 3073, _)? = error else {
            Issue.record("expected partialRecord, got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("data_batch_3.bin"))
        #expect(size == 2 * 3073 - 100)
        let message = error?.description ?? ""
        #expect(message.contains("data_batch_3.bin") && message.contains("6046") && message.contains("3073"))
    }

    @Test func emptyBatchIsAnError() {
        let error = loadError { try CIFARReader.loadCIFAR10(directory: ImageFiles.cifar10Folder(replacing: ["data_batch_5.bin": []])) }
        guard case .partialRecord(let path, 0, 3073, _)? = error else {
            Issue.record("expected partialRecord, got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("data_batch_5.bin"))
        #expect(error?.description.contains("is empty") == true)
    }

    @Test func labelTenIsOutOfRange() {
        let error = loadError { try CIFARReader.loadCIFAR10(directory: ImageFiles.cifar10Folder(replacing: ["test_batch.bin": ImageFiles.cifar10([5, 10, 0])])) }
        guard case .labelOutOfRange(let path, 1, 10, 10)? = error else {
            Issue.record("expected labelOutOfRange at sample 1, got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("test_batch.bin"))
        #expect(error?.description.contains("test_batch.bin") == true)
    }

    @Test func missingBatchNamesEveryExpectedFile() throws {
        let directory = ImageFiles.cifar10Folder()
        try FileManager.default.removeItem(atPath: "\(directory)/data_batch_4.bin")
        let error = loadError { try DatasetLoader.load(config(.cifar10, directory)) }
        guard case .missing(let path, _)? = error else {
            Issue.record("expected missing, got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("data_batch_4.bin"))
        let message = error?.description ?? ""
        for file in ["data_batch_1.bin", "data_batch_5.bin", "test_batch.bin", "cifar-10-batches-bin", "data_path"] {
            #expect(message.contains(file), "message lacks \(file): \(message)")
        }
    }

    @Test func parentFolderGetsAHint() throws {
        let parent = Fixtures.temporaryDirectory("ssgd-cifar-parent")
        try FileManager.default.moveItem(atPath: ImageFiles.cifar10Folder(), toPath: "\(parent)/cifar-10-batches-bin")
        let error = loadError { try DatasetLoader.load(config(.cifar10, parent)) }
        guard case .missing(let path, _)? = error else {
            Issue.record("expected missing, got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("data_batch_1.bin"))
        #expect(error?.description.contains("\(parent)/cifar-10-batches-bin exists: set data_path to it") == true)
    }

    @Test func missingFolderIsNamed() {
        let error = loadError { try DatasetLoader.load(config(.cifar10, "/nonexistent/cifar")) }
        guard case .missing("/nonexistent/cifar", _)? = error else {
            Issue.record("expected missing folder, got \(String(describing: error))")
            return
        }
    }
}

@Suite struct CIFAR100Tests {
    @Test func trainsOnFineLabelsAndKeepsCoarseOnes() throws {
        let (train, test) = try CIFARReader.loadCIFAR100(directory: ImageFiles.cifar100Folder())
        #expect(train.count == 4 && test.count == 2)
        #expect(train.shape == Shape(3, 32, 32))
        #expect(train.classes == 100 && train.coarseClasses == 20)
        #expect(train.labels == [0, 99, 55, 30])
        #expect(train.coarseLabels == [4, 19, 4, 0])
        #expect(test.labels == [2, 2] && test.coarseLabels == [1, 1])
        #expect(train.coarseHistogram?[4] == 2 && train.coarseHistogram?[19] == 1 && train.coarseHistogram?.reduce(0, +) == 4)
        for n in 0..<4 { expectPixels(train, sample: n, encode: n) }
        expectPixels(test, sample: 1, encode: 1)
    }

    @Test func loaderKeepsCoarseLabelsThroughNormalisation() throws {
        let data = try DatasetLoader.load(config(.cifar100, ImageFiles.cifar100Folder()))
        #expect(data.train.coarseLabels == [4, 19, 4, 0])
        #expect(data.classes == 100)
    }

    @Test func fineLabel100IsOutOfRange() {
        let train = ImageFiles.cifar100([(4, 0), (4, 1), (3, 100)])
        let error = loadError { try CIFARReader.loadCIFAR100(directory: ImageFiles.cifar100Folder(train: train)) }
        guard case .labelOutOfRange(let path, 2, 100, 100)? = error else {
            Issue.record("expected labelOutOfRange at sample 2, got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("train.bin"))
    }

    @Test func coarseLabel20IsInvalid() {
        let test = ImageFiles.cifar100([(20, 5)])
        let error = loadError { try CIFARReader.loadCIFAR100(directory: ImageFiles.cifar100Folder(test: test)) }
        guard case .invalidLabel(let path, 0, 20, _)? = error else {
            Issue.record("expected invalidLabel, got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("test.bin"))
        #expect(error?.description.contains("coarse") == true)
    }

    @Test func partialRecordUsesTheCIFAR100RecordSize() {
        // Two CIFAR-10-sized records are not a whole number of 3074-byte records.
        let error = loadError { try CIFARReader.loadCIFAR100(directory: ImageFiles.cifar100Folder(test: ImageFiles.cifar10([1, 2]))) }
        guard case .partialRecord(let path, 6146, 3074, _)? = error else {
            Issue.record("expected partialRecord, got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("test.bin"))
        #expect(error?.description.contains("fine label") == true)
    }

    @Test func missingTestFileIsNamed() throws {
        let directory = ImageFiles.cifar100Folder()
        try FileManager.default.removeItem(atPath: "\(directory)/test.bin")
        let error = loadError { try DatasetLoader.load(config(.cifar100, directory)) }
        guard case .missing(let path, _)? = error else {
            Issue.record("expected missing, got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("test.bin"))
        #expect(error?.description.contains("train.bin") == true && error?.description.contains("cifar-100-binary") == true)
    }
}

@Suite struct STL10Tests {
    @Test func convertsColumnMajorPlanesToRowMajorAndLabelsToZeroBased() throws {
        let (train, test) = try STL10Reader.load(directory: ImageFiles.stlFolder())
        #expect(train.count == 3 && test.count == 2)
        #expect(train.shape == Shape(3, 96, 96) && train.classes == 10)
        #expect(train.labels == [0, 9, 4])
        #expect(test.labels == [1, 1])
        for n in 0..<3 { expectPixels(train, sample: n, encode: n) }
        expectPixels(test, sample: 1, encode: 1)
    }

    @Test func onePixelLandsAtItsRowAndColumn() throws {
        // Channel 2, row 5, column 70 is byte 2·9216 + 70·96 + 5 in the file; through the full
        // loader (with normalisation) it must stay the brightest value, at NCHW index
        // 2·9216 + 5·96 + 70.
        var image = [UInt8](repeating: 0, count: 27648)
        image[2 * 9216 + 70 * 96 + 5] = 255
        let directory = ImageFiles.stlFolder(trainX: image + ImageFiles.stlImage(1) + ImageFiles.stlImage(2))
        let raw = try STL10Reader.load(directory: directory).train
        #expect(raw.sample(0)[2 * 9216 + 5 * 96 + 70] == 1)
        #expect(raw.sample(0)[2 * 9216 + 70 * 96 + 5] == 0)
        let data = try DatasetLoader.load(config(.stl10, directory))
        let x = Array(UnsafeBufferPointer(start: data.train.sample(0), count: 27648))
        #expect(x.firstIndex(of: x.max()!) == 2 * 9216 + 5 * 96 + 70)
    }

    @Test(arguments: [UInt8(0), UInt8(11)])
    func labelsOutside1To10AreInvalid(bad: UInt8) {
        let error = loadError { try STL10Reader.load(directory: ImageFiles.stlFolder(trainY: [3, bad, 4])) }
        guard case .invalidLabel(let path, 1, let label, _)? = error else {
            Issue.record("expected invalidLabel at sample 1, got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("train_y.bin"))
        #expect(label == Int(bad))
        let message = error?.description ?? ""
        #expect(message.contains("train_y.bin") && message.contains("sample 1") && message.contains("1...10"))
    }

    @Test func imageAndLabelCountsMustAgree() {
        let error = loadError { try STL10Reader.load(directory: ImageFiles.stlFolder(trainY: [1, 2])) }
        guard case .countMismatch(let images, 3, let labels, 2)? = error else {
            Issue.record("expected countMismatch, got \(String(describing: error))")
            return
        }
        #expect(images.hasSuffix("train_X.bin") && labels.hasSuffix("train_y.bin"))
    }

    @Test func partialImageNamesFileAndImageSize() {
        let bytes = Array(((0..<2).flatMap(ImageFiles.stlImage)).dropLast(1))
        let error = loadError { try STL10Reader.load(directory: ImageFiles.stlFolder(trainX: bytes)) }
        guard case .partialRecord(let path, 55295, 27648, _)? = error else {
            Issue.record("expected partialRecord, got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("train_X.bin"))
        #expect(error?.description.contains("column-major") == true)
    }

    @Test func missingLabelsNameEveryExpectedFile() throws {
        let directory = ImageFiles.stlFolder()
        try FileManager.default.removeItem(atPath: "\(directory)/test_y.bin")
        let error = loadError { try DatasetLoader.load(config(.stl10, directory)) }
        guard case .missing(let path, _)? = error else {
            Issue.record("expected missing, got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("test_y.bin"))
        let message = error?.description ?? ""
        #expect(message.contains("train_X.bin") && message.contains("stl10_binary") && message.contains("data_path"))
    }
}

@Suite struct DatasetInspectionTests {
    @Test func recognisesEachFormat() throws {
        #expect(try DatasetInspection.detect(directory: ImageFiles.idxFolder()) == .fashionMNIST)
        #expect(try DatasetInspection.detect(directory: ImageFiles.cifar10Folder()) == .cifar10)
        #expect(try DatasetInspection.detect(directory: ImageFiles.cifar100Folder()) == .cifar100)
        #expect(try DatasetInspection.detect(directory: ImageFiles.stlFolder()) == .stl10)
    }

    @Test func summarisesCIFAR10WithClassNamesAndTheTrainingFingerprint() throws {
        let directory = ImageFiles.cifar10Folder()
        let names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        ImageFiles.write(Array((names.joined(separator: "\n") + "\n\n").utf8), directory, "batches.meta.txt")
        let summary = try DatasetInspection.inspect(directory: directory)
        #expect(summary.kind == .cifar10 && summary.detected)
        #expect(summary.train.count == 7 && summary.test.count == 3)
        #expect(summary.train.shape == Shape(3, 32, 32) && summary.train.classes == 10)
        #expect(summary.train.histogram == [1, 1, 1, 2, 0, 0, 0, 1, 0, 1])
        #expect(summary.test.histogram == [1, 0, 0, 0, 0, 1, 0, 0, 0, 1])
        #expect(summary.classNames == names)
        #expect(summary.fingerprint == (try DatasetLoader.load(config(.cifar10, directory))).fingerprint)
        let report = summary.report
        #expect(report.contains("cifar10-train: 7 samples of 3×32×32, 10 classes"))
        let rows = report.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(rows.contains(["3", "cat", "2"]) && rows.contains(["9", "truck", "1"]))
        #expect(report.contains(summary.fingerprint))
    }

    @Test func summarisesCIFAR100WithCoarseHistogram() throws {
        let summary = try DatasetInspection.inspect(directory: ImageFiles.cifar100Folder())
        #expect(summary.kind == .cifar100)
        #expect(summary.train.classes == 100 && summary.train.coarseClasses == 20)
        #expect(summary.train.histogram[99] == 1 && summary.train.histogram.reduce(0, +) == 4)
        #expect(summary.test.coarseHistogram?[1] == 2)
        let report = summary.report
        #expect(report.contains("cifar100-test: 2 samples of 3×32×32, 100 classes (20 coarse classes)"))
        #expect(report.contains("samples per coarse class (min 0, max 2)"))
        // Fine classes come in rows of ten: row 90–99 ends with class 99's single sample.
        #expect(report.contains("90–99:     0     0     0     0     0     0     0     0     0     1"))
    }

    @Test func summarisesSTL10AndIDX() throws {
        let stl = try DatasetInspection.inspect(directory: ImageFiles.stlFolder())
        #expect(stl.kind == .stl10 && stl.train.shape == Shape(3, 96, 96))
        #expect(stl.train.histogram == [1, 0, 0, 0, 1, 0, 0, 0, 0, 1])
        #expect(stl.train.coarseHistogram == nil && !stl.report.contains("coarse"))
        let idx = try DatasetInspection.inspect(directory: ImageFiles.idxFolder())
        #expect(idx.kind == .fashionMNIST && idx.train.shape == Shape(1, 4, 4))
        #expect(idx.train.count == 4 && idx.test.count == 2)
        #expect(idx.train.histogram == [1, 2, 0, 0, 0, 0, 0, 0, 1, 0])
    }

    @Test func givenDatasetOverridesRecognitionAndIsChecked() throws {
        let directory = ImageFiles.cifar100Folder()
        let summary = try DatasetInspection.inspect(directory: directory, dataset: DatasetInspection.kind(named: "cifar100"))
        #expect(!summary.detected && summary.report.contains("as given by --dataset"))
        // Read as the wrong format, the records do not fit.
        let error = loadError { try DatasetInspection.inspect(directory: directory, dataset: .cifar10) }
        guard case .missing(let path, _)? = error else {
            Issue.record("expected missing CIFAR-10 files, got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("data_batch_1.bin"))
        #expect(try DatasetInspection.kind(named: "mnist") == .fashionMNIST)
        #expect(throws: DataError.self) { try DatasetInspection.kind(named: "synthetic") }
        #expect(throws: DataError.self) { try DatasetInspection.kind(named: "imagenet") }
    }

    @Test func unknownAndAmbiguousFoldersAreExplained() throws {
        let empty = Fixtures.temporaryDirectory("ssgd-empty")
        try FileManager.default.createDirectory(atPath: "\(empty)/stl10_binary", withIntermediateDirectories: true)
        let unknown = loadError { try DatasetInspection.detect(directory: empty) }
        guard case .unrecognizedFolder(empty, let reason)? = unknown else {
            Issue.record("expected unrecognizedFolder, got \(String(describing: unknown))")
            return
        }
        #expect(reason.contains("data_batch_1.bin") && reason.contains("stl10_binary"))

        let mixed = ImageFiles.cifar100Folder()
        ImageFiles.write(ImageFiles.cifar10([1]), mixed, "test_batch.bin")
        let ambiguous = loadError { try DatasetInspection.detect(directory: mixed) }
        guard case .unrecognizedFolder(_, let why)? = ambiguous else {
            Issue.record("expected unrecognizedFolder, got \(String(describing: ambiguous))")
            return
        }
        #expect(why.contains("cifar10, cifar100") && why.contains("--dataset"))

        let absent = loadError { try DatasetInspection.detect(directory: "/nonexistent/data") }
        guard case .missing("/nonexistent/data", _)? = absent else {
            Issue.record("expected missing, got \(String(describing: absent))")
            return
        }
    }
}
