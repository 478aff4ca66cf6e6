import Engine
import Foundation
import Monitoring
import Testing
import TestSupport
import Training

/// A real Trainer with the exporter as its observer: every metric of docs/metrics.md appears,
/// with its type and labels, and `promtool check metrics` accepts the exposition.
struct TrainingMetricsTests {
    /// Train 2 epochs of the synthetic MLP (8 steps each, an evaluation after each epoch).
    static func trainedMetrics() throws -> (TrainingMetrics, Trainer) {
        var config = Fixtures.syntheticConfig(method: .spectral, epochs: 2)
        config.evalEveryEpochs = 1
        let trainer = try Fixtures.trainer(config)
        let metrics = TrainingMetrics()
        metrics.observe(trainer)
        metrics.clusterCounters = { TrainingMetrics.ClusterCounters(reassignments: 3, droppedMessages: 1) }
        try trainer.train()
        return (metrics, trainer)
    }

    static func text(_ metrics: TrainingMetrics) -> String { String(decoding: metrics.exposition(), as: UTF8.self) }

    /// The value of the sample line `name` (with its labels, if any) in an exposition.
    static func value(_ sample: String, in text: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(sample + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    @Test func theExpositionHoldsEveryMetricWithItsTypeAndLabels() throws {
        let (metrics, trainer) = try Self.trainedMetrics()
        let text = Self.text(metrics)
        let gauges = ["ssgd_step", "ssgd_total_steps", "ssgd_epoch", "ssgd_learning_rate", "ssgd_loss", "ssgd_batch_accuracy",
                      "ssgd_train_loss", "ssgd_train_accuracy", "ssgd_test_loss", "ssgd_test_accuracy", "ssgd_images_per_second",
                      "ssgd_live_workers", "ssgd_step_bytes", "ssgd_step_seconds", "ssgd_sigma_max"]
        for name in gauges { #expect(text.contains("# TYPE \(name) gauge\n"), "\(name) is not a gauge in:\n\(text)") }
        for name in ["ssgd_reassignments_total", "ssgd_dropped_messages_total", "ssgd_evaluations_total"] {
            #expect(text.contains("# TYPE \(name) counter\n"), "\(name) is not a counter in:\n\(text)")
        }
        #expect(text.contains("# HELP ssgd_step "))
        #expect(Self.value("ssgd_step", in: text) == Double(trainer.step))
        #expect(Self.value("ssgd_total_steps", in: text) == 16)
        #expect(Self.value("ssgd_epoch", in: text) == 2)
        #expect(Self.value("ssgd_live_workers", in: text) == 1)
        #expect(Self.value("ssgd_reassignments_total", in: text) == 3)
        #expect(Self.value("ssgd_dropped_messages_total", in: text) == 1)
        #expect(Self.value("ssgd_evaluations_total", in: text) == 2)
        let testAccuracy = try #require(Self.value("ssgd_test_accuracy", in: text))
        #expect(testAccuracy > 0 && testAccuracy <= 1)
        for part in ["step", "compute", "transfer", "reduce_update"] {
            #expect(Self.value("ssgd_step_seconds{part=\"\(part)\"}", in: text) != nil, "no ssgd_step_seconds part \(part)")
        }
        // σ per regularised matrix, labelled with the matrix's name, as in metrics.jsonl.
        let layers = trainer.network.weightMatrices.map(\.name)
        #expect(layers.count == 3)
        for layer in layers {
            let sigma = try #require(Self.value("ssgd_sigma_max{layer=\"\(layer)\"}", in: text), "no σ for \(layer) in:\n\(text)")
            #expect(sigma > 0)
        }
    }

    @Test func countersFollowTheCoordinatorsTotals() {
        let metrics = TrainingMetrics()
        metrics.update(.init(reassignments: 2, droppedMessages: 0))
        metrics.update(.init(reassignments: 5, droppedMessages: 4))
        metrics.update(.init(reassignments: 5, droppedMessages: 4))
        let text = Self.text(metrics)
        #expect(Self.value("ssgd_reassignments_total", in: text) == 5)
        #expect(Self.value("ssgd_dropped_messages_total", in: text) == 4)
    }

    @Test func promtoolAcceptsTheExposition() throws {
        let promtool = try #require(ExternalProgram.which("promtool"), "promtool not found: install Debian's prometheus (make test-deps)")
        let (metrics, _) = try Self.trainedMetrics()
        let result = try ExternalProgram.run(promtool, ["check", "metrics"], input: Self.text(metrics))
        #expect(result.status == 0, "promtool check metrics:\n\(result.output)\n\(Self.text(metrics))")
    }
}
