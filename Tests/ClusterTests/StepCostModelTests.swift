import Cluster
import Testing
import TestSupport

// The cost model of docs/scaling.md: bytes on the coordinator's link, compute of the largest
// shard, the tree's link load independent of W, and where communication overtakes compute.

struct StepCostModelTests {
    /// P = 1M floats, 32 units of 128, 100 images/s per worker, 1 GB/s, no latency.
    static let model = StepCostModel(
        parameters: 1_000_000, units: 32, unitSize: 128, imagesPerSecondPerWorker: 100,
        linkBytesPerSecond: 1e9, latencySeconds: 0, addFloatsPerSecond: 1e9, updateSeconds: 0.01)

    @Test func theStarsCoordinatorCarriesParametersToEveryWorkerAndEveryBlockBack() {
        // 2 workers: units [0,16) and [16,32) are one aligned block each.
        let two = Self.model.star(workers: 2)
        #expect(two.rootBytes == 4e6 * (2 + 2))
        #expect(two.compute == 16 * 128 / 100.0)
        #expect(two.reduce == 1e6 / 1e9)  // one add combines the two blocks
        // 3 workers: [0,10) = 8+2, [10,21) = 2+4+4+1, [21,32) = 1+2+8 → 9 aligned blocks.
        let three = Self.model.star(workers: 3)
        #expect(three.rootBytes == 4e6 * (3 + 9))
        #expect(three.compute == 11 * 128 / 100.0)
        // More workers than units: only 32 get work.
        #expect(Self.model.star(workers: 128) == Self.model.star(workers: 32))
    }

    @Test func theTreesCoordinatorLinkDoesNotGrowWithTheWorkers() {
        let eight = Self.model.tree(workers: 8, fanIn: 4)
        let thirtyTwo = Self.model.tree(workers: 32, fanIn: 4)
        #expect(eight.rootBytes == thirtyTwo.rootBytes)
        #expect(Self.model.star(workers: 32).rootBytes > 4 * thirtyTwo.rootBytes)
        #expect(thirtyTwo.transfer > eight.transfer)  // one more level
    }

    @Test func theWallIsWhereCommunicationOvertakesCompute() throws {
        var slow = Self.model
        slow.linkBytesPerSecond = 1e8
        let wall = try #require(slow.wall { slow.star(workers: $0) })
        #expect(wall > 1)
        let before = slow.star(workers: wall / 2)
        let at = slow.star(workers: wall)
        #expect(before.transfer + before.reduce <= before.compute)
        #expect(at.transfer + at.reduce > at.compute)
    }

    @Test func planPrintsATableRowPerWorkerCountAndSpeed() throws {
        let result = try SSGDProcess.run(["plan", "--model", "mlp", "--images-per-second", "5000", "--workers", "2,8", "--bandwidth", "1,10"])
        #expect(result.status == 0, "\(result.output)")
        let rows = result.output.split(separator: "\n").filter { $0.hasPrefix("| 2 |") || $0.hasPrefix("| 8 |") }
        #expect(rows.count == 4, "\(result.output)")
        #expect(result.output.contains("1863690 parameters"))
        let refused = try SSGDProcess.run(["plan", "--model", "mlp", "--images-per-second", "5000", "--workers", "two"])
        #expect(refused.status != 0 && refused.output.contains("--workers takes whole numbers"), "\(refused.output)")
    }
}
