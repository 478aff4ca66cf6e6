import Engine
import Foundation
import Runs
import TestSupport
import Testing
import Training

@Suite struct SafetensorsTests {
    /// A DenseNet-7 (one dense layer per block) on 3×8×8 with 3 classes: conv, BN, transitions, linear.
    static func smallDenseNet() -> Network {
        DenseNet.make(depth: 7, growth: 2, inputShape: Shape(3, 8, 8), classes: 3, ghostBatch: 4)
    }

    static func bits(_ buffer: FloatBuffer) -> [UInt32] { buffer.toArray().map(\.bitPattern) }

    /// The 8-byte little-endian length, the header padded to 8 bytes, then `data`.
    static func file(header: String, data: [UInt8]) -> [UInt8] {
        var text = Array(header.utf8)
        text += [UInt8](repeating: 0x20, count: (8 - text.count % 8) % 8)
        let length = UInt64(text.count)
        return (0..<8).map { UInt8((length >> (8 * UInt64($0))) & 0xFF) } + text + data
    }

    static func littleEndian(_ values: [Float]) -> [UInt8] {
        values.flatMap { value in (0..<4).map { UInt8((value.bitPattern >> (8 * UInt32($0))) & 0xFF) } }
    }

    static func malformedReason(_ bytes: [UInt8]) -> String? {
        do {
            _ = try Safetensors.decode(bytes)
            return nil
        } catch let SafetensorsError.malformed(reason) {
            return reason
        } catch {
            return "unexpected error \(error)"
        }
    }

    // MARK: - Format

    @Test func aHandBuiltFileIsDecodedToItsTensorsInDataOrder() throws {
        // "b" is listed first but stored second; a scalar and a 2×2 matrix.
        let header = #"{"b":{"dtype":"F32","shape":[2,2],"data_offsets":[4,20]},"#
            + #""a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"__metadata__":{"format":"pt"}}"#
        let bytes = Self.file(header: header, data: Self.littleEndian([1.5, -2, 0.25, 3e-8, -Float.infinity]))
        let file = try Safetensors.decode(bytes)
        #expect(file.tensors.map(\.name) == ["a", "b"])
        #expect(file["a"] == SafetensorsTensor(name: "a", shape: [], values: [1.5]))
        #expect(file["b"] == SafetensorsTensor(name: "b", shape: [2, 2], values: [-2, 0.25, 3e-8, -Float.infinity]))
        #expect(file.metadata == ["format": "pt"])
        #expect(file.otherTensors.isEmpty)
    }

    @Test func encodingThenDecodingGivesBackTheSameFile() throws {
        let original = SafetensorsFile(
            tensors: [
                SafetensorsTensor(name: "features.0.weight", shape: [2, 1, 1, 3], values: [1, 2, 3, -4, 5.5, .leastNonzeroMagnitude]),
                SafetensorsTensor(name: "loss", shape: [], values: [0.75]),
                SafetensorsTensor(name: "empty", shape: [0, 3], values: []),
                SafetensorsTensor(name: "quote\"back\\slash\nnewline", shape: [1], values: [-0.0]),
            ],
            metadata: ["format": "pt", "note": "tab\there \"quoted\" é"])
        let bytes = Safetensors.encode(original)
        let length = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(length % 8 == 0, "the header is padded to 8 bytes")
        #expect(bytes.count == 8 + length + 4 * 8)
        let decoded = try Safetensors.decode(bytes)
        #expect(decoded.tensors.map(\.name) == original.tensors.map(\.name))
        #expect(decoded.tensors.map(\.shape) == original.tensors.map(\.shape))
        #expect(decoded.tensors.map { $0.values.map(\.bitPattern) } == original.tensors.map { $0.values.map(\.bitPattern) })
        #expect(decoded.metadata == original.metadata)
    }

    @Test func aFileWithoutMetadataOrTensorsIsValid() throws {
        let decoded = try Safetensors.decode(Safetensors.encode(SafetensorsFile(tensors: [])))
        #expect(decoded.tensors.isEmpty && decoded.metadata.isEmpty)
    }

    @Test func tensorsOfOtherDtypesAreSetAsideByName() throws {
        let header = #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
            + #""bn.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[4,12]}}"#
        let file = try Safetensors.decode(Self.file(header: header, data: Self.littleEndian([2]) + [7, 0, 0, 0, 0, 0, 0, 0]))
        #expect(file.tensors.map(\.name) == ["w"])
        #expect(file.otherTensors == ["bn.num_batches_tracked": "I64"])
    }

    // MARK: - Malformed files

    @Test func truncatedFilesAreRefused() throws {
        let bytes = Safetensors.encode(SafetensorsFile(tensors: [SafetensorsTensor(name: "w", shape: [4], values: [1, 2, 3, 4])]))
        let lostData = try #require(Self.malformedReason(Array(bytes.dropLast(3))))
        #expect(lostData.contains("outside"), "\(lostData)")
        let lostHeader = try #require(Self.malformedReason(Array(bytes.prefix(20))))
        #expect(lostHeader.contains("past the end"), "\(lostHeader)")
        let lostLength = try #require(Self.malformedReason(Array(bytes.prefix(5))))
        #expect(lostLength.contains("shorter than"), "\(lostLength)")
    }

    @Test func anAbsurdHeaderLengthIsRefusedBeforeAnythingIsRead() throws {
        let bytes: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0x80] + Array("{}".utf8)
        let reason = try #require(Self.malformedReason(bytes))
        #expect(reason.contains("limit"), "\(reason)")
    }

    @Test(arguments: [
        (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#, "JSON"),
        (#"["w"]"#, "start with"),
        (#"{"w":{"dtype":"F32","shape":[1]}}"#, "data_offsets"),
        (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}}"#, "JSON"),
        (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"step":3}}"#, "__metadata__"),
    ])
    func headersThatAreNotTheExpectedJSONAreRefused(header: String, mention: String) throws {
        let reason = try #require(Self.malformedReason(Self.file(header: header, data: Self.littleEndian([1]))))
        #expect(reason.contains(mention), "\(reason)")
    }

    @Test(arguments: [
        // offsets past the data
        (#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}"#, "outside"),
        (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#, "outside"),
        (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, "outside"),
        // offsets that disagree with the shape
        (#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, "needs 8 bytes"),
        (#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, "negative"),
        // unknown dtype
        (#"{"w":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, "unknown dtype"),
        // two tensors on the same bytes, a gap, bytes left over
        (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"v":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, "overlaps"),
        (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, "unused bytes before tensor w"),
        (#"{"w":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#, "after the last tensor"),
    ])
    func inconsistentTensorPlacementsAreRefusedWithTheReason(header: String, mention: String) throws {
        let reason = try #require(Self.malformedReason(Self.file(header: header, data: Self.littleEndian([1, 2]))))
        #expect(reason.contains(mention), "\(reason)")
    }

    @Test func aMissingFileIsReportedWithItsPath() throws {
        let path = Fixtures.temporaryDirectory() + "/none.safetensors"
        #expect(throws: SafetensorsError.unreadable(path: path, reason: "no such file, or not readable")) {
            try Safetensors.read(path: path)
        }
    }

    // MARK: - Networks

    @Test func aNetworkIsWrittenUnderPyTorchNamesAndShapes() throws {
        let network = Self.smallDenseNet()
        let tensors = Safetensors.tensors(of: network)
        let shapes = Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0.shape) })
        #expect(shapes["conv1.weight"] == [16, 3, 3, 3])
        #expect(shapes["dense1.0.bn1.running_var"] == [16])
        #expect(shapes["trans1.conv1.weight"] == [18, 18, 1, 1])
        #expect(shapes["fc.weight"] == [3, 22])
        #expect(shapes["fc.bias"] == [3])
        #expect(tensors.count == network.parameterTable.count + network.stateTable.count)
        #expect(tensors.map(\.values.count).reduce(0, +) == network.parameterCount + network.state.count)
    }

    @Test func exportThenImportIntoAFreshNetworkGivesBitIdenticalArenas() throws {
        let source = Self.smallDenseNet()
        source.initializeParameters(seed: 5)
        var generator = SplitMix64(keys: 11)
        for i in 0..<source.state.count { source.state[i] = generator.nextGaussian() }
        let bytes = Safetensors.encode(SafetensorsFile(tensors: Safetensors.tensors(of: source), metadata: ["step": "3"]))
        let target = Self.smallDenseNet()
        #expect(Self.bits(target.parameters) != Self.bits(source.parameters))
        try Safetensors.load(Safetensors.decode(bytes), into: target)
        #expect(Self.bits(target.parameters) == Self.bits(source.parameters))
        #expect(Self.bits(target.state) == Self.bits(source.state))
    }

    @Test func loadingNamesAMissingTensorAndCopiesNothing() throws {
        let source = Self.smallDenseNet()
        source.initializeParameters(seed: 1)
        var file = SafetensorsFile(tensors: Safetensors.tensors(of: source))
        file.tensors.removeAll { $0.name == "dense2.0.bn1.running_mean" }
        let target = Self.smallDenseNet()
        let before = Self.bits(target.parameters)
        #expect(throws: SafetensorsError.missingTensor(name: "dense2.0.bn1.running_mean")) {
            try Safetensors.load(file, into: target)
        }
        #expect(Self.bits(target.parameters) == before)
    }

    @Test func loadingRefusesAWrongShapeAWrongDtypeAndAForeignTensor() throws {
        let source = Self.smallDenseNet()
        let tensors = Safetensors.tensors(of: source)
        let target = Self.smallDenseNet()

        var reshaped = SafetensorsFile(tensors: tensors)
        let index = try #require(reshaped.tensors.firstIndex { $0.name == "fc.weight" })
        reshaped.tensors[index].shape = [22, 3]
        #expect(throws: SafetensorsError.wrongShape(name: "fc.weight", file: [22, 3], expected: [3, 22])) {
            try Safetensors.load(reshaped, into: target)
        }

        var halfPrecision = SafetensorsFile(tensors: tensors)
        halfPrecision.tensors.removeAll { $0.name == "fc.bias" }
        halfPrecision.otherTensors["fc.bias"] = "F16"
        #expect(throws: SafetensorsError.wrongDtype(name: "fc.bias", dtype: "F16")) {
            try Safetensors.load(halfPrecision, into: target)
        }

        var foreign = SafetensorsFile(tensors: tensors + [SafetensorsTensor(name: "classifier.weight", shape: [1], values: [0])])
        #expect(throws: SafetensorsError.unexpectedTensor(name: "classifier.weight")) {
            try Safetensors.load(foreign, into: target)
        }
        foreign.tensors.removeLast()
        foreign.otherTensors["bn1.num_batches_tracked"] = "I64"
        try Safetensors.load(foreign, into: target)
    }

    // MARK: - Exporting a run

    static func convolutionalConfig() -> TrainingConfig {
        var config = Fixtures.syntheticConfig(method: .spectral)
        config.model = .densenet
        config.depth = 7
        config.growth = 2
        config.syntheticShape = [3, 8, 8]
        return config
    }

    @Test func aRunsNewestCheckpointIsExportedWithItsRunningStatistics() throws {
        let directory = Fixtures.temporaryDirectory()
        let config = Self.convolutionalConfig()
        try AtomicFileWriter.write(config.yaml(), to: RunDirectory(path: directory).configPath)
        let trainer = try Fixtures.trainer(config, runDirectory: directory)
        _ = try trainer.trainStep()
        try trainer.writeCheckpoint()
        _ = try trainer.trainStep()
        try trainer.writeCheckpoint()

        let restored = try CheckpointExport.restore(run: RunDirectory(path: directory))
        #expect(restored.step == 2)
        let output = directory + "/model.safetensors"
        try CheckpointExport.writeSafetensors(restored, to: output)
        let file = try Safetensors.read(path: output)
        #expect(file.metadata["step"] == "2")
        #expect(file.metadata["config_hash"] == config.trajectoryHash)
        #expect(file.metadata["format"] == "pt")
        // The config builds a DenseNet-7 for synthetic 3×8×8 data with 4 classes.
        let network = try ModelFactory.make(config, inputShape: Shape(3, 8, 8), classes: 4)
        let initialState = network.state.toArray()
        try Safetensors.load(file, into: network)
        #expect(Self.bits(network.parameters) == Self.bits(trainer.network.parameters))
        #expect(Self.bits(network.state) == Self.bits(trainer.network.state))
        #expect(network.state.toArray() != initialState, "two steps moved the running statistics")

        let first = try CheckpointExport.restore(
            run: RunDirectory(path: directory),
            checkpoint: RunDirectory(path: directory).checkpointsPath + "/" + Checkpoint.fileName(step: 1))
        #expect(first.step == 1)
    }

    @Test func theExportCommandWritesAFileAndRefusesOtherFormats() throws {
        let directory = Fixtures.temporaryDirectory()
        let config = Self.convolutionalConfig()
        try AtomicFileWriter.write(config.yaml(), to: RunDirectory(path: directory).configPath)
        let trainer = try Fixtures.trainer(config, runDirectory: directory)
        _ = try trainer.trainStep()
        try trainer.writeCheckpoint()
        let output = directory + "/out.safetensors"
        let exported = try SSGDProcess.run(["export", directory, "--format", "safetensors", "--output", output])
        #expect(exported.status == 0, "\(exported.output)")
        #expect(exported.output.contains("step 1"), "\(exported.output)")
        #expect(try Safetensors.read(path: output).metadata["step"] == "1")

        let refused = try SSGDProcess.run(["export", directory, "--format", "onnx", "--output", output + ".onnx"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("only format is safetensors"), "\(refused.output)")
        #expect(!FileManager.default.fileExists(atPath: output + ".onnx"))

        let notARun = try SSGDProcess.run(["export", directory + "/checkpoints", "--format", "safetensors", "--output", output])
        #expect(notARun.status == 1)
        #expect(notARun.output.contains("not a run directory"), "\(notARun.output)")
    }
}
