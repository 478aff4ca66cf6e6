import Data
import Engine
import Foundation
import Testing
import TestSupport
import Training

// The chunks of a unit transform each Winograd layer's kernel once between them
// (SharedKernelSlots.swift): they must compute the same bits as chunks that each transform
// their own, whichever chunk arrives first.

struct SharedKernelSlotsTests {
    static let chunkSize = 8

    /// Each chunk's weight gradient after one forward and backward pass of a 2-chunk unit of
    /// the Winograd DenseNet of LaneTests, with or without shared slots; `late` starts that
    /// chunk 20 ms after the other. With `pieces` the chunks take each other's GEMMs
    /// (SharedPieces), and `lagging` goes on from each meeting only once the other chunk has
    /// arrived at the next one.
    static func gradients(
        shared: Bool, late: Int?, pieces: SharedPieces? = nil, lagging: Int? = nil
    ) throws -> [[UInt32]] {
        var config = LaneTests.config(chunkSize: chunkSize)
        config.growth = 36  // wide enough for Winograd on the 8×8, 4×4 and 2×2 maps
        let (shape, classes) = DatasetLoader.inputShapeAndClasses(config)
        let network = try ModelFactory.make(config, inputShape: shape, classes: classes)
        network.initializeParameters(seed: 5)
        let replica = try ModelFactory.make(config, inputShape: shape, classes: classes, sharingWith: network)
        let chunks = [network, replica]
        for chunk in chunks { chunk.reserve(maxBatch: chunkSize) }
        #expect(network.winogradKernelCapacity > 0)
        let slots = shared ? SharedKernelSlots(capacity: network.winogradKernelCapacity) : nil
        let barrier = ChunkBarrier(participants: chunks.count, tokens: nil, pieces: pieces, idleSeconds: 10)
        let collective = LaggingCollective(barrier, lagging: lagging)

        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 1000
        }
        let input = FloatBuffer((0..<(chunks.count * chunkSize * shape.count)).map { _ in next() })
        let logitGradients = FloatBuffer((0..<(chunks.count * chunkSize * classes)).map { _ in next() / 100 })

        let pool = LanePool(threads: chunks.count, name: "test-chunk")
        try pool.run(count: chunks.count) { index in
            if index == late { Thread.sleep(forTimeInterval: 0.02) }
            let context = ForwardContext(
                mode: .training, seed: 1, step: 0, unit: 0,
                chunk: ChunkContext(
                    collective: collective, index: index, count: chunks.count, sampleOffset: index * chunkSize,
                    kernels: slots, pieces: pieces))
            _ = chunks[index].forward(input.pointer + index * chunkSize * shape.count, batch: chunkSize, context: context)
            chunks[index].backward(logitGradient: logitGradients.pointer + index * chunkSize * classes, batch: chunkSize)
        }
        return chunks.map { $0.gradients.toArray().map(\.bitPattern) }
    }

    @Test func chunksSharingTransformedKernelsComputeTheSameBitsAsChunksThatDoNot() throws {
        var config = LaneTests.config(chunkSize: Self.chunkSize)
        config.growth = 36
        #expect(ModelFactory.hasWinogradLayers(config))
        let own = try Self.gradients(shared: false, late: nil)
        #expect(own[0].contains { $0 != 0 } && own[1].contains { $0 != 0 })
        for late in [nil, 0, 1] {
            #expect(try Self.gradients(shared: true, late: late) == own, "late chunk: \(String(describing: late))")
        }
    }

    /// The memory budget counts the two slots a chunked unit's group shares (VGG-16's largest
    /// set: 16 · 512 · 512 floats), and none when units are not chunked.
    @Test func theMemoryBudgetCountsTheSharedSlotsOfChunkedUnitsOnly() throws {
        var config = Fixtures.syntheticConfig()
        config.model = .vgg16
        config.syntheticShape = [3, 32, 32]
        config.threads = 2
        config.batchSize = 64
        config.ghostBatch = 64
        #expect(config.chunksPerUnit == 2)
        let part = "transformed kernels shared by the chunks"
        let chunked = try MemoryBudget.estimate(config).filter { $0.part == part }.map(\.bytes)
        #expect(chunked == [4 * 2 * 16 * 512 * 512])
        config.batchSize = 4096
        config.ghostBatch = 128
        #expect(config.chunksPerUnit == 1)
        #expect(try MemoryBudget.estimate(config).allSatisfy { $0.part != part })
    }
}

/// A chunk barrier from which one of two chunks goes on only once the other has arrived at the
/// next meeting (or after 0.1 s, past the last one), so that the other waits there while the
/// lagging chunk does its work.
final class LaggingCollective: ChunkCollective, @unchecked Sendable {
    // Unchecked Sendable: `arrivals` is used under `condition`.
    let barrier: ChunkBarrier
    let lagging: Int?
    private let condition = NSCondition()
    private var arrivals = [0, 0]

    init(_ barrier: ChunkBarrier, lagging: Int?) {
        self.barrier = barrier
        self.lagging = lagging
    }

    func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int, participant: Int) {
        condition.lock()
        arrivals[participant] += 1
        let arrival = arrivals[participant]
        condition.broadcast()
        condition.unlock()
        barrier.allReduceSum(values, count: count, participant: participant)
        guard participant == lagging else { return }
        let deadline = Date().addingTimeInterval(0.1)
        condition.lock()
        while arrivals[1 - participant] <= arrival && condition.wait(until: deadline) {}
        condition.unlock()
        usleep(500)  // the other is in the meeting by now, looking for pieces
    }
}
