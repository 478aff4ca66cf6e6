import Engine
import Foundation
import Runs
import TestSupport
import Testing
import Training

@Suite struct EndToEndTests {
    /// Each method trains the small MLP on learnable synthetic data; the loss must fall from
    /// about ln 4 ≈ 1.39 (chance on 4 classes) to below 0.35 and test accuracy exceed 85%.
    @Test(arguments: [Method.vanilla, .decay, .adversarial, .spectral])
    func eachMethodLowersTheLoss(method: Method) throws {
        var config = Fixtures.syntheticConfig(method: method, epochs: 6)
        config.lr = 0.1
        config.evalEveryEpochs = 3
        let directory = Fixtures.temporaryDirectory()
        let trainer = try Fixtures.trainer(config, runDirectory: directory)
        let before = try trainer.evaluate()
        let summary = try #require(try trainer.train())
        #expect(before.train.loss > 1.0)
        #expect(summary.trainLoss < 0.35, "\(method): train loss \(summary.trainLoss)")
        #expect(summary.testAccuracy > 0.85, "\(method): test accuracy \(summary.testAccuracy)")
        #expect(summary.steps == 48)
        // The run directory holds the metrics and summary a user reads.
        let run = RunDirectory(path: directory)
        let metrics = try String(contentsOfFile: run.metricsPath, encoding: .utf8).split(separator: "\n")
        #expect(metrics.count == 2)
        let record = try JSONDecoder().decode(EvaluationRecord.self, from: Data(metrics[0].utf8))
        #expect(record.step == 24)
        #expect(record.sigma.keys.sorted() == ["0.weight", "2.weight", "4.weight"])
        let saved = try JSONDecoder().decode(TrainingSummary.self, from: Data(contentsOf: URL(fileURLWithPath: run.summaryPath)))
        #expect(saved.parametersSHA256 == trainer.parametersSHA256)
        #expect(saved.parametersSHA256.count == 64)
        // It names the OpenBLAS kernel that computed; worker kernels only for cluster runs.
        #expect(saved.blasCore == BLASThreads.coreName)
        #expect(saved.workerBLASCores == nil)
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run.summaryPath))) as? [String: Any])
        #expect(fields["blas_core"] as? String == BLASThreads.coreName)
        #expect(fields["worker_blas_cores"] == nil)
    }

    @Test func spectralRegularizationLowersTheLargestSingularValue() throws {
        var plain = Fixtures.syntheticConfig(method: .vanilla, epochs: 6)
        plain.lr = 0.1
        var regularized = plain
        regularized.method = .spectral
        regularized.lambda = 1.0
        let a = try Fixtures.trainer(plain)
        try a.train()
        let b = try Fixtures.trainer(regularized)
        try b.train()
        let sigmaPlain = SpectralNorms.largest(network: a.network, seed: 1)
        let sigmaRegularized = SpectralNorms.largest(network: b.network, seed: 1)
        for name in sigmaPlain.keys {
            #expect(sigmaRegularized[name]! < sigmaPlain[name]!, "\(name)")
        }
    }

    @Test func nonFiniteLossStopsWithTheStep() throws {
        var config = Fixtures.syntheticConfig()
        config.lr = 1e30
        let trainer = try Fixtures.trainer(config)
        do {
            for _ in 0..<10 { _ = try trainer.trainStep() }
            Issue.record("training with lr 1e30 did not stop")
        } catch let error as NumericalError {
            #expect(error.description.contains("step"))
        }
    }

    @Test(arguments: InitScheme.allCases)
    func theConfigsInitStartsTheRunAndIsRecordedInItsSummary(scheme: InitScheme) throws {
        var config = Fixtures.syntheticConfig(epochs: 1)
        config.initScheme = scheme
        config.maxSteps = 1
        let directory = Fixtures.temporaryDirectory()
        let trainer = try Fixtures.trainer(config, runDirectory: directory)
        let reference = try ModelFactory.make(config, inputShape: trainer.network.inputShape, classes: trainer.network.classes)
        reference.initializeParameters(seed: config.seed, scheme: scheme)
        #expect(trainer.network.parameters.toArray() == reference.parameters.toArray())
        try trainer.train()
        let saved = try JSONDecoder().decode(TrainingSummary.self, from: Data(contentsOf: URL(fileURLWithPath: RunDirectory(path: directory).summaryPath)))
        #expect(saved.initScheme == scheme.rawValue)
    }
}
