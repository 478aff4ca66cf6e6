#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Softmax cross-entropy over logits (N, K), numerically stable (log-sum-exp with the row max
// subtracted). The loss is returned as a SUM over the batch (in double); callers divide by the
// global batch size once, after reduction, so unit results add up exactly.

public final class SoftmaxCrossEntropy {
    public let classes: Int
    private var probabilities: FloatBuffer?  // (N, K)
    private var gradient: FloatBuffer?  // (N, K)
    private var labels: UnsafePointer<Int32>?
    private var lastBatch = 0

    public init(classes: Int) { self.classes = classes }

    public func reserve(maxBatch: Int) {
        if let probabilities, probabilities.count >= maxBatch * classes { return }
        probabilities = FloatBuffer(count: maxBatch * classes)
        gradient = FloatBuffer(count: maxBatch * classes)
    }

    /// Loss summed over the batch, the number of correct arg-max predictions, and (optionally)
    /// each example's loss.
    @discardableResult
    public func forward(
        logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int,
        perExampleLoss: UnsafeMutablePointer<Float>? = nil
    ) -> (lossSum: Double, correct: Int) {
        guard let p = probabilities?.pointer else {
            preconditionFailure("SoftmaxCrossEntropy: reserve(maxBatch:) not called")
        }
        self.labels = labels
        lastBatch = batch
        var lossSum = 0.0
        var correct = 0
        for n in 0..<batch {
            let row = logits + n * classes
            let out = p + n * classes
            var maxValue = row[0]
            var argmax = 0
            for k in 1..<classes where row[k] > maxValue {
                maxValue = row[k]
                argmax = k
            }
            var sum: Float = 0
            for k in 0..<classes {
                let e = expf(row[k] - maxValue)
                out[k] = e
                sum += e
            }
            let inverse = 1 / sum
            for k in 0..<classes { out[k] *= inverse }
            let label = Int(labels[n])
            precondition(label >= 0 && label < classes, "label \(label) outside 0..<\(classes)")
            // −log softmax_label = log Σ exp(z − max) − (z_label − max)
            let loss = Double(logf(sum)) - Double(row[label] - maxValue)
            perExampleLoss?[n] = Float(loss)
            lossSum += loss
            if argmax == label { correct += 1 }
        }
        return (lossSum, correct)
    }

    /// ∂(scale · Σ loss)/∂logits = scale · (softmax − onehot), for the last forward.
    public func backward(scale: Float) -> UnsafeMutablePointer<Float> {
        guard let p = probabilities?.pointer, let g = gradient?.pointer, let labels else {
            preconditionFailure("SoftmaxCrossEntropy: backward before forward")
        }
        for n in 0..<lastBatch {
            let label = Int(labels[n])
            for k in 0..<classes {
                let indicator: Float = k == label ? 1 : 0
                g[n * classes + k] = scale * (p[n * classes + k] - indicator)
            }
        }
        return g
    }
}
