import Prometheus
import Training

// The run's numbers as Prometheus metrics (docs/metrics.md): a TrainingObserver that sets
// gauges and counters of a swift-prometheus registry on the training thread, and renders the
// registry in the text exposition format for the /metrics responder on its thread (the
// registry and its metrics are thread-safe, so the two threads need no lock of ours).

public final class TrainingMetrics: TrainingObserver {
    /// What the coordinator counts, read on the training thread after each step.
    public struct ClusterCounters: Sendable {
        public var reassignments: Int
        public var droppedMessages: Int

        public init(reassignments: Int, droppedMessages: Int) {
            self.reassignments = reassignments
            self.droppedMessages = droppedMessages
        }
    }

    /// `Content-Type` of `exposition()`: the Prometheus text format 0.0.4.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public let registry = PrometheusCollectorRegistry()

    private let step: Gauge
    private let totalSteps: Gauge
    private let epoch: Gauge
    private let learningRate: Gauge
    private let loss: Gauge
    private let batchAccuracy: Gauge
    private let trainLoss: Gauge
    private let trainAccuracy: Gauge
    private let testLoss: Gauge
    private let testAccuracy: Gauge
    private let imagesPerSecond: Gauge
    private let liveWorkers: Gauge
    private let bytesPerStep: Gauge
    private let stepSeconds: Gauge
    private let computeSeconds: Gauge
    private let transferSeconds: Gauge
    private let reduceSeconds: Gauge
    private let reassignments: Counter
    private let droppedMessages: Counter
    private let evaluations: Counter
    private var counted = ClusterCounters(reassignments: 0, droppedMessages: 0)
    /// The coordinator's counters (a cluster run sets it; read after each step).
    public var clusterCounters: (() -> ClusterCounters)?

    public init() {
        let r = registry
        step = r.makeGauge(descriptor: Self.named("step", "Optimisation steps done"))
        totalSteps = r.makeGauge(descriptor: Self.named("total_steps", "Steps of the whole schedule"))
        epoch = r.makeGauge(descriptor: Self.named("epoch", "Epochs done (steps done / steps per epoch)"))
        learningRate = r.makeGauge(descriptor: Self.named("learning_rate", "Learning rate of the last step"))
        loss = r.makeGauge(descriptor: Self.named("loss", "Mean training loss of the last step's batch"))
        batchAccuracy = r.makeGauge(descriptor: Self.named("batch_accuracy", "Accuracy (0-1) on the last step's batch"))
        trainLoss = r.makeGauge(descriptor: Self.named("train_loss", "Training-set loss at the last evaluation"))
        trainAccuracy = r.makeGauge(descriptor: Self.named("train_accuracy", "Training-set accuracy (0-1) at the last evaluation"))
        testLoss = r.makeGauge(descriptor: Self.named("test_loss", "Test-set loss at the last evaluation"))
        testAccuracy = r.makeGauge(descriptor: Self.named("test_accuracy", "Test-set accuracy (0-1) at the last evaluation"))
        imagesPerSecond = r.makeGauge(descriptor: Self.named("images_per_second", "Training samples per second of the last step"))
        liveWorkers = r.makeGauge(descriptor: Self.named("live_workers", "Processes computing gradients at the last step"))
        bytesPerStep = r.makeGauge(descriptor: Self.named("step_bytes", "Bytes sent and received by the coordinator for the last step"))
        let split = "Wall time of the last step by part: step (whole), compute (slowest worker), transfer, reduce_update"
        stepSeconds = r.makeGauge(descriptor: Self.named("step_seconds", split), labels: [("part", "step")])
        computeSeconds = r.makeGauge(descriptor: Self.named("step_seconds", split), labels: [("part", "compute")])
        transferSeconds = r.makeGauge(descriptor: Self.named("step_seconds", split), labels: [("part", "transfer")])
        reduceSeconds = r.makeGauge(descriptor: Self.named("step_seconds", split), labels: [("part", "reduce_update")])
        reassignments = r.makeCounter(descriptor: Self.named("reassignments_total", "Shards re-issued to another worker"))
        droppedMessages = r.makeCounter(descriptor: Self.named("dropped_messages_total", "Malformed or foreign messages dropped"))
        evaluations = r.makeCounter(descriptor: Self.named("evaluations_total", "Evaluations done by this process"))
    }

    /// `ssgd_NAME` with its `# HELP` text.
    private static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "ssgd", metricName: name, unitName: "", helpText: help)
    }

    /// The registry in the text exposition format; safe to call from any thread.
    public var exposition: @Sendable () -> [UInt8] {
        { [registry] in registry.emitToBuffer() }
    }

    public func didFinishStep(_ progress: StepProgress) {
        let statistics = progress.statistics
        step.set(Int64(progress.step))
        totalSteps.set(Int64(progress.totalSteps))
        epoch.set(progress.epoch)
        learningRate.set(progress.learningRate)
        loss.set(statistics.samples > 0 ? statistics.lossSum / Double(statistics.samples) : 0)
        batchAccuracy.set(statistics.samples > 0 ? Double(statistics.correct) / Double(statistics.samples) : 0)
        imagesPerSecond.set(progress.seconds > 0 ? Double(statistics.samples) / progress.seconds : 0)
        liveWorkers.set(Int64(statistics.liveWorkers))
        bytesPerStep.set(Int64(statistics.bytesMoved))
        stepSeconds.set(progress.seconds)
        computeSeconds.set(statistics.computeSeconds)
        transferSeconds.set(statistics.transferSeconds)
        reduceSeconds.set(statistics.reduceSeconds)
        if let counters = clusterCounters?() { update(counters) }
    }

    public func didEvaluate(_ record: EvaluationRecord) {
        trainLoss.set(record.trainLoss)
        trainAccuracy.set(record.trainAccuracy)
        testLoss.set(record.testLoss)
        testAccuracy.set(record.testAccuracy)
        evaluations.increment()
        for (layer, sigma) in record.sigma {
            // The registry returns the same gauge for the same name and labels.
            registry.makeGauge(
                descriptor: Self.named("sigma_max", "Largest singular value of a regularised weight matrix at the last evaluation"),
                labels: [("layer", layer)]
            ).set(Double(sigma))
        }
    }

    /// Bring the counters up to the coordinator's totals (they only grow).
    public func update(_ counters: ClusterCounters) {
        if counters.reassignments > counted.reassignments {
            reassignments.increment(by: Int64(counters.reassignments - counted.reassignments))
        }
        if counters.droppedMessages > counted.droppedMessages {
            droppedMessages.increment(by: Int64(counters.droppedMessages - counted.droppedMessages))
        }
        counted = counters
    }
}

extension TrainingMetrics {
    /// Become `trainer`'s observer, starting from where it stands (step and schedule).
    public func observe(_ trainer: Trainer) {
        trainer.observer = self
        step.set(Int64(trainer.step))
        totalSteps.set(Int64(trainer.schedule.totalSteps))
        epoch.set(Double(trainer.step) / Double(trainer.schedule.stepsPerEpoch))
    }
}
