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

    @Test func launchsAggregatorsCarryOneParameterCopyAndTheirRangesBlocksToTheRoot() {
        // 4 workers under 1 aggregator: the root sends P once and gets block [0, 32) back; the
        // aggregator sends P to 4 workers and gets 4 blocks of 8 units, which it adds 3 times.
        let one = Self.model.aggregated(workers: 4, aggregators: 1)
        #expect(one.rootBytes == 4e6 * (1 + 1))
        #expect(one.transfer == 4e6 * (2 + 8) / 1e9)
        #expect(one.compute == 8 * 128 / 100.0)
        #expect(one.reduce == 3 * 1e6 / 1e9)
        // 8 workers under 2: [0, 16) and [16, 32) at the root (one add), 4 blocks per aggregator.
        let two = Self.model.aggregated(workers: 8, aggregators: 2)
        #expect(two.rootBytes == 4e6 * (2 + 2))
        #expect(two.transfer == 4e6 * (4 + 8) / 1e9)
        #expect(two.reduce == (1 + 3) * 1e6 / 1e9)
        // One worker per aggregator: the root's link carries what the star's does, plus a level.
        let each = Self.model.aggregated(workers: 3, aggregators: 3)
        #expect(each.rootBytes == Self.model.star(workers: 3).rootBytes)
        #expect(each.transfer > Self.model.star(workers: 3).transfer)
        // AggregatorTests' traffic run (hidden [512, 512], 6 units, 4 workers): measured 10.21 MB
        // per step at the star's coordinator, 3.40 MB under one aggregator (docs/scaling.md).
        var small = Self.model
        (small.parameters, small.units) = (283_652, 6)
        #expect(small.star(workers: 4).rootBytes == 4 * 283_652 * 9)
        #expect(small.aggregated(workers: 4, aggregators: 1).rootBytes == 4 * 283_652 * 3)
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

    /// --config: the model, batch and ghost batch of a training config; --aggregators: launch's tree.
    @Test func planTakesAConfigAndLaunchsAggregators() throws {
        let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "vanilla")
            .replacingOccurrences(of: "hidden: [24, 16]", with: "hidden: [512, 512]"))
        let result = try SSGDProcess.run([
            "plan", "--config", config, "--images-per-second", "5000", "--workers", "4", "--bandwidth", "0.1", "--aggregators", "1",
        ])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("283652 parameters"), "\(result.output)")
        #expect(result.output.contains("B = 96 in 6 units of 16"), "\(result.output)")
        #expect(result.output.contains("| 1 aggregators: step s |"), "\(result.output)")
        // The star's coordinator moves 9 P per step (10.21 MB), one aggregator's 3 P (3.40 MB).
        let row = try #require(result.output.split(separator: "\n").first { $0.hasPrefix("| 4 |") }, "\(result.output)")
        let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(cells.count == 10 && cells[1] == "0.1" && cells[6] == "10.21" && cells[9] == "3.40", "\(row)")
        for (arguments, complaint) in [
            (["--model", "mlp", "--config", config], "give --model NAME or --config FILE"),
            (["--config", config, "--batch", "64"], "come from the config's batch_size"),
        ] {
            let refused = try SSGDProcess.run(["plan", "--images-per-second", "5000"] + arguments)
            #expect(refused.status != 0 && refused.output.contains(complaint), "\(refused.output)")
        }
    }
}
