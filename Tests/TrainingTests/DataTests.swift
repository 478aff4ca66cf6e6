import CZlib
import Data
import Engine
import Foundation
import TestSupport
import Testing
import Training

@Suite struct DataTests {
    func bigEndian(_ value: Int) -> [UInt8] {
        [UInt8((value >> 24) & 0xFF), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    func imageFile(count: Int, rows: Int = 3, cols: Int = 2, magic: Int = 0x803) -> [UInt8] {
        bigEndian(magic) + bigEndian(count) + bigEndian(rows) + bigEndian(cols) + (0..<(count * rows * cols)).map { UInt8($0 % 251) }
    }

    func labelFile(_ labels: [UInt8], magic: Int = 0x801) -> [UInt8] { bigEndian(magic) + bigEndian(labels.count) + labels }

    func write(_ bytes: [UInt8], to path: String, gzip: Bool) {
        if gzip {
            let file = gzopen(path, "wb")
            _ = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32(bytes.count)) }
            gzclose(file)
        } else {
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        }
    }

    /// A Fashion-MNIST-style folder with 5 train and 3 test images.
    func folder(gzip: Bool, trainImages: [UInt8]? = nil, trainLabels: [UInt8]? = nil) -> String {
        let directory = Fixtures.temporaryDirectory("ssgd-idx")
        let suffix = gzip ? ".gz" : ""
        write(trainImages ?? imageFile(count: 5), to: "\(directory)/train-images-idx3-ubyte\(suffix)", gzip: gzip)
        write(trainLabels ?? labelFile([0, 1, 2, 9, 4]), to: "\(directory)/train-labels-idx1-ubyte\(suffix)", gzip: gzip)
        write(imageFile(count: 3), to: "\(directory)/t10k-images-idx3-ubyte\(suffix)", gzip: gzip)
        write(labelFile([3, 3, 1]), to: "\(directory)/t10k-labels-idx1-ubyte\(suffix)", gzip: gzip)
        return directory
    }

    func config(_ directory: String) -> TrainingConfig {
        var config = TrainingConfig()
        config.dataPath = directory
        return config
    }

    func dataError(_ directory: String) -> DataError? {
        do {
            _ = try DatasetLoader.load(config(directory))
            return nil
        } catch let error as DataError { return error } catch { return nil }
    }

    @Test(arguments: [false, true])
    func readsIDXFilesPlainAndGzipped(gzip: Bool) throws {
        let data = try DatasetLoader.load(config(folder(gzip: gzip)))
        #expect(data.train.count == 5)
        #expect(data.test.count == 3)
        #expect(data.shape == Shape(1, 3, 2))
        #expect(data.train.labels == [0, 1, 2, 9, 4])
        #expect(data.train.classHistogram == [1, 1, 1, 0, 1, 0, 0, 0, 0, 1])
        // Global contrast normalisation: every image has mean 0 and standard deviation 1.
        for n in 0..<data.train.count {
            let x = Array(UnsafeBufferPointer(start: data.train.sample(n), count: 6))
            let mean = x.reduce(0, +) / 6
            let variance = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 6
            #expect(abs(mean) < 1e-5)
            #expect(abs(variance - 1) < 1e-4)
        }
    }

    @Test func missingFolderNamesTheDebianPackage() {
        let error = dataError("/nonexistent/fashion")
        #expect(error?.description.contains("dataset-fashion-mnist") == true)
    }

    @Test func wrongMagicIsNamed() {
        let error = dataError(folder(gzip: false, trainImages: imageFile(count: 5, magic: 0x801)))
        guard case .badMagic(let path, _, let found)? = error else {
            Issue.record("expected badMagic, got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("train-images-idx3-ubyte"))
        #expect(found == 0x801)
    }

    @Test(arguments: [false, true])
    func truncatedImagesAreNamed(gzip: Bool) {
        let bytes = imageFile(count: 5)
        let error = dataError(folder(gzip: gzip, trainImages: Array(bytes.prefix(bytes.count - 7))))
        guard case .truncated(let path, let expected, let found)? = error else {
            Issue.record("expected truncated, got \(String(describing: error))")
            return
        }
        #expect(path.contains("train-images"))
        #expect(expected == 30 && found == 23)
    }

    @Test func cutGzipStreamIsAReadErrorNotACrash() {
        let directory = folder(gzip: true)
        let path = "\(directory)/train-images-idx3-ubyte.gz"
        let bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes.prefix(bytes.count / 2)))
        let error = dataError(directory)
        #expect(error != nil)
        #expect(error?.description.contains("train-images") == true)
    }

    @Test func countMismatchAndBadLabelsAreNamed() {
        let mismatch = dataError(folder(gzip: false, trainLabels: labelFile([0, 1, 2])))
        guard case .countMismatch(_, 5, _, 3)? = mismatch else {
            Issue.record("expected countMismatch, got \(String(describing: mismatch))")
            return
        }
        let badLabel = dataError(folder(gzip: false, trainLabels: labelFile([0, 1, 12, 3, 4])))
        guard case .labelOutOfRange(_, 2, 12, 10)? = badLabel else {
            Issue.record("expected labelOutOfRange, got \(String(describing: badLabel))")
            return
        }
    }

    @Test func epochPermutationsAreSeededAndBatchesCoverAnEpochOnce() throws {
        let schedule = try StepSchedule(samples: 100, batchSize: 32, epochs: 2, seed: 7)
        #expect(schedule.stepsPerEpoch == 3)
        #expect(schedule.permutation(epoch: 0) == schedule.permutation(epoch: 0))
        #expect(schedule.permutation(epoch: 0) != schedule.permutation(epoch: 1))
        let order = schedule.permutation(epoch: 1)
        #expect(Set(order).count == 100)
        let seen = (3..<6).flatMap { schedule.batch(step: $0, permutation: order) }
        #expect(Set(seen).count == 96)
        #expect(throws: DataError.self) { try StepSchedule(samples: 10, batchSize: 32, epochs: 1, seed: 1) }
    }

    @Test func syntheticDataIsDeterministicAndBalanced() {
        let a = SyntheticData.make(shape: Shape(2, 3, 3), classes: 3, trainSamples: 30, testSamples: 9, noise: 0.5, seed: 4)
        let b = SyntheticData.make(shape: Shape(2, 3, 3), classes: 3, trainSamples: 30, testSamples: 9, noise: 0.5, seed: 4)
        #expect(a.train.images.toArray() == b.train.images.toArray())
        #expect(a.fingerprint == b.fingerprint)
        #expect(a.train.classHistogram == [10, 10, 10])
        let c = SyntheticData.make(shape: Shape(2, 3, 3), classes: 3, trainSamples: 30, testSamples: 9, noise: 0.5, seed: 5)
        #expect(a.fingerprint != c.fingerprint)
    }

    @Test func cropAndFlipAreDeterministicPerEpochAndSample() {
        let augmenter = Augmenter(kind: .cropFlip, padding: 2, seed: 3)
        let shape = Shape(1, 4, 4)
        let source: [Float] = (0..<16).map(Float.init)
        func augmented(epoch: Int, index: Int32) -> [Float] {
            var out = [Float](repeating: -1, count: 16)
            augmenter.copy(source, to: &out, shape: shape, epoch: epoch, index: index)
            return out
        }
        #expect(augmented(epoch: 1, index: 5) == augmented(epoch: 1, index: 5))
        let variants = Set((0..<20).map { augmented(epoch: $0, index: 5) })
        #expect(variants.count > 5)
        // Every output pixel is either padding (0) or a source pixel.
        #expect(augmented(epoch: 2, index: 1).allSatisfy { $0 >= 0 && $0 < 16 })
    }
}
