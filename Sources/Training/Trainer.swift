import Data
import Engine
import Foundation

// The training loop, the same in every mode (DESIGN §4): the trainer owns the parameters,
// Nesterov momentum and the method's state; the executor returns each step's tree-reduced
// gradient sum. Per step: reduce → ÷B → + method term → Nesterov → BN layers fold the step's
// batch statistics into their running statistics.

public final class Trainer {
    public let config: TrainingConfig
    public let data: DatasetPair
    public let network: Network
    public let executor: GradientExecutor
    public let run: RunStore
    public let schedule: StepSchedule
    public let rates: LearningRateSchedule
    public let optimizer: NesterovMomentum
    /// The regularisation method: its per-step gradient term and its persistent state.
    public let method: TrainingMethod
    public let configHash: String
    public let dataFingerprint: String
    public private(set) var step = 0
    /// Where progress lines go (stdout by default).
    public var output: (String) -> Void = Console.line
    /// The command that continues this run, for the hint printed when it stops early.
    public var resumeCommand = "ssgd train"
    /// Told about each step and evaluation (e.g. the metrics exporter); none by default.
    public var observer: TrainingObserver?

    private let gradient: FloatBuffer
    private var permutation: (epoch: Int, order: [Int32])?
    private var indices: [Int32]

    public init(config: TrainingConfig, data: DatasetPair, network: Network, executor: GradientExecutor, run: RunStore) throws {
        self.config = config
        self.data = data
        self.network = network
        self.executor = executor
        self.run = run
        schedule = try StepSchedule(samples: data.train.count, batchSize: config.batchSize, epochs: config.epochs, seed: config.seed)
        rates = LearningRateSchedule(initial: config.lr, totalSteps: schedule.totalSteps)
        optimizer = NesterovMomentum(parameterCount: network.parameterCount, momentum: config.momentum)
        method = config.makeMethod(matrices: network.weightMatrices)
        configHash = config.trajectoryHash
        dataFingerprint = data.fingerprint
        gradient = FloatBuffer(count: network.parameterCount)
        indices = [Int32](repeating: 0, count: config.batchSize)
    }

    /// Fresh parameters from the seed (the config's `init` scheme) and initial BN state.
    public func initializeFresh() {
        network.initializeParameters(seed: config.seed, scheme: config.initScheme)
        network.resetState()
        step = 0
    }

    public var state: TrainingState {
        TrainingState(
            step: step, epoch: schedule.epoch(ofStep: step), parameters: network.parameters,
            momentum: optimizer.velocity, normalizationState: network.state, methodState: method.state)
    }

    /// What this run's checkpoints must match.
    public var identity: RunIdentity {
        RunIdentity(configHash: configHash, dataFingerprint: dataFingerprint, seed: config.seed)
    }

    /// Continue from the newest checkpoint that verifies (corrupt ones are reported and
    /// skipped); a run that has written none yet starts from step 0 with its stored config.
    /// Evaluation records written after the checkpoint are dropped: this run writes them again.
    public func restoreLatestCheckpoint() throws {
        let sizes = TrainingStateSizes(
            parameters: network.parameterCount, state: network.state.count, methodState: method.state.count)
        guard let restored = try run.latestCheckpoint(identity: identity, sizes: sizes) else {
            initializeFresh()
            try run.discardMetrics(afterStep: 0)
            output("no checkpoint yet in \(run.path) (the run stopped before its first): starting it from step 0")
            return
        }
        network.parameters.copy(from: restored.state.parameters)
        optimizer.velocity.copy(from: restored.state.momentum)
        network.state.copy(from: restored.state.normalizationState)
        method.state.copy(from: restored.state.methodState)
        step = restored.state.step
        try run.discardMetrics(afterStep: step)
        for problem in restored.skipped { output("warning: \(problem); using \(restored.path) instead") }
        output("resumed from \(restored.path) at step \(step)")
    }

    public func writeCheckpoint() throws {
        try run.saveCheckpoint(state, identity: identity, keep: config.keepCheckpoints)
    }

    /// The step at which this invocation stops.
    public var endStep: Int {
        config.maxSteps > 0 ? min(config.maxSteps, schedule.totalSteps) : schedule.totalSteps
    }

    /// One optimisation step.
    public func trainStep() throws -> StepStatistics {
        let epoch = schedule.epoch(ofStep: step)
        if permutation?.epoch != epoch { permutation = (epoch, schedule.permutation(epoch: epoch)) }
        let batch = schedule.batch(step: step, permutation: permutation!.order)
        for (i, index) in batch.enumerated() { indices[i] = index }
        let task = StepTask(step: step, epoch: epoch, indices: indices)
        let statistics = try executor.computeStep(task, parameters: network.parameters, gradientSum: gradient)
        let started = MonotonicClock.now()
        guard statistics.lossSum.isFinite else { throw NumericalError.nonFiniteLoss(step: step, value: statistics.lossSum) }
        try checkFinite(gradient)
        scale(count: gradient.count, by: 1 / Float(config.batchSize), gradient.pointer)
        method.addGradientTerm(parameters: network.parameters, gradient: gradient)
        optimizer.step(parameters: network.parameters, gradient: gradient, learningRate: rates.rate(atStep: step))
        if network.normalizationChannels > 0 { network.foldBatchStatistics(statistics.batchStatistics) }
        step += 1
        var result = statistics
        result.reduceSeconds += MonotonicClock.now() - started
        return result
    }

    private func checkFinite(_ buffer: FloatBuffer) throws {
        let values = buffer.pointer
        guard !VectorKernels.allFinite(values, count: buffer.count) else { return }
        for entry in network.parameterTable {
            for i in 0..<entry.count where !values[entry.offset + i].isFinite {
                throw NumericalError.nonFiniteGradient(step: step, parameter: entry.name, index: i, value: values[entry.offset + i])
            }
        }
    }

    /// Test and train loss/accuracy and σ of every weight matrix.
    public func evaluate() throws -> (train: EvaluationResult, test: EvaluationResult, sigma: [String: Float]) {
        let testCount = config.testEvalSamples > 0 ? min(config.testEvalSamples, data.test.count) : data.test.count
        let test = try executor.evaluate(split: .test, sampleCount: testCount, parameters: network.parameters, state: network.state)
        let trainCount = config.trainEvalSamples > 0 ? min(config.trainEvalSamples, data.train.count) : data.train.count
        let train = try executor.evaluate(split: .train, sampleCount: trainCount, parameters: network.parameters, state: network.state)
        return (train, test, SpectralNorms.largest(network: network, seed: config.seed))
    }

    public var parametersSHA256: String {
        SHA256.hex(SHA256.hash(floats: network.parameters.pointer, count: network.parameterCount))
    }

    /// Whether the schedule evaluates after `step` (an epoch boundary every eval_every_epochs).
    private func evaluationDue(afterStep step: Int) -> Bool {
        let stepsPerEpoch = schedule.stepsPerEpoch
        return step > 0 && step % stepsPerEpoch == 0 && config.evalEveryEpochs > 0 && (step / stepsPerEpoch) % config.evalEveryEpochs == 0
    }

    /// Train until the end (or max_steps), evaluating, checkpointing and reporting on the way;
    /// writes summary.json and returns it. A stop request (Ctrl-C, SIGTERM) — noticed between
    /// steps and between the chunks of an evaluation — writes a checkpoint and returns nil with
    /// no summary; resuming redoes an evaluation the stop cut short.
    @discardableResult
    public func train() throws -> TrainingSummary? {
        let start = MonotonicClock.now()
        let end = endStep
        let stepsPerEpoch = schedule.stepsPerEpoch
        // Resumed at its end with the summary already written: say so and change nothing.
        if step >= end, let text = run.readSummary(),
           let done = try? JSONDecoder().decode(TrainingSummary.self, from: Data(text.utf8)), done.steps == step {
            let state = step >= schedule.totalSteps
                ? "already finished" : "already at max_steps \(end) (give --max-steps 0 or a larger value to go on)"
            output(String(format: "run %@ %@: step %d/%d, test accuracy %.2f%% (summary.json); nothing to do",
                          run.path, state, step, schedule.totalSteps, 100 * done.testAccuracy))
            return done
        }
        output("training \(config.model.rawValue) (\(network.parameterCount) parameters) on \(data.train.name) with \(config.method.rawValue): "
            + "\(schedule.totalSteps) steps of \(config.batchSize) (\(stepsPerEpoch) per epoch, \(config.epochs) epochs), "
            + "\(executor.liveWorkers) worker(s), run directory \(run.path)")
        // How the step is cut (a function of the config alone; lanes and workers only schedule).
        let cut = config.chunksPerUnit > 1
            ? "each cut into \(config.chunksPerUnit) chunks of \(config.effectiveChunkSize)"
            : config.linearBlocks > 1 ? "each whole, its GEMMs in \(config.linearBlocks) fixed pieces" : "each whole"
        output("each step: \(config.unitsPerStep) unit(s) of \(config.ghostBatch) samples, \(cut)")
        var window = ProgressWindow()
        var sinceEvaluation = ProgressWindow()
        var lastPrint = MonotonicClock.now()
        var imagesTrained = 0
        var lastEvaluated: (train: EvaluationResult, test: EvaluationResult)?
        var lastEvaluatedStep = -1
        var stoppedByRequest = false
        if step < end && evaluationDue(afterStep: step) && (run.lastEvaluatedStep() ?? -1) < step {
            // A stop during this step's evaluation left it undone: do it now.
            do {
                lastEvaluated = try evaluateAndLog(sinceEvaluation, start: start)
                lastEvaluatedStep = step
            } catch is StopRequestedError {
                stoppedByRequest = true
            }
        }
        let pace = RemainingTime(firstStep: step, started: MonotonicClock.now())
        while step < end && !stoppedByRequest {
            if StopRequest.requested {
                stoppedByRequest = true
                break
            }
            let statistics: StepStatistics
            let stepStarted = MonotonicClock.now()
            do {
                statistics = try trainStep()
            } catch let error as NumericalError {
                throw error
            } catch {
                // The failed step changed nothing: keep the work done so far.
                if (try? writeCheckpoint()) != nil { output("checkpoint written at step \(step); continue with: \(resumeCommand) --resume \(run.path)") }
                throw error
            }
            imagesTrained += statistics.samples
            let stepSeconds = MonotonicClock.now() - stepStarted
            window.add(statistics, seconds: stepSeconds)
            sinceEvaluation.add(statistics, seconds: stepSeconds)
            observer?.didFinishStep(StepProgress(
                step: step, totalSteps: schedule.totalSteps, epoch: Double(step) / Double(stepsPerEpoch),
                learningRate: rates.rate(atStep: step - 1), statistics: statistics, seconds: stepSeconds))
            if config.checkpointEverySteps > 0 && step % config.checkpointEverySteps == 0 && step < end {
                try writeCheckpoint()
            }
            let epochDone = step % stepsPerEpoch == 0
            let epoch = step / stepsPerEpoch
            if epochDone && config.evalEveryEpochs > 0 && epoch % config.evalEveryEpochs == 0 && step < end {
                do {
                    lastEvaluated = try evaluateAndLog(sinceEvaluation, start: start)
                } catch is StopRequestedError {
                    stoppedByRequest = true
                    break
                }
                lastEvaluatedStep = step
                sinceEvaluation = ProgressWindow()
            }
            let now = MonotonicClock.now()
            if now - lastPrint >= config.progressSeconds || step == end {
                var line = window.line(step: step, totalSteps: schedule.totalSteps, stepsPerEpoch: stepsPerEpoch,
                                       lr: rates.rate(atStep: step - 1))
                if let left = pace.seconds(step: step, end: end, now: now) { line += " | \(RemainingTime.text(left)) left" }
                output(line)
                window = ProgressWindow()
                lastPrint = now
            }
        }
        if !stoppedByRequest && (lastEvaluatedStep != step || lastEvaluated == nil) {
            do {
                lastEvaluated = try evaluateAndLog(sinceEvaluation, start: start)
            } catch is StopRequestedError {
                stoppedByRequest = true
            }
        }
        try writeCheckpoint()
        if stoppedByRequest {
            output("stopped at step \(step) of \(schedule.totalSteps) on request, checkpoint written; continue with: \(resumeCommand) --resume \(run.path)")
            return nil
        }
        let wall = MonotonicClock.now() - start
        guard let final = lastEvaluated else { preconditionFailure("evaluation always runs before the summary") }
        let summary = TrainingSummary(
            name: config.name, model: config.model.rawValue, method: config.method.rawValue, dataset: config.dataset.rawValue,
            initScheme: config.initScheme.rawValue,
            trainAccuracy: final.train.accuracy, testAccuracy: final.test.accuracy,
            trainLoss: final.train.loss, testLoss: final.test.loss, steps: step, totalSteps: schedule.totalSteps,
            epochs: Double(step) / Double(stepsPerEpoch), wallSeconds: wall,
            imagesPerSecond: wall > 0 ? Double(imagesTrained) / wall : 0, parameterCount: network.parameterCount,
            parametersSHA256: parametersSHA256, configHash: configHash, dataFingerprint: dataFingerprint,
            workers: executor.liveWorkers, stoppedEarly: step < schedule.totalSteps,
            blasCore: BLASThreads.coreName, workerBLASCores: executor.workerKernels)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let text = String(decoding: try encoder.encode(summary), as: UTF8.self)
        try run.writeSummary(text + "\n")
        output(String(format: "done: step %d/%d, test accuracy %.2f%%, train accuracy %.2f%%, test loss %.4f, %.1f s, %.0f images/s",
                      step, schedule.totalSteps, 100 * final.test.accuracy, 100 * final.train.accuracy, final.test.loss, wall,
                      summary.imagesPerSecond))
        output("parameters sha256 \(summary.parametersSHA256)")
        if summary.stoppedEarly {
            output("stopped at max_steps \(step) of \(schedule.totalSteps); continue with: \(resumeCommand) --resume \(run.path) --max-steps 0")
        }
        return summary
    }

    private func evaluateAndLog(_ window: ProgressWindow, start: Double) throws -> (train: EvaluationResult, test: EvaluationResult) {
        let testCount = config.testEvalSamples > 0 ? min(config.testEvalSamples, data.test.count) : data.test.count
        let trainCount = config.trainEvalSamples > 0 ? min(config.trainEvalSamples, data.train.count) : data.train.count
        output("evaluating at step \(step): \(testCount) test and \(trainCount) train samples")
        let (train, test, sigma) = try evaluate()
        let record = EvaluationRecord(
            epoch: step / schedule.stepsPerEpoch, step: step, lr: rates.rate(atStep: max(step - 1, 0)),
            trainLoss: train.loss, trainAccuracy: train.accuracy, testLoss: test.loss, testAccuracy: test.accuracy,
            batchLoss: window.meanLoss, batchAccuracy: window.accuracy, sigma: sigma,
            wallSeconds: MonotonicClock.now() - start)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try run.appendMetrics(String(decoding: try encoder.encode(record), as: UTF8.self))
        observer?.didEvaluate(record)
        let largest = sigma.values.max() ?? 0
        output(String(format: "eval epoch %.2f step %d: test loss %.4f accuracy %.2f%% | train loss %.4f accuracy %.2f%% | max sigma %.3f",
                      Double(step) / Double(schedule.stepsPerEpoch), step, test.loss, 100 * test.accuracy,
                      train.loss, 100 * train.accuracy, largest))
        return (train, test)
    }
}

/// Step statistics gathered between two progress lines.
struct ProgressWindow {
    var steps = 0
    var lossSum = 0.0
    var correct = 0
    var samples = 0
    var compute = 0.0
    var transfer = 0.0
    var reduce = 0.0
    var workers = 0
    var bytes = 0
    /// The last step's units per worker, when they were not equal.
    var unevenUnits: [(worker: String, units: Int)] = []
    /// Wall time of the steps themselves (not of evaluations or checkpoints between them).
    var seconds = 0.0

    mutating func add(_ statistics: StepStatistics, seconds stepSeconds: Double) {
        steps += 1
        seconds += stepSeconds
        lossSum += statistics.lossSum
        correct += statistics.correct
        samples += statistics.samples
        compute += statistics.computeSeconds
        transfer += statistics.transferSeconds
        reduce += statistics.reduceSeconds
        workers = statistics.liveWorkers
        bytes += statistics.bytesMoved
        unevenUnits = statistics.unevenUnits
    }

    var meanLoss: Double { samples > 0 ? lossSum / Double(samples) : 0 }
    var accuracy: Double { samples > 0 ? Double(correct) / Double(samples) : 0 }

    func line(step: Int, totalSteps: Int, stepsPerEpoch: Int, lr: Double) -> String {
        let perStep = Double(max(steps, 1))
        var line = String(format: "step %d/%d epoch %.2f loss %.4f acc %.2f%% lr %g %.0f img/s workers %d | step %.3fs = compute %.3fs + transfer %.3fs + reduce/update %.3fs",
                          step, totalSteps, Double(step) / Double(stepsPerEpoch), meanLoss, 100 * accuracy, lr,
                          seconds > 0 ? Double(samples) / seconds : 0, workers, seconds / perStep,
                          compute / perStep, transfer / perStep, reduce / perStep)
        if bytes > 0 { line += String(format: " | %.2f MB moved per step", Double(bytes) / perStep / 1e6) }
        if !unevenUnits.isEmpty {
            line += " | units " + unevenUnits.map { "\($0.worker) \($0.units)" }.joined(separator: ", ")
        }
        return line
    }
}
