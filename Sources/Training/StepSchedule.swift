import Data
import Engine

// Step t → (epoch, slice of that epoch's permutation). The global batch of step t is
// perm_e[j·B ..< (j+1)·B] with e = t / stepsPerEpoch and j = t % stepsPerEpoch; perm_e is
// seeded by (seed, e). The last N mod B samples of each epoch's permutation are not used.
// Everything is a function of the step number, so a resumed run picks up exactly here.

public struct StepSchedule: Sendable {
    public let samples: Int
    public let batchSize: Int
    public let epochs: Int
    public let seed: UInt64

    public init(samples: Int, batchSize: Int, epochs: Int, seed: UInt64) throws {
        guard samples >= batchSize else {
            throw DataError.tooSmall(
                "batch_size \(batchSize) is larger than the training set (\(samples) samples); lower batch_size")
        }
        self.samples = samples
        self.batchSize = batchSize
        self.epochs = epochs
        self.seed = seed
    }

    public var stepsPerEpoch: Int { samples / batchSize }
    public var totalSteps: Int { stepsPerEpoch * epochs }

    public func epoch(ofStep step: Int) -> Int { step / stepsPerEpoch }

    /// The permutation of epoch `epoch`.
    public func permutation(epoch: Int) -> [Int32] {
        seededPermutation(count: samples, keys: seed, 0x4550_4F43, UInt64(epoch))
    }

    /// Sample indices of step `step`, given that epoch's permutation.
    public func batch(step: Int, permutation: [Int32]) -> ArraySlice<Int32> {
        let start = (step % stepsPerEpoch) * batchSize
        return permutation[start..<(start + batchSize)]
    }
}

/// Learning rate: lr0 until 50% of the total steps, lr0/10 until 75%, then lr0/100 (the paper).
public struct LearningRateSchedule: Sendable {
    public let initial: Double
    public let totalSteps: Int

    public init(initial: Double, totalSteps: Int) {
        self.initial = initial
        self.totalSteps = totalSteps
    }

    public func rate(atStep step: Int) -> Double {
        var rate = initial
        if 2 * step >= totalSteps { rate /= 10 }
        if 4 * step >= 3 * totalSteps { rate /= 10 }
        return rate
    }
}
