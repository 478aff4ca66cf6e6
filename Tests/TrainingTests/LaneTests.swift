import Data
import Engine
import Testing
import TestSupport
import Training

// Lanes only schedule: a step's gradient, loss and BN statistics are the same bits for any lane
// count, with units cut into chunks or not; a chunked unit computes the same numbers as the
// whole unit (up to rounding), BN statistics included.

struct LaneTests {
    /// A DenseNet with ghost BN on synthetic images: 4 units of 16 per step.
    static func config(method: Method = .vanilla, chunkSize: Int) -> TrainingConfig {
        var config = Fixtures.syntheticConfig(method: method)
        config.model = .densenet
        config.depth = 7
        config.growth = 4
        config.syntheticShape = [3, 8, 8]
        config.chunkSize = chunkSize
        return config
    }

    /// The step's gradient sum, loss and BN statistics with `lanes` lanes.
    static func step(_ config: TrainingConfig, lanes: Int) throws -> (gradient: [UInt32], loss: Double, statistics: [UInt32]) {
        let data = try DatasetLoader.load(config)
        let network = try ModelFactory.make(config, inputShape: data.shape, classes: data.classes)
        network.initializeParameters(seed: 11)
        let executor = LocalExecutor(
            runner: try LaneRunner(network: network, data: data, config: config, lanes: lanes), unitsPerStep: config.unitsPerStep)
        let schedule = try StepSchedule(samples: data.train.count, batchSize: config.batchSize, epochs: 1, seed: config.seed)
        let task = StepTask(step: 0, epoch: 0, indices: Array(schedule.batch(step: 0, permutation: schedule.permutation(epoch: 0))))
        let gradient = FloatBuffer(count: network.parameterCount)
        let statistics = try executor.computeStep(task, parameters: network.parameters, gradientSum: gradient)
        return (gradient.toArray().map(\.bitPattern), statistics.lossSum, statistics.batchStatistics.map { $0.bitPattern })
    }

    @Test(arguments: [Method.vanilla, .adversarial])
    func anyLaneCountGivesTheSameBitsWithChunkedUnits(method: Method) throws {
        let config = Self.config(method: method, chunkSize: 4)  // 4 chunks per unit
        #expect(config.chunksPerUnit == 4)
        let reference = try Self.step(config, lanes: 1)
        for lanes in 2...5 {
            let other = try Self.step(config, lanes: lanes)
            #expect(other.gradient == reference.gradient, "\(lanes) lanes")
            #expect(other.loss.bitPattern == reference.loss.bitPattern, "\(lanes) lanes")
            #expect(other.statistics == reference.statistics, "\(lanes) lanes")
        }
    }

    /// Its chunks share transformed kernels (SharedKernelSlots), also across the adversarial
    /// method's two passes per chunk.
    @Test(arguments: [Method.vanilla, .adversarial])
    func aModelWithWinogradLayersGivesTheSameBitsOnAnyLaneCount(method: Method) throws {
        var config = Self.config(method: method, chunkSize: 4)
        config.growth = 36  // wide enough for Winograd on the 8×8, 4×4 and 2×2 maps
        #expect(ModelFactory.hasWinogradLayers(config))
        let reference = try Self.step(config, lanes: 1)
        for lanes in 2...3 {
            let other = try Self.step(config, lanes: lanes)
            #expect(other.gradient == reference.gradient, "\(lanes) lanes")
            #expect(other.statistics == reference.statistics, "\(lanes) lanes")
        }
    }

    @Test func anyLaneCountGivesTheSameBitsWithWholeUnits() throws {
        let config = Self.config(chunkSize: 16)
        #expect(config.chunksPerUnit == 1)
        let reference = try Self.step(config, lanes: 1)
        for lanes in [2, 3, 4] { #expect(try Self.step(config, lanes: lanes).gradient == reference.gradient, "\(lanes) lanes") }
    }

    /// Chunking changes only the order of sums: the chunked step agrees with the whole-unit step
    /// to float rounding, BN batch statistics included (they cross the chunk collective).
    @Test func aChunkedUnitComputesWhatTheWholeUnitComputes() throws {
        let whole = try Self.step(Self.config(chunkSize: 16), lanes: 2)
        let chunked = try Self.step(Self.config(chunkSize: 4), lanes: 2)
        func floats(_ bits: [UInt32]) -> [Float] { bits.map { Float(bitPattern: $0) } }
        let a = floats(whole.gradient), b = floats(chunked.gradient)
        let scale = a.map(abs).max() ?? 1
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= 1e-4 * scale, "worst \(worst) of \(scale)")
        #expect(abs(whole.loss - chunked.loss) <= 1e-5 * abs(whole.loss))
        let sa = floats(whole.statistics), sb = floats(chunked.statistics)
        #expect(!sa.isEmpty && sa.count == sb.count)
        for (x, y) in zip(sa, sb) { #expect(abs(x - y) <= 1e-4 * max(1, abs(x))) }
    }

    @Test func theAutomaticChunkSizeDependsOnTheConfigOnly() {
        var config = TrainingConfig()
        config.model = .vgg16  // batch-normalised units are chunked
        config.batchSize = 64
        config.ghostBatch = 64
        #expect(config.effectiveChunkSize == 32)  // one unit → 2 chunks of 32
        config.batchSize = 4096
        config.ghostBatch = 128
        #expect(config.effectiveChunkSize == 128)  // 32 units → not cut
        config.batchSize = 128
        config.ghostBatch = 128
        #expect(config.effectiveChunkSize == 64)  // one unit of 128 → 2 chunks of 64
        config.batchSize = 512
        #expect(config.effectiveChunkSize == 128)  // 4 units → not cut
        config.batchSize = 96
        config.ghostBatch = 16
        #expect(config.effectiveChunkSize == 16)  // chunks keep ≥ 32 samples: not cut
        config.chunkSize = 4
        #expect(config.effectiveChunkSize == 4)
        config.chunkSize = 5
        #expect(throws: ConfigError.self) { try config.validate() }
        #expect(config.linearBlocks == 1)
    }

    @Test func aSmallMLPStepSplitsItsGEMMsInsteadOfChunkingItsUnit() {
        var config = TrainingConfig()
        config.model = .mlp
        config.batchSize = 64
        config.ghostBatch = 64
        #expect(config.linearBlocks == 2 && config.effectiveChunkSize == 64 && config.chunksPerUnit == 1)
        config.batchSize = 4096
        config.ghostBatch = 128
        #expect(config.linearBlocks == 1 && config.effectiveChunkSize == 128)  // 32 units share the lanes
        config.batchSize = 128
        config.chunkSize = 64  // asked for: chunks, not blocks
        #expect(config.linearBlocks == 1 && config.effectiveChunkSize == 64)
        config.chunkSize = 0
        config.model = .nin
        #expect(config.linearBlocks == 1 && config.effectiveChunkSize == 64)
        // The hash follows the computation: blocks, chunks and neither differ.
        var mlp = TrainingConfig()
        mlp.batchSize = 128
        mlp.ghostBatch = 128
        var chunked = mlp
        chunked.chunkSize = 64
        var whole = mlp
        whole.chunkSize = 128
        #expect(Set([mlp.trajectoryHash, chunked.trajectoryHash, whole.trajectoryHash]).count == 3)
    }
}
