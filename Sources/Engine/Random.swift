#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Counter-based, seedable randomness. Every random draw in ssgd comes from a generator seeded
// by a tuple such as (seed, epoch) or (seed, step, unit), never from a shared global stream,
// so results do not depend on which process or thread drew them.

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, well-mixed 64-bit generator.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator for a tuple of keys, e.g. (seed, epoch) or (seed, step, unit).
    public init(keys: [UInt64]) {
        var mixed: UInt64 = 0x9E37_79B9_7F4A_7C15
        for key in keys { mixed = SplitMix64.mix(mixed ^ SplitMix64.mix(key &+ 0x632B_E59B_D9B4_E019)) }
        state = mixed
    }

    public init(keys: UInt64...) { self.init(keys: keys) }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.mix(state)
    }

    /// Skip `draws` calls of `next()` in O(1) (the state advances by a constant per draw), so a
    /// chunk of a unit can draw exactly what the unit's rows before it would have left.
    public mutating func advance(by draws: Int) {
        state &+= 0x9E37_79B9_7F4A_7C15 &* UInt64(truncatingIfNeeded: draws)
    }

    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits (exact in float32).
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform integer in 0..<bound without modulo bias.
    public mutating func nextIndex(below bound: Int) -> Int {
        Int(next(upperBound: UInt64(bound)))
    }

    /// Standard normal by Box–Muller (one value per call; simple and reproducible).
    public mutating func nextGaussian() -> Float {
        var u1 = 0.0
        repeat { u1 = Double(next() >> 11) * 0x1p-53 } while u1 <= 0
        let u2 = Double(next() >> 11) * 0x1p-53
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}

/// A seeded permutation of 0..<count (Fisher–Yates), e.g. keys (seed, epoch).
public func seededPermutation(count: Int, keys: UInt64...) -> [Int32] {
    var generator = SplitMix64(keys: keys)
    var order = (0..<count).map { Int32($0) }
    if count > 1 {
        for i in stride(from: count - 1, to: 0, by: -1) {
            order.swapAt(i, generator.nextIndex(below: i + 1))
        }
    }
    return order
}
