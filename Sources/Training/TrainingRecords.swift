// What a run writes: one EvaluationRecord per line of metrics.jsonl, and summary.json.

public struct EvaluationRecord: Codable, Sendable {
    public var epoch: Int
    public var step: Int
    public var lr: Double
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var testLoss: Double
    public var testAccuracy: Double
    /// Mean loss and accuracy of the training batches since the previous evaluation.
    public var batchLoss: Double
    public var batchAccuracy: Double
    /// Largest singular value of every regularised weight matrix, by name.
    public var sigma: [String: Float]
    public var wallSeconds: Double

    enum CodingKeys: String, CodingKey {
        case epoch, step, lr, sigma
        case trainLoss = "train_loss", trainAccuracy = "train_accuracy"
        case testLoss = "test_loss", testAccuracy = "test_accuracy"
        case batchLoss = "batch_loss", batchAccuracy = "batch_accuracy"
        case wallSeconds = "wall_seconds"
    }
}

public struct TrainingSummary: Codable, Sendable {
    public var name: String
    public var model: String
    public var method: String
    public var dataset: String
    /// The config's `init` (absent from summaries written before the key existed).
    public var initScheme: String?
    public var trainAccuracy: Double
    public var testAccuracy: Double
    public var trainLoss: Double
    public var testLoss: Double
    public var steps: Int
    public var totalSteps: Int
    public var epochs: Double
    public var wallSeconds: Double
    public var imagesPerSecond: Double
    public var parameterCount: Int
    public var parametersSHA256: String
    public var configHash: String
    public var dataFingerprint: String
    public var workers: Int
    public var stoppedEarly: Bool
    /// This process's OpenBLAS kernel (core name); nil in summaries written before it was recorded.
    public var blasCore: String?
    /// A cluster run's worker kernels (GradientExecutor.workerKernels); nil in process.
    public var workerBLASCores: [String]?

    enum CodingKeys: String, CodingKey {
        case name, model, method, dataset, steps, epochs, workers
        case initScheme = "init"
        case trainAccuracy = "train_accuracy", testAccuracy = "test_accuracy"
        case trainLoss = "train_loss", testLoss = "test_loss"
        case totalSteps = "total_steps", wallSeconds = "wall_seconds"
        case imagesPerSecond = "images_per_second", parameterCount = "parameter_count"
        case parametersSHA256 = "parameters_sha256", configHash = "config_hash"
        case dataFingerprint = "data_fingerprint", stoppedEarly = "stopped_early"
        case blasCore = "blas_core", workerBLASCores = "worker_blas_cores"
    }
}

public enum NumericalError: Error, CustomStringConvertible {
    case nonFiniteLoss(step: Int, value: Double)
    case nonFiniteGradient(step: Int, parameter: String, index: Int, value: Float)

    public var description: String {
        switch self {
        case .nonFiniteLoss(let step, let value):
            return "training diverged: loss is \(value) at step \(step). Lower lr, or check the data for NaN/Inf values; the last checkpoint before this step is intact"
        case .nonFiniteGradient(let step, let parameter, let index, let value):
            return "training diverged: gradient of \(parameter)[\(index)] is \(value) at step \(step). Lower lr; the last checkpoint before this step is intact"
        }
    }
}
