import Training

// Predicted step time of synchronous SGD on W workers (issue 11, docs/scaling.md): compute +
// transfer + reduce + update, with no overlap between them (an upper bound: in practice a
// worker starts computing as soon as its parameters arrive). Bytes are float32.
//
// Star (what ssgd runs today): the coordinator sends the parameters (4P bytes) to each of the W
// workers one after another on its own link, every worker computes its shard of U/W units,
// and returns one gradient frame (4P bytes) per aligned block of the unit tree (UnitTree) in
// its shard; the coordinator adds the blocks in the tree and applies the update. Its link
// carries 4P·(W + Σ blocks) bytes per step: O(P·W).
//
// Tree (`ssgd aggregator`, `launch --aggregators`): aggregators with fan-in F pre-reduce
// aligned unit blocks of their children, so every link — the coordinator's included — carries
// 4P·(F + F·b) bytes per level whatever W is, and there are ⌈log_F W⌉ levels. `aggregated`
// is the one-level tree `launch --aggregators A` builds, block for block.

public struct StepCostModel: Sendable {
    /// Trainable parameters P.
    public var parameters: Int
    /// Work units per step (batch / ghost_batch) and samples per unit.
    public var units: Int
    public var unitSize: Int
    /// Training throughput of one worker (all its lanes), images per second.
    public var imagesPerSecondPerWorker: Double
    /// The slowest link's bandwidth, bytes per second, and one-way latency, seconds.
    public var linkBytesPerSecond: Double
    public var latencySeconds: Double
    /// The coordinator's rate of adding float vectors (floats per second) and its update time.
    public var addFloatsPerSecond: Double
    public var updateSeconds: Double

    public init(
        parameters: Int, units: Int, unitSize: Int, imagesPerSecondPerWorker: Double, linkBytesPerSecond: Double,
        latencySeconds: Double, addFloatsPerSecond: Double, updateSeconds: Double
    ) {
        self.parameters = parameters
        self.units = units
        self.unitSize = unitSize
        self.imagesPerSecondPerWorker = imagesPerSecondPerWorker
        self.linkBytesPerSecond = linkBytesPerSecond
        self.latencySeconds = latencySeconds
        self.addFloatsPerSecond = addFloatsPerSecond
        self.updateSeconds = updateSeconds
    }

    public struct Prediction: Sendable, Equatable {
        public var compute: Double
        public var transfer: Double
        public var reduce: Double
        public var update: Double
        /// Bytes on the coordinator's link per step.
        public var rootBytes: Double
        public var total: Double { compute + transfer + reduce + update }
    }

    /// Units of the largest shard and the aligned blocks every worker returns, for W workers
    /// given contiguous shards as the coordinator makes them.
    func shards(workers: Int) -> (largest: Int, blocks: Int) {
        let used = min(workers, units)
        var largest = 0
        var blocks = 0
        for w in 0..<used {
            let first = units * w / used
            let count = units * (w + 1) / used - first
            largest = max(largest, count)
            blocks += UnitTree.blocks(first: first, count: count).count
        }
        return (largest, blocks)
    }

    var parameterBytes: Double { 4 * Double(parameters) }

    public func star(workers: Int) -> Prediction {
        let (largest, blocks) = shards(workers: workers)
        let used = Double(min(workers, units))
        let compute = Double(largest * unitSize) / imagesPerSecondPerWorker
        let rootBytes = parameterBytes * (used + Double(blocks))
        let transfer = rootBytes / linkBytesPerSecond + 2 * latencySeconds
        let reduce = Double(max(blocks - 1, 0)) * Double(parameters) / addFloatsPerSecond
        return Prediction(compute: compute, transfer: transfer, reduce: reduce, update: updateSeconds, rootBytes: rootBytes)
    }

    /// Aggregators of fan-in `fanIn` over the workers (the design of issue 11 item 2).
    public func tree(workers: Int, fanIn: Int) -> Prediction {
        let used = min(workers, units)
        let (largest, blocks) = shards(workers: used)
        let compute = Double(largest * unitSize) / imagesPerSecondPerWorker
        var levels = 0
        var width = 1
        while width < used {
            width *= fanIn
            levels += 1
        }
        // Per level, a parent sends parameters to F children and takes back about one block
        // each (aggregated blocks stay aligned: at most 2 per child, ~1 on average).
        let perChildBlocks = max(1.0, Double(blocks) / Double(used))
        let levelBytes = parameterBytes * Double(min(fanIn, used)) * (1 + perChildBlocks)
        let transfer = Double(levels) * (levelBytes / linkBytesPerSecond + 2 * latencySeconds)
        let reduce = Double(levels) * Double(fanIn) * perChildBlocks * Double(parameters) / addFloatsPerSecond
        return Prediction(compute: compute, transfer: transfer, reduce: reduce, update: updateSeconds, rootBytes: levelBytes)
    }

    /// What `ssgd launch --workers W --aggregators A` builds: one level of A aggregators below the
    /// coordinator, worker k under aggregator k·A/W. The coordinator cuts the step's units over
    /// the aggregators and each aggregator cuts its range over its workers (ShardPlan both
    /// times); an aggregator sends up the aligned blocks of its range (UnitTree.blocks), its
    /// workers those of theirs. The two levels' transfers add up (no overlap): the coordinator's
    /// link, then the busiest aggregator's link to its workers; so do their additions.
    public func aggregated(workers: Int, aggregators: Int) -> Prediction {
        let used = min(workers, units)
        let groups = max(1, min(aggregators, used))
        // Workers per aggregator, as launch assigns them (contiguous groups).
        var members = [Int](repeating: 0, count: groups)
        for k in 0..<used { members[k * groups / used] += 1 }
        var rootBlocks = 0, largest = 0, busiestLink = 0, mostAdds = 0
        let ranges = ShardPlan.ranges(units: units, workers: groups)
        for (range, children) in zip(ranges, members) {
            let own = UnitTree.blocks(first: range.lowerBound, count: range.count).count
            rootBlocks += own
            var childBlocks = 0
            let parts = ShardPlan.ranges(units: range.count, workers: children)
            for part in parts {
                largest = max(largest, part.count)
                childBlocks += UnitTree.blocks(first: range.lowerBound + part.lowerBound, count: part.count).count
            }
            busiestLink = max(busiestLink, parts.count + childBlocks)
            mostAdds = max(mostAdds, childBlocks - own)
        }
        let compute = Double(largest * unitSize) / imagesPerSecondPerWorker
        let rootBytes = parameterBytes * Double(ranges.count + rootBlocks)
        let transfer = (rootBytes + parameterBytes * Double(busiestLink)) / linkBytesPerSecond + 4 * latencySeconds
        let reduce = Double(rootBlocks - 1 + mostAdds) * Double(parameters) / addFloatsPerSecond
        return Prediction(compute: compute, transfer: transfer, reduce: reduce, update: updateSeconds, rootBytes: rootBytes)
    }

    /// The first worker count (doubling from 1) at which transfer + reduce exceed compute.
    public func wall(design: (Int) -> Prediction, limit: Int = 1 << 16) -> Int? {
        var workers = 1
        while workers <= limit {
            let p = design(workers)
            if p.transfer + p.reduce > p.compute { return workers }
            workers *= 2
        }
        return nil
    }
}
