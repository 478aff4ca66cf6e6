import Data
import Engine
import Foundation
import Runs
import TestSupport
import Testing
import Training

// ssgd against numbers exported from PyTorch (tools/pytorch_reference.py, see tools/README.md):
// the same small conv-BN-ReLU-DenseNet-transition-maxpool-linear network, loaded by name from
// the fixture, must give PyTorch's logits, loss, gradients and input gradient, and the real
// Trainer must reproduce PyTorch's 10 Nesterov steps and BN running statistics.
//
// Tolerance: max |ssgd − torch| ≤ 1e-4 · max(max |torch|, 1e-3) per tensor. Both sides compute
// in float32 (unit roundoff 6e-8) but sum in different orders: BN statistics over 8·64 values
// (ssgd accumulates them in double), GEMMs over up to 54 terms, and BN's backward subtracts
// near-equal means, so errors scale with the tensor (or with the terms summed), not with each
// element. The 1e-3 floor is for BN scale gradients Σ dy·x̂: bn0's sums 8·64 = 512 terms per channel
// that cancel to about 3e-4, leaving float32 rounding of about 2e-8 on either side (PyTorch's own
// float32 result is 7e-6 of the scale away from its float64 one). Observed errors: logits, loss,
// gradients, input gradient, losses, parameters and running statistics after 10 steps all
// within 1e-8 to 7e-7 of their scale, bn0.weight's gradient 2e-5; any real mistake (a wrong
// index, a missing term, a forgotten ÷B) gives errors of order 1.

@Suite struct PyTorchReferenceTests {
    static let fixturePath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/pytorch_reference.safetensors").path
    static let batch = 8
    static let tolerance: Float = 1e-4
    /// Smallest scale errors are measured against (see the tolerance note above).
    static let scaleFloor: Float = 1e-3

    struct Reference {
        let file: SafetensorsFile
        let labels: [Int32]
        let classes: Int
        let learningRate: Double
        let momentum: Double
        let steps: Int

        init() throws {
            file = try Safetensors.read(path: PyTorchReferenceTests.fixturePath)
            let metadata = file.metadata
            guard metadata["format"] == "ssgd-pytorch-reference", metadata["version"] == "1",
                  let classes = metadata["classes"].flatMap(Int.init),
                  let learningRate = metadata["lr"].flatMap(Double.init),
                  let momentum = metadata["momentum"].flatMap(Double.init),
                  let steps = metadata["steps"].flatMap(Int.init),
                  let labels = metadata["labels"]?.split(separator: ",").compactMap({ Int32($0) })
            else { throw SafetensorsError.malformed(reason: "fixture metadata is not version 1: \(metadata)") }
            self.labels = labels
            self.classes = classes
            self.learningRate = learningRate
            self.momentum = momentum
            self.steps = steps
        }

        func tensor(_ name: String) throws -> SafetensorsTensor {
            guard let tensor = file[name] else { throw SafetensorsError.missingTensor(name: name) }
            return tensor
        }

        /// The tensors under `prefix/`, renamed without the prefix.
        func group(_ prefix: String) -> SafetensorsFile {
            SafetensorsFile(tensors: file.tensors.compactMap { tensor in
                guard tensor.name.hasPrefix(prefix + "/") else { return nil }
                var renamed = tensor
                renamed.name = String(tensor.name.dropFirst(prefix.count + 1))
                return renamed
            })
        }
    }

    /// The network of tools/pytorch_reference.py, from ssgd's layers, with the same names.
    static func makeNetwork(classes: Int) -> Network {
        let workspace = Workspace()
        let conv0 = Conv2d(
            name: "conv0", inputShape: Shape(3, 8, 8), outChannels: 4, kernel: 3, padding: 1, bias: false,
            workspace: workspace)
        let bn0 = BatchNorm2d(name: "bn0", inputShape: conv0.outputShape, ghostBatch: batch)
        let relu = ReLU(inputShape: bn0.outputShape)
        let dense = DenseLayer(name: "dense", inputShape: relu.outputShape, growthRate: 2, ghostBatch: batch, workspace: workspace)
        let transition = Transition(name: "trans", inputShape: dense.outputShape, ghostBatch: batch, workspace: workspace)
        let pool = MaxPool2d(inputShape: transition.outputShape, kernel: 2)
        let flatten = Flatten(inputShape: pool.outputShape)
        let fc = Linear(name: "fc", inputShape: flatten.outputShape, outFeatures: classes)
        return Network(layers: [conv0, bn0, relu, dense, transition, pool, flatten, fc], classes: classes)
    }

    /// max |actual − expected| / max(max |expected|, scaleFloor).
    static func relativeError(_ actual: UnsafeBufferPointer<Float>, _ expected: [Float]) -> Float {
        precondition(actual.count == expected.count, "comparing \(actual.count) values with \(expected.count)")
        var difference: Float = 0
        var scale: Float = 0
        for (a, e) in zip(actual, expected) {
            difference = max(difference, abs(a - e))
            scale = max(scale, abs(e))
        }
        return difference / max(scale, scaleFloor)
    }

    static func relativeError(_ actual: [Float], _ expected: [Float]) -> Float {
        actual.withUnsafeBufferPointer { relativeError($0, expected) }
    }

    /// Every parameter (`parameters`) or running statistic (`state`) of `network` against the
    /// reference tensors `prefix/<name>`, scaled by `factor`; returns the worst (name, error).
    static func compare(
        _ network: Network, arena: FloatBuffer, entries: [(name: String, offset: Int, count: Int)],
        with reference: Reference, prefix: String, factor: Float = 1
    ) throws -> [(String, Float)] {
        try entries.map { entry in
            let expected = try reference.tensor("\(prefix)/\(entry.name)").values
            let actual = (0..<entry.count).map { arena[entry.offset + $0] * factor }
            return (entry.name, relativeError(actual, expected))
        }
    }

    static func parameterEntries(_ network: Network) -> [(name: String, offset: Int, count: Int)] {
        network.parameterTable.map { ($0.name, $0.offset, $0.count) }
    }

    static func stateEntries(_ network: Network) -> [(name: String, offset: Int, count: Int)] {
        network.stateTable.map { ($0.name, $0.offset, $0.count) }
    }

    @Test func theFixtureHoldsEveryTensorOfTheNetworkUnderItsPyTorchName() throws {
        let reference = try Reference()
        let network = Self.makeNetwork(classes: reference.classes)
        #expect(reference.labels.count == Self.batch)
        #expect(try reference.tensor("input").shape == [Self.batch, 3, 8, 8])
        // Loading checks every name and shape and refuses tensors the network lacks.
        try Safetensors.load(reference.group("initial"), into: network)
        try Safetensors.load(reference.group("trained"), into: network)
        #expect(Set(reference.group("grad").tensors.map(\.name)) == Set(network.parameterTable.map(\.name)))
    }

    @Test func forwardAndBackwardMatchPyTorch() throws {
        let reference = try Reference()
        let network = Self.makeNetwork(classes: reference.classes)
        try Safetensors.load(reference.group("initial"), into: network)
        network.reserve(maxBatch: Self.batch)
        let input = try reference.tensor("input").values
        let inputGradient = FloatBuffer(count: input.count)
        let b = Float(Self.batch)

        let (logits, lossSum) = input.withUnsafeBufferPointer { x in
            reference.labels.withUnsafeBufferPointer { labels in
                let logits = network.forward(x.baseAddress!, batch: Self.batch, context: ForwardContext(mode: .training))
                let (lossSum, _) = network.loss.forward(logits: logits, labels: labels.baseAddress!, batch: Self.batch)
                network.gradients.zero()
                // ssgd's loss is a sum over the batch: its gradients are B times those of the mean.
                network.backward(logitGradient: network.loss.backward(scale: 1), batch: Self.batch, inputGradient: inputGradient.pointer)
                return (Array(UnsafeBufferPointer(start: logits, count: Self.batch * reference.classes)), lossSum)
            }
        }
        let logitError = Self.relativeError(logits, try reference.tensor("logits").values)
        #expect(logitError < Self.tolerance, "logits differ by \(logitError)")
        let expectedLoss = try reference.tensor("loss").values[0]
        #expect(abs(Float(lossSum) / b - expectedLoss) < Self.tolerance * expectedLoss, "loss \(lossSum / 8) vs \(expectedLoss)")

        let gradientErrors = try Self.compare(
            network, arena: network.gradients, entries: Self.parameterEntries(network), with: reference, prefix: "grad", factor: 1 / b)
        #expect(gradientErrors.count == network.parameterTable.count)
        for (name, error) in gradientErrors {
            #expect(error < Self.tolerance, "gradient of \(name) differs by \(error)")
        }
        let inputError = Self.relativeError(inputGradient.toArray().map { $0 / b }, try reference.tensor("input_grad").values)
        #expect(inputError < Self.tolerance, "input gradient differs by \(inputError)")
    }

    @Test func theTrainerReproducesTenNesterovStepsAndTheRunningStatistics() throws {
        let reference = try Reference()
        let network = Self.makeNetwork(classes: reference.classes)
        try Safetensors.load(reference.group("initial"), into: network)
        // One step = the whole 8-sample set as one ghost batch (one unit), as PyTorch sees it.
        var config = TrainingConfig()
        config.batchSize = Self.batch
        config.ghostBatch = Self.batch
        config.lr = reference.learningRate
        config.momentum = reference.momentum
        config.epochs = 100  // the learning rate drops at 50% of 100 steps: constant for the first 10
        config.method = .vanilla
        let images = FloatBuffer(try reference.tensor("input").values)
        let set = Dataset(name: "pytorch-reference", shape: Shape(3, 8, 8), classes: reference.classes, images: images, labels: reference.labels)
        let data = try DatasetPair(train: set, test: set)
        let runner = try LaneRunner(network: network, data: data, config: config, lanes: 1)
        let executor = LocalExecutor(runner: runner, unitsPerStep: config.unitsPerStep)
        let trainer = try Trainer(
            config: config, data: data, network: network, executor: executor,
            run: RunDirectory(path: Fixtures.temporaryDirectory()))
        trainer.output = { _ in }

        let expectedLosses = try reference.tensor("train_losses").values
        #expect(expectedLosses.count == reference.steps)
        var losses = [Float]()
        for _ in 0..<reference.steps {
            let statistics = try trainer.trainStep()
            losses.append(Float(statistics.lossSum / Double(statistics.samples)))
        }
        #expect(expectedLosses.last! < expectedLosses.first! - 0.1, "the reference run learns")
        for (step, (loss, expected)) in zip(losses, expectedLosses).enumerated() {
            #expect(abs(loss - expected) < Self.tolerance * expected, "step \(step): loss \(loss) vs \(expected)")
        }
        for (name, error) in try Self.compare(
            network, arena: network.parameters, entries: Self.parameterEntries(network), with: reference, prefix: "trained")
        {
            #expect(error < Self.tolerance, "\(name) after \(reference.steps) steps differs by \(error)")
        }
        // PyTorch updates running statistics in every training forward (momentum 0.1, unbiased
        // variance); ssgd's trainer once per step from the unit's statistics: with one unit per
        // step they are the same update.
        let stateErrors = try Self.compare(
            network, arena: network.state, entries: Self.stateEntries(network), with: reference, prefix: "trained")
        #expect(stateErrors.count == 6)
        for (name, error) in stateErrors {
            #expect(error < Self.tolerance, "\(name) after \(reference.steps) steps differs by \(error)")
        }
    }
}
