// A listener the Trainer tells about each finished step and each evaluation, on the training
// thread (the metrics exporter is one). The Trainer calls it after the step's update and after
// the evaluation's line is written; an observer must not throw and should return quickly.

/// What the Trainer knows after one optimisation step.
public struct StepProgress: Sendable {
    /// Steps done (the step just finished is `step - 1`).
    public var step: Int
    public var totalSteps: Int
    /// Steps done ÷ steps per epoch.
    public var epoch: Double
    /// The learning rate the step used.
    public var learningRate: Double
    /// The executor's statistics, reduce/update time included.
    public var statistics: StepStatistics
    /// Wall time of the whole step.
    public var seconds: Double

    public init(step: Int, totalSteps: Int, epoch: Double, learningRate: Double, statistics: StepStatistics, seconds: Double) {
        self.step = step
        self.totalSteps = totalSteps
        self.epoch = epoch
        self.learningRate = learningRate
        self.statistics = statistics
        self.seconds = seconds
    }
}

public protocol TrainingObserver: AnyObject {
    func didFinishStep(_ progress: StepProgress)
    func didEvaluate(_ record: EvaluationRecord)
}
