// Inner loops over contiguous float runs, shared by the memory-bound layers (BN, ReLU, pooling,
// bias). Reductions keep 16 independent partial sums (two SIMD8 lanes) so the adds do not
// wait on each other; a plain `sum += x[i]` loop is one long dependency chain that the
// compiler may not reorder. Callers that sum over many runs (BN statistics) add the
// per-run Float results in Double.

@usableFromInline typealias Vector8 = SIMD8<Float>

@inline(__always) @usableFromInline
func load8(_ p: UnsafePointer<Float>) -> Vector8 {
    UnsafeRawPointer(p).loadUnaligned(as: Vector8.self)
}

@inline(__always) @usableFromInline
func store8(_ value: Vector8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: value, as: Vector8.self)
}

public enum VectorKernels {
    /// Whether every x[i], i < count, is finite. x·0 is ±0 for a finite x and NaN otherwise, and
    /// a NaN survives any sum, so independent partial sums decide exactly as one serial sum does
    /// — at the speed of a read rather than of a chain of dependent adds.
    public static func allFinite(_ x: UnsafePointer<Float>, count: Int) -> Bool {
        var a = Vector8(), b = Vector8(), c = Vector8(), d = Vector8()
        var i = 0
        while i + 32 <= count {
            a += load8(x + i) * 0
            b += load8(x + i + 8) * 0
            c += load8(x + i + 16) * 0
            d += load8(x + i + 24) * 0
            i += 32
        }
        var total = ((a + b) + (c + d)).sum()
        while i < count {
            total += x[i] * 0
            i += 1
        }
        return total.isFinite
    }

    /// SGD with momentum in PyTorch's form (dampening 0) over count floats: b ← μ·b + g, then
    /// θ ← θ − lr·(g + μ·b) with `nesterov` (the trainer's optimiser), θ ← θ − lr·b without
    /// (what `ssgd bench` times, as its PyTorch side does). Element by element the same
    /// operations in the same order as the scalar loop, so the same bits, eight at a time.
    public static func momentumStep(
        parameters theta: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>,
        velocity b: UnsafeMutablePointer<Float>, count: Int, learningRate lr: Float, momentum mu: Float,
        nesterov: Bool
    ) {
        let mu8 = Vector8(repeating: mu), lr8 = Vector8(repeating: lr)
        var i = 0
        while i + 8 <= count {
            let gradient = load8(g + i)
            let updated = mu8 * load8(b + i) + gradient
            store8(updated, b + i)
            store8(load8(theta + i) - lr8 * (nesterov ? gradient + mu8 * updated : updated), theta + i)
            i += 8
        }
        while i < count {
            let updated = mu * b[i] + g[i]
            b[i] = updated
            theta[i] -= lr * (nesterov ? g[i] + mu * updated : updated)
            i += 1
        }
    }

    /// Σ x[i], i < count.
    @inline(__always)
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var a = Vector8(), b = Vector8()
        var i = 0
        while i + 16 <= count {
            a += load8(x + i)
            b += load8(x + i + 8)
            i += 16
        }
        var total = (a + b).sum()
        while i < count {
            total += x[i]
            i += 1
        }
        return total
    }

    /// (Σ g[i], Σ g[i]·(x[i] − mean)), i < count.
    @inline(__always)
    public static func sumAndCentredDot(
        _ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, count: Int, mean: Float
    ) -> (sum: Float, dot: Float) {
        var s0 = Vector8(), s1 = Vector8(), d0 = Vector8(), d1 = Vector8()
        let m = Vector8(repeating: mean)
        var i = 0
        while i + 16 <= count {
            let g0 = load8(g + i), g1 = load8(g + i + 8)
            s0 += g0
            s1 += g1
            d0 += g0 * (load8(x + i) - m)
            d1 += g1 * (load8(x + i + 8) - m)
            i += 16
        }
        var sum = (s0 + s1).sum()
        var dot = (d0 + d1).sum()
        while i < count {
            sum += g[i]
            dot += g[i] * (x[i] - mean)
            i += 1
        }
        return (sum, dot)
    }

    /// y[i] = x[i]·a + b (y may be x).
    @inline(__always)
    public static func affine(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, a: Float, b: Float
    ) {
        let va = Vector8(repeating: a), vb = Vector8(repeating: b)
        var i = 0
        while i + 8 <= count {
            store8(load8(x + i) * va + vb, y + i)
            i += 8
        }
        while i < count {
            y[i] = x[i] * a + b
            i += 1
        }
    }

    /// y[i] = max(x[i], 0) (y may be x).
    @inline(__always)
    public static func relu(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        let zero = Vector8()
        var i = 0
        while i + 8 <= count {
            let v = load8(x + i)
            store8(v.replacing(with: zero, where: v .< zero), y + i)
            i += 8
        }
        while i < count {
            y[i] = max(x[i], 0)
            i += 1
        }
    }

    /// dx[i] = y[i] > 0 ? dy[i] : 0 (dx may be dy).
    @inline(__always)
    public static func reluBackward(
        _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, count: Int
    ) {
        let zero = Vector8()
        var i = 0
        while i + 8 <= count {
            let keep = load8(y + i) .> zero
            store8(zero.replacing(with: load8(dy + i), where: keep), dx + i)
            i += 8
        }
        while i < count {
            dx[i] = y[i] > 0 ? dy[i] : 0
            i += 1
        }
    }

    /// y[i] += x[i].
    @inline(__always)
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            store8(load8(y + i) + load8(x + i), y + i)
            i += 8
        }
        while i < count {
            y[i] += x[i]
            i += 1
        }
    }

    /// y[i] += b.
    @inline(__always)
    public static func addScalar(_ b: Float, to y: UnsafeMutablePointer<Float>, count: Int) {
        let vb = Vector8(repeating: b)
        var i = 0
        while i + 8 <= count {
            store8(load8(y + i) + vb, y + i)
            i += 8
        }
        while i < count {
            y[i] += b
            i += 1
        }
    }
}

extension VectorKernels {
    /// z[i] = g[i]·α + x[i]·β + γ (z may be g or x).
    @inline(__always)
    public static func combine(
        _ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ z: UnsafeMutablePointer<Float>, count: Int,
        alpha: Float, beta: Float, gamma: Float
    ) {
        let va = Vector8(repeating: alpha), vb = Vector8(repeating: beta), vc = Vector8(repeating: gamma)
        var i = 0
        while i + 8 <= count {
            store8(load8(g + i) * va + load8(x + i) * vb + vc, z + i)
            i += 8
        }
        while i < count {
            z[i] = g[i] * alpha + x[i] * beta + gamma
            i += 1
        }
    }
}

extension VectorKernels {
    /// Σ x[i] in Double, four independent partial sums (BN statistics: the Float results they
    /// round to do not depend on the summation order in practice).
    @inline(__always)
    public static func sumDouble(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        var i = 0
        while i + 4 <= count {
            s0 += Double(x[i])
            s1 += Double(x[i + 1])
            s2 += Double(x[i + 2])
            s3 += Double(x[i + 3])
            i += 4
        }
        while i < count {
            s0 += Double(x[i])
            i += 1
        }
        return (s0 + s1) + (s2 + s3)
    }

    /// Σ (x[i] − mean)² in Double, four independent partial sums.
    @inline(__always)
    public static func squaredDeviationsDouble(_ x: UnsafePointer<Float>, count: Int, mean: Double) -> Double {
        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        var i = 0
        while i + 4 <= count {
            let d0 = Double(x[i]) - mean, d1 = Double(x[i + 1]) - mean
            let d2 = Double(x[i + 2]) - mean, d3 = Double(x[i + 3]) - mean
            s0 += d0 * d0
            s1 += d1 * d1
            s2 += d2 * d2
            s3 += d3 * d3
            i += 4
        }
        while i < count {
            let d = Double(x[i]) - mean
            s0 += d * d
            i += 1
        }
        return (s0 + s1) + (s2 + s3)
    }
}
