import Training

/// The unit tree's sums formed the plain way, as references for the reduction tests.
public enum TreeReference {
    /// Leaves of very different magnitudes (1, 1 + m, 1 + 2m by unit), so the order of
    /// additions shows in the bits.
    public static func leaves(units: Int, length: Int, magnitudeStep: Float, seed: UInt64 = 0) -> [[Float]] {
        (0..<units).map { (u: Int) -> [Float] in
            let magnitude = 1 + magnitudeStep * Float(u % 3)
            return GradientCheck.gaussian(count: length, seed: seed + UInt64(u)).map { $0 * magnitude }
        }
    }

    /// A node's sum as UnitTree.combine forms it: left, then += right.
    public static func sum(_ block: UnitBlock, leaves: [[Float]]) -> [Float] {
        if block.count == 1 { return leaves[block.first] }
        let half = block.count / 2
        var left = sum(UnitBlock(first: block.first, count: half), leaves: leaves)
        let right = sum(UnitBlock(first: block.first + half, count: half), leaves: leaves)
        for i in left.indices { left[i] += right[i] }
        return left
    }
}
