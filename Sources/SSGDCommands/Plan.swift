import ArgumentParser
import Bench
import Cluster
import Data
import Engine
import Foundation
import Training

// `ssgd plan`: the step-time cost model of docs/scaling.md for one model over worker counts and
// link speeds, for the star ssgd runs today and for an aggregator tree (of fan-in --fan-in, or
// the one level of --aggregators A that `launch --aggregators A` builds). The model is a
// reference network by name, or any config's (--config: its model, batch and ghost batch).

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict step time over worker counts and link speeds (the cost model of docs/scaling.md).",
        discussion: """
            compute = the largest shard's samples / --images-per-second (one worker, all its lanes; measure it \
            with `ssgd bench --models NAME --batches GHOST --threads 1` × lanes); transfer = bytes on the \
            coordinator's link / bandwidth + 2 × latency (with --aggregators, the aggregators' links \
            after it); reduce and update are timed on this machine. --config takes the model, batch_size \
            and ghost_batch of a training config (e.g. a wide MLP on synthetic data).
            """)

    @Option(help: "mlp, vgg16, nin, densenet40 or densenet22.") var model: String?
    @Option(help: "A training config instead of --model: its model, batch_size and ghost_batch.") var config: String?
    @Option(help: "Global batch (default 4096).") var batch: Int?
    @Option(name: .customLong("ghost-batch"), help: "Samples per work unit (default 128).") var ghostBatch: Int?
    @Option(help: "Worker counts, comma-separated.") var workers = "2,8,32,128"
    @Option(help: "Link bandwidths in Gb/s, comma-separated.") var bandwidth = "1,10,25"
    @Option(name: .customLong("latency-ms"), help: "One-way link latency in milliseconds.") var latencyMilliseconds = 0.05
    @Option(name: .customLong("images-per-second"), help: "Training images/s of one worker (all its lanes).")
    var imagesPerSecond: Double
    @Option(name: .customLong("fan-in"), help: "Children per aggregator in the tree design.") var fanIn = 4
    @Option(help: "Model the tree as `launch --aggregators A` builds it (one level of A aggregators) instead of a tree of --fan-in.")
    var aggregators: Int?

    func validate() throws {
        guard (model == nil) != (config == nil) else { throw ValidationError("give --model NAME or --config FILE") }
        if config != nil && (batch != nil || ghostBatch != nil) {
            throw ValidationError("--batch and --ghost-batch come from the config's batch_size and ghost_batch with --config")
        }
        let (batch, ghostBatch) = (batch ?? 4096, ghostBatch ?? 128)
        guard batch > 0, ghostBatch > 0, batch % ghostBatch == 0 else {
            throw ValidationError("--batch must be a positive multiple of --ghost-batch")
        }
        guard imagesPerSecond > 0 else { throw ValidationError("--images-per-second must be > 0") }
        guard fanIn >= 2 else { throw ValidationError("--fan-in must be ≥ 2") }
        if let aggregators, aggregators < 1 { throw ValidationError("--aggregators must be ≥ 1") }
        guard (try? Self.list(workers).allSatisfy { $0 >= 1 }) == true else {
            throw ValidationError("--workers takes whole numbers ≥ 1, e.g. 2,8,32")
        }
        guard (try? (Self.list(bandwidth) as [Double]).allSatisfy { $0 > 0 }) == true else {
            throw ValidationError("--bandwidth takes numbers > 0 in Gb/s, e.g. 1,10,25")
        }
    }

    static func list<T: LosslessStringConvertible>(_ text: String) throws -> [T] {
        try text.split(separator: ",").map {
            guard let value = T(String($0).trimmingCharacters(in: .whitespaces)) else { throw ValidationError("'\($0)' is not a number") }
            return value
        }
    }

    /// The model's name, parameter count, batch and ghost batch: a reference network's, or a config's.
    func shape() throws -> (label: String, parameters: Int, batch: Int, ghostBatch: Int) {
        if let config {
            let training = try TrainingConfig.load(path: config)
            try training.validate()
            let (inputShape, classes) = DatasetLoader.inputShapeAndClasses(training.dataSpec)
            let parameters = try ModelFactory.make(training, inputShape: inputShape, classes: classes).parameterCount
            return ("\(training.model.rawValue) of \(config)", parameters, training.batchSize, training.ghostBatch)
        }
        let ghost = ghostBatch ?? 128
        let network = try BenchmarkModel.named(model ?? "").make(ghost)
        return (model ?? "", network.parameterCount, batch ?? 4096, ghost)
    }

    func run() throws {
        try reportingErrors {
            let (label, parameters, batch, ghostBatch) = try shape()
            let (addRate, update) = Self.measureCoordinator(parameters: parameters)
            Console.line(String(format: "%@: %d parameters (%.1f MB), B = %d in %d units of %d, %.1f images/s per worker, latency %.2f ms",
                                label, parameters, 4 * Double(parameters) / 1e6, batch, batch / ghostBatch, ghostBatch,
                                imagesPerSecond, latencyMilliseconds))
            Console.line(String(format: "measured here: adding gradients %.2f Gfloat/s, update (Nesterov) %.1f ms", addRate / 1e9, update * 1e3))
            Console.line("")
            let treeLabel = aggregators.map { "\($0) aggregators" } ?? "tree F=\(fanIn)"
            Console.line("| W | Gb/s | star: step s | compute | transfer | reduce | coordinator MB/step | \(treeLabel): step s | transfer | coordinator MB/step |")
            Console.line("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            let workerCounts: [Int] = try Self.list(workers)
            let speeds: [Double] = try Self.list(bandwidth)
            let units = batch / ghostBatch
            for gbps in speeds {
                let model = cost(parameters: parameters, units: units, ghostBatch: ghostBatch, gbps: gbps, addRate: addRate, update: update)
                for w in workerCounts {
                    let star = model.star(workers: w)
                    let tree = tree(model, workers: w)
                    let label = w > units ? "\(w) (\(units) busy)" : "\(w)"
                    Console.line(String(format: "| %@ | %g | %.3f | %.3f | %.3f | %.3f | %.2f | %.3f | %.3f | %.2f |",
                                        label, gbps, star.total, star.compute, star.transfer, star.reduce, star.rootBytes / 1e6,
                                        tree.total, tree.transfer, tree.rootBytes / 1e6))
                }
            }
            Console.line("")
            for gbps in speeds {
                let model = cost(parameters: parameters, units: units, ghostBatch: ghostBatch, gbps: gbps, addRate: addRate, update: update)
                let star = model.wall { model.star(workers: $0) }.map(String.init) ?? "none up to 65536"
                let tree = model.wall { self.tree(model, workers: $0) }.map(String.init) ?? "none up to 65536"
                Console.line("\(gbps) Gb/s: communication exceeds compute from W = \(star) (star), W = \(tree) (\(treeLabel))")
            }
        }
    }

    /// The tree design: `launch --aggregators A` (at most one aggregator per worker), or fan-in F.
    func tree(_ model: StepCostModel, workers: Int) -> StepCostModel.Prediction {
        if let aggregators { return model.aggregated(workers: workers, aggregators: min(aggregators, workers)) }
        return model.tree(workers: workers, fanIn: fanIn)
    }

    func cost(parameters: Int, units: Int, ghostBatch: Int, gbps: Double, addRate: Double, update: Double) -> StepCostModel {
        StepCostModel(
            parameters: parameters, units: units, unitSize: ghostBatch, imagesPerSecondPerWorker: imagesPerSecond,
            linkBytesPerSecond: gbps * 1e9 / 8, latencySeconds: latencyMilliseconds / 1e3, addFloatsPerSecond: addRate,
            updateSeconds: update)
    }

    /// This machine's rate of adding P-float gradient blocks and its Nesterov update time (median of 5).
    static func measureCoordinator(parameters: Int) -> (addFloatsPerSecond: Double, update: Double) {
        let a = FloatBuffer(count: parameters), b = FloatBuffer(count: parameters)
        let optimizer = NesterovMomentum(parameterCount: parameters, momentum: 0.9)
        var adds = [Double](), updates = [Double]()
        for _ in 0..<5 {
            var start = MonotonicClock.now()
            UnitTree.addInPlace(a.pointer, b.pointer, parameters)
            adds.append(MonotonicClock.now() - start)
            start = MonotonicClock.now()
            optimizer.step(parameters: a, gradient: b, learningRate: 0.01)
            updates.append(MonotonicClock.now() - start)
        }
        return (Double(parameters) / max(adds.sorted()[2], 1e-9), updates.sorted()[2])
    }
}
