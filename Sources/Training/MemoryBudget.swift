import Data
import Engine
import Foundation

// Refuse a run that cannot fit in this machine's memory before anything large is allocated,
// naming the figures (issue: `hidden=4000000000` used to die in "failed to allocate").
//
// A process that trains holds: the parameters and BN state, one replica per lane context
// (gradients, activations of one chunk), each lane group's unit-tree partial sums (up to two
// parameter-sized buffers per level), the step's gradient sum, Nesterov momentum and the
// method's state, the transformed Winograd kernels a group's chunks share, and the data set
// (train + test, float32). The estimate errs high; the limit is the machine's total memory,
// so a run that fits is never refused.

public struct MemoryBudgetError: Error, CustomStringConvertible {
    public var description: String
}

public enum MemoryBudget {
    /// Bytes this process will need for `config`, by part.
    public static func estimate(_ config: TrainingConfig) throws -> [(part: String, bytes: Double)] {
        let (shape, classes) = DatasetLoader.inputShapeAndClasses(config)
        let model = MemoryEstimate(layers: try ModelFactory.layers(config, inputShape: shape, classes: classes))
        let units = max(config.unitsPerStep, 1)
        // A group's partial sums: the tree's blocks of a range it grows from one end (at most
        // two per level when the range is not aligned), plus the one being formed.
        let treeLevels = Double(2 * UnitTree.depth(units: units) + 1)
        let samples = DatasetLoader.expectedSampleCount(config.dataSpec)
        // Lanes: G groups of k chunk replicas (LaneRunner), each with its own gradients.
        let chunks = config.chunksPerUnit
        let groups = max(1, config.lanes / chunks)
        let replicas = Double(groups * chunks)
        // A group's chunks share two slots of the largest transformed Winograd kernel set.
        let sharedKernels = chunks > 1 ? 4 * 2 * model.largestWinogradKernel * Double(groups) : 0
        var parts: [(part: String, bytes: Double)] = [
            ("parameters and BN state", 4 * (model.parameters + model.state)),
            ("gradients of \(groups * chunks) lane replica(s)", 4 * model.parameters * replicas),
            ("gradient sums, momentum and method state", 4 * model.parameters * (Double(groups) * treeLevels + 3)),
            ("activations of \(groups * chunks) replica(s) of \(config.effectiveChunkSize) samples",
             4 * replicas * Double(config.effectiveChunkSize) * model.activationsPerSample),
            ("data (\(Int(samples)) samples)", 4 * samples * Double(shape.count)),
        ]
        if sharedKernels > 0 { parts.append(("transformed kernels shared by the chunks", sharedKernels)) }
        return parts
    }

    /// Throws when the estimate exceeds this machine's memory.
    public static func check(_ config: TrainingConfig, machineBytes: Double? = MemoryBudget.machineBytes()) throws {
        guard let machineBytes else { return }
        let parts = try estimate(config)
        let total = parts.map(\.bytes).reduce(0, +)
        guard total > machineBytes else { return }
        let detail = parts.filter { $0.bytes >= 0.01 * total }.map { "\($0.part) \(gigabytes($0.bytes))" }.joined(separator: ", ")
        throw MemoryBudgetError(description:
            "this run needs about \(gigabytes(total)) of memory (\(detail)) and this machine has \(gigabytes(machineBytes)); "
            + "make the model or the data smaller (hidden, synthetic_shape, synthetic_train_samples, ghost_batch)")
    }

    static func gigabytes(_ bytes: Double) -> String {
        bytes >= 1e15 ? String(format: "%.3g PB", bytes / 1e15) : String(format: "%.1f GB", bytes / 1e9)
    }

    /// MemTotal from /proc/meminfo; nil where that file does not exist.
    public static func machineBytes() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemTotal:") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, let kilobytes = Double(fields[1]) { return kilobytes * 1024 }
        }
        return nil
    }
}
