// F(2×2, 3×3) Winograd convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", CVPR 2016) for stride-1, padding-1 3×3 layers on maps of even height and width.
//
// Each sample's output map is cut into 2×2 tiles; tile t = (ty, tx) reads the 4×4 input window
// d_t at rows 2ty − 1 … 2ty + 2 and columns 2tx − 1 … 2tx + 2 (zero outside the map). For one
// input and one output channel,
//     Y_t = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d_t B) ] A
// is the tile's 2×2 cross-correlation with the 3×3 kernel g: 16 multiplications instead of 36.
// Summed over the input channels, the 16 element-wise products become 16 GEMMs, one per
// position ξ of the 4×4 transform:
//     M[ξ] (O, T) = U[ξ] (O, C) · V[ξ] (C, T),   U = G g Gᵀ,   V = Bᵀ d B,
// 2.25 times fewer multiply-adds than im2col's (O, C·9) · (C·9, 4T), and the transforms read and
// write 4·C·H·W floats where im2col writes 9·C·H·W.
// Backward is the exact adjoint of those linear maps:
//     dM_t = A dY_t Aᵀ;   dU[ξ] += dM[ξ] · V[ξ]ᵀ;   dg = Gᵀ dU G;
//     dV[ξ] = U[ξ]ᵀ · dM[ξ];   dx = Σ_t B dV_t Bᵀ placed at the tile's window (windows overlap).
// The matrices (F(2, 3) of the paper):
//     Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
//     Aᵀ = [1 1 1 0; 0 1 −1 −1].
// Layouts, ξ-major so each GEMM reads contiguous matrices: U and dU [16][O][C]; V and dV
// [16][C][T]; M and dM [16][O][T], with tile index t = n·(H/2)·(W/2) + ty·(W/2) + tx over the
// g samples of a group. Every shape depends only on the geometry and the group, never on threads.
// The transforms run on 8 tiles (or 8 channel pairs) at once, one SIMD lane each, so every
// entry of V, M and U is written (and dV, dM, dU read) 8 contiguous floats at a time: written
// one float per tile, the 16 ξ planes cost 16 scattered cache lines per tile. When a map row
// holds a whole number of 8-tile blocks (W a multiple of 16), a block's 8 windows are one
// contiguous run of each row: the map side then moves 16 floats per load or store, split into
// even and odd columns by shuffles, instead of one float per lane (`rowBlocks`).

struct WinogradGeometry {
    let channels: Int  // C
    let outputs: Int  // O
    let h: Int, w: Int

    /// A 3×3, stride-1, padding-1 convolution on an even map.
    static func applies(kernel: Int, stride: Int, padding: Int, h: Int, w: Int) -> Bool {
        kernel == 3 && stride == 1 && padding == 1 && h % 2 == 0 && w % 2 == 0 && h >= 2 && w >= 2
    }

    private var tileColumns: Int { w / 2 }
    /// Whether every block of 8 tiles lies in one tile row, lanes 2 columns apart.
    private var rowBlocks: Bool { tileColumns % laneWidth == 0 }
    /// 2×2 output tiles per sample.
    var tilesPerSample: Int { (h / 2) * (w / 2) }
    /// Floats of one transformed kernel set, 16·O·C (U or dU).
    var kernelCount: Int { 16 * outputs * channels }
    /// Row pitch and size of the zero-bordered (H + 2) × (W + 2) planes the input-side
    /// transforms work in (one per sample of a group).
    private var pitch: Int { w + 2 }
    var paddedCount: Int { (h + 2) * (w + 2) }

    /// Tile t's window in the padded planes of `samples` samples: n·paddedCount + 2ty·pitch +
    /// 2tx. The table fills a whole number of lane blocks, entries past the last tile repeating
    /// it, so a last partial block reads inside the planes.
    func paddedOffsets(samples: Int) -> [Int] {
        tileOffsets(samples: samples, sampleStride: paddedCount, rowPitch: pitch)
    }

    /// Tile t's top-left output in channel 0 of y or dy (batch, O, H, W): n·O·H·W + 2ty·W + 2tx.
    func mapOffsets(samples: Int) -> [Int] {
        tileOffsets(samples: samples, sampleStride: outputs * h * w, rowPitch: w)
    }

    private func tileOffsets(samples: Int, sampleStride: Int, rowPitch: Int) -> [Int] {
        var offsets = [Int]()
        for n in 0..<samples {
            for ty in 0..<(h / 2) {
                for tx in 0..<tileColumns { offsets.append(n * sampleStride + 2 * ty * rowPitch + 2 * tx) }
            }
        }
        let blocks = (offsets.count + laneWidth - 1) / laneWidth
        return offsets + Array(repeating: offsets.last ?? 0, count: blocks * laneWidth - offsets.count)
    }

    /// U[ξ][o][c] = (G g_oc Gᵀ)[ξ] for weight (O, C, 3, 3), 8 channel pairs at a time.
    /// `share` (a range of the O·C channel pairs, o·C + c) limits the transform to those pairs.
    func transformKernel(
        _ weight: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>, share: Range<Int>? = nil
    ) {
        let pairs = outputs * channels
        let share = share ?? 0..<pairs
        for first in Swift.stride(from: share.lowerBound, to: share.upperBound, by: laneWidth) {
            let lanes = min(laneWidth, share.upperBound - first)
            let taps = weight + first * 9
            let g0 = Quad(gatherLanes(taps, 9, lanes), gatherLanes(taps + 1, 9, lanes), gatherLanes(taps + 2, 9, lanes), .zero)
            let g1 = Quad(gatherLanes(taps + 3, 9, lanes), gatherLanes(taps + 4, 9, lanes), gatherLanes(taps + 5, 9, lanes), .zero)
            let g2 = Quad(gatherLanes(taps + 6, 9, lanes), gatherLanes(taps + 7, 9, lanes), gatherLanes(taps + 8, 9, lanes), .zero)
            // Rows of G g, then each row times Gᵀ.
            let half: Float = 0.5
            storeTile(
                (g0.kernelRow, (half * (g0 + g1 + g2)).kernelRow, (half * (g0 - g1 + g2)).kernelRow, g2.kernelRow),
                to: u + first, stride: pairs, lanes: lanes)
        }
    }

    /// Chunk `index` of `count`'s share of the channel pairs for transformKernel: contiguous,
    /// starting on a multiple of the vector width, together all of them.
    func kernelShare(_ index: Int, of count: Int) -> Range<Int> {
        let pairs = outputs * channels
        let blocks = (pairs + laneWidth - 1) / laneWidth
        func start(_ i: Int) -> Int { min(pairs, blocks * i / count * laneWidth) }
        return start(index)..<(index + 1 == count ? pairs : start(index + 1))
    }

    /// dW (O, C, 3, 3) += Gᵀ dU_oc G for every channel pair, 8 at a time.
    func foldKernelGradient(_ du: UnsafePointer<Float>, into weightGradient: UnsafeMutablePointer<Float>) {
        let pairs = outputs * channels
        for first in Swift.stride(from: 0, to: pairs, by: laneWidth) {
            let lanes = min(laneWidth, pairs - first)
            let (u0, u1, u2, u3) = loadTile(du + first, stride: pairs, lanes: lanes)
            // Rows of Gᵀ dU (3 × 4), then each row times G.
            let half = 0.5 * (u1 + u2)
            let rows = ((u0 + half).kernelGradientRow, (0.5 * (u1 - u2)).kernelGradientRow, (half + u3).kernelGradientRow)
            for lane in 0..<lanes {
                let target = weightGradient + (first + lane) * 9
                rows.0.add(lane: lane, to: target, count: 3)
                rows.1.add(lane: lane, to: target + 3, count: 3)
                rows.2.add(lane: lane, to: target + 6, count: 3)
            }
        }
    }

    /// V[ξ][c][t] = (Bᵀ d_t B)[ξ] for the `batch` samples of x (batch, C, H, W), reading
    /// max(x, 0) with `relu`. `planes` is scratch of batch · paddedCount floats; `offsets` are
    /// `paddedOffsets` for at least `batch` samples.
    func transformInput(
        _ x: UnsafePointer<Float>, batch: Int, relu: Bool, planes: UnsafeMutablePointer<Float>,
        offsets: UnsafePointer<Int>, into v: UnsafeMutablePointer<Float>
    ) {
        let tiles = batch * tilesPerSample
        let stride = channels * tiles
        let pitch = pitch
        let rowBlocks = rowBlocks
        planes.update(repeating: 0, count: batch * paddedCount)  // the borders stay zero
        for c in 0..<channels {
            for n in 0..<batch {
                let source = x + (n * channels + c) * h * w
                for row in 0..<h {
                    let target = planes + n * paddedCount + (row + 1) * pitch + 1
                    if relu {
                        VectorKernels.relu(source + row * w, target, count: w)
                    } else {
                        target.update(from: source + row * w, count: w)
                    }
                }
            }
            for t in Swift.stride(from: 0, to: tiles, by: laneWidth) {
                @inline(__always) func row(_ i: Int) -> Quad {
                    if rowBlocks {  // lane k's window row is columns 2k … 2k + 3 of one run
                        let run = planes + offsets[t] + i * pitch
                        let (left, right) = (loadSixteen(run), loadSixteen(run + 2))
                        return Quad(left.evenHalf, left.oddHalf, right.evenHalf, right.oddHalf)
                    }
                    var d = Quad()
                    for lane in 0..<laneWidth {
                        let window = planes + offsets[t + lane] + i * pitch
                        d.x[lane] = window[0]
                        d.y[lane] = window[1]
                        d.z[lane] = window[2]
                        d.w[lane] = window[3]
                    }
                    return d
                }
                let (d0, d1, d2, d3) = (row(0), row(1), row(2), row(3))
                storeTile(
                    ((d0 - d2).inputRow, (d1 + d2).inputRow, (d2 - d1).inputRow, (d1 - d3).inputRow),
                    to: v + c * tiles + t, stride: stride, lanes: min(laneWidth, tiles - t))
            }
        }
    }

    /// y (batch, O, H, W) = Aᵀ M_t A for every tile, plus the bias. `offsets` are `mapOffsets`.
    func inverseTransformOutput(
        _ m: UnsafePointer<Float>, batch: Int, bias: UnsafePointer<Float>?, offsets: UnsafePointer<Int>,
        into y: UnsafeMutablePointer<Float>
    ) {
        let tiles = batch * tilesPerSample
        let stride = outputs * tiles
        let rowBlocks = rowBlocks
        for o in 0..<outputs {
            let b = bias?[o] ?? 0
            let map = y + o * h * w
            for t in Swift.stride(from: 0, to: tiles, by: laneWidth) {
                let lanes = min(laneWidth, tiles - t)
                let (m0, m1, m2, m3) = loadTile(m + o * tiles + t, stride: stride, lanes: lanes)
                let (top, bottom) = ((m0 + m1 + m2).outputRow, (m1 - m2 - m3).outputRow)
                if rowBlocks {  // lane k's outputs are columns 2k, 2k + 1 of two runs
                    let target = map + offsets[t]
                    storeSixteen(interleave(top.0 + b, top.1 + b), target)
                    storeSixteen(interleave(bottom.0 + b, bottom.1 + b), target + w)
                    continue
                }
                for lane in 0..<lanes {
                    let target = map + offsets[t + lane]
                    target[0] = top.0[lane] + b
                    target[1] = top.1[lane] + b
                    target[w] = bottom.0[lane] + b
                    target[w + 1] = bottom.1[lane] + b
                }
            }
        }
    }

    /// dM[ξ][o][t] = (A dY_t Aᵀ)[ξ] for dy (batch, O, H, W). `offsets` are `mapOffsets`.
    func transformOutputGradient(
        _ dy: UnsafePointer<Float>, batch: Int, offsets: UnsafePointer<Int>, into dm: UnsafeMutablePointer<Float>
    ) {
        let tiles = batch * tilesPerSample
        let stride = outputs * tiles
        let rowBlocks = rowBlocks
        for o in 0..<outputs {
            let map = dy + o * h * w
            for t in Swift.stride(from: 0, to: tiles, by: laneWidth) {
                let lanes = min(laneWidth, tiles - t)
                var (a, b, c, d) = (Lanes(), Lanes(), Lanes(), Lanes())
                if rowBlocks {  // lane k's tile is columns 2k, 2k + 1 of two runs
                    let (upper, lower) = (loadSixteen(map + offsets[t]), loadSixteen(map + offsets[t] + w))
                    (a, b, c, d) = (upper.evenHalf, upper.oddHalf, lower.evenHalf, lower.oddHalf)
                } else {
                    for lane in 0..<lanes {
                        let source = map + offsets[t + lane]
                        a[lane] = source[0]
                        b[lane] = source[1]
                        c[lane] = source[w]
                        d[lane] = source[w + 1]
                    }
                }
                // Rows of A dY (4 × 2), then each row times Aᵀ.
                storeTile(
                    (Quad.outputGradientRow(a, b), Quad.outputGradientRow(a + c, b + d),
                     Quad.outputGradientRow(a - c, b - d), Quad.outputGradientRow(-c, -d)),
                    to: dm + o * tiles + t, stride: stride, lanes: lanes)
            }
        }
    }

    /// dx (batch, C, H, W) = Σ_t B dV_t Bᵀ at each tile's window (overwrites dx). `planes` is
    /// scratch of batch · paddedCount floats; `offsets` are `paddedOffsets`.
    func inverseTransformInputGradient(
        _ dv: UnsafePointer<Float>, batch: Int, planes: UnsafeMutablePointer<Float>, offsets: UnsafePointer<Int>,
        into dx: UnsafeMutablePointer<Float>
    ) {
        let tiles = batch * tilesPerSample
        let stride = channels * tiles
        let pitch = pitch
        let rowBlocks = rowBlocks
        for c in 0..<channels {
            planes.update(repeating: 0, count: batch * paddedCount)
            for t in Swift.stride(from: 0, to: tiles, by: laneWidth) {
                let lanes = min(laneWidth, tiles - t)
                let (v0, v1, v2, v3) = loadTile(dv + c * tiles + t, stride: stride, lanes: lanes)
                let rows = (v0.inputGradientRow, (v1 - v2 + v3).inputGradientRow,
                            (v1 + v2 - v0).inputGradientRow, (-v3).inputGradientRow)
                if rowBlocks {  // each float gets its terms in lane order, as below
                    let run = planes + offsets[t]
                    rows.0.addRun(to: run)
                    rows.1.addRun(to: run + pitch)
                    rows.2.addRun(to: run + 2 * pitch)
                    rows.3.addRun(to: run + 3 * pitch)
                    continue
                }
                // Lane by lane: neighbouring tiles' windows overlap.
                for lane in 0..<lanes {
                    let window = planes + offsets[t + lane]
                    rows.0.add(lane: lane, to: window, count: 4)
                    rows.1.add(lane: lane, to: window + pitch, count: 4)
                    rows.2.add(lane: lane, to: window + 2 * pitch, count: 4)
                    rows.3.add(lane: lane, to: window + 3 * pitch, count: 4)
                }
            }
            for n in 0..<batch {
                let target = dx + (n * channels + c) * h * w
                for row in 0..<h {
                    (target + row * w).update(from: planes + n * paddedCount + (row + 1) * pitch + 1, count: w)
                }
            }
        }
    }
}

/// One SIMD lane per tile or channel pair.
private typealias Lanes = SIMD8<Float>
private let laneWidth = 8

/// One row of a 4×4 tile (its columns x, y, z, w), across the lanes.
private struct Quad {
    var x = Lanes(), y = Lanes(), z = Lanes(), w = Lanes()

    init() {}
    init(_ x: Lanes, _ y: Lanes, _ z: Lanes, _ w: Lanes) {
        self.x = x
        self.y = y
        self.z = z
        self.w = w
    }

    @inline(__always) static func + (a: Quad, b: Quad) -> Quad { Quad(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w) }
    @inline(__always) static func - (a: Quad, b: Quad) -> Quad { Quad(a.x - b.x, a.y - b.y, a.z - b.z, a.w - b.w) }
    @inline(__always) static prefix func - (a: Quad) -> Quad { Quad(-a.x, -a.y, -a.z, -a.w) }
    @inline(__always) static func * (s: Float, a: Quad) -> Quad { Quad(s * a.x, s * a.y, s * a.z, s * a.w) }

    // Each 2-D transform applies its first factor to whole rows (the Quad arithmetic above)
    // and its second to each row:

    /// (a₀, a₁, a₂) · Gᵀ: a row of U = (G g) Gᵀ.
    var kernelRow: Quad { @inline(__always) get { Quad(x, 0.5 * (x + y + z), 0.5 * (x - y + z), z) } }
    /// a · G: a row of dg = (Gᵀ dU) G (w unused).
    var kernelGradientRow: Quad { @inline(__always) get { Quad(x + 0.5 * (y + z), 0.5 * (y - z), 0.5 * (y + z) + w, .zero) } }
    /// a · B: a row of V = (Bᵀ d) B.
    var inputRow: Quad { @inline(__always) get { Quad(x - z, y + z, z - y, y - w) } }
    /// a · Bᵀ: a row of dd = (B dV) Bᵀ.
    var inputGradientRow: Quad { @inline(__always) get { Quad(x, y - z + w, y + z - x, -w) } }
    /// a · A: a row of Y = (Aᵀ M) A.
    var outputRow: (Lanes, Lanes) { @inline(__always) get { (x + y + z, y - z - w) } }
    /// (a₀, a₁) · Aᵀ: a row of dM = (A dY) Aᵀ.
    @inline(__always) static func outputGradientRow(_ a0: Lanes, _ a1: Lanes) -> Quad { Quad(a0, a0 + a1, a0 - a1, -a1) }

    /// target[j] += column j of this row in `lane`, for the first `count` (3 or 4) columns.
    @inline(__always)
    func add(lane: Int, to target: UnsafeMutablePointer<Float>, count: Int) {
        target[0] += x[lane]
        target[1] += y[lane]
        target[2] += z[lane]
        if count == 4 { target[3] += w[lane] }
    }

    /// Lane k's columns to run[2k …] (rowBlocks): columns z and w of every lane, then x and y,
    /// so that where lanes k and k + 1 overlap, lane k's term is added first.
    @inline(__always)
    func addRun(to run: UnsafeMutablePointer<Float>) {
        addSixteen(interleave(z, w), to: run + 2)
        addSixteen(interleave(x, y), to: run)
    }

    /// The row's four columns to base, base + stride, base + 2·stride, base + 3·stride.
    @inline(__always)
    func store(to base: UnsafeMutablePointer<Float>, stride: Int, lanes: Int) {
        storeLanes(x, base, lanes)
        storeLanes(y, base + stride, lanes)
        storeLanes(z, base + 2 * stride, lanes)
        storeLanes(w, base + 3 * stride, lanes)
    }
}

/// The 16 entries of a 4×4 tile, rows r0…r3, to base[ξ · stride] (ξ = 4i + j), `lanes` floats each.
@inline(__always)
private func storeTile(
    _ rows: (Quad, Quad, Quad, Quad), to base: UnsafeMutablePointer<Float>, stride: Int, lanes: Int
) {
    rows.0.store(to: base, stride: stride, lanes: lanes)
    rows.1.store(to: base + 4 * stride, stride: stride, lanes: lanes)
    rows.2.store(to: base + 8 * stride, stride: stride, lanes: lanes)
    rows.3.store(to: base + 12 * stride, stride: stride, lanes: lanes)
}

/// The 16 entries base[ξ · stride] as four rows, `lanes` floats each.
@inline(__always)
private func loadTile(_ base: UnsafePointer<Float>, stride: Int, lanes: Int) -> (Quad, Quad, Quad, Quad) {
    (loadRow(base, stride: stride, lanes: lanes), loadRow(base + 4 * stride, stride: stride, lanes: lanes),
     loadRow(base + 8 * stride, stride: stride, lanes: lanes), loadRow(base + 12 * stride, stride: stride, lanes: lanes))
}

@inline(__always)
private func loadRow(_ base: UnsafePointer<Float>, stride: Int, lanes: Int) -> Quad {
    Quad(loadLanes(base, lanes), loadLanes(base + stride, lanes), loadLanes(base + 2 * stride, lanes),
         loadLanes(base + 3 * stride, lanes))
}

/// base[lane · stride] for each lane.
@inline(__always)
private func gatherLanes(_ base: UnsafePointer<Float>, _ stride: Int, _ lanes: Int) -> Lanes {
    var value = Lanes()
    if lanes == laneWidth {
        for lane in 0..<laneWidth { value[lane] = base[lane * stride] }
    } else {
        for lane in 0..<lanes { value[lane] = base[lane * stride] }
    }
    return value
}

@inline(__always)
private func loadLanes(_ p: UnsafePointer<Float>, _ lanes: Int) -> Lanes {
    if lanes == laneWidth { return UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }
    var value = Lanes()
    for lane in 0..<lanes { value[lane] = p[lane] }
    return value
}

@inline(__always)
private func storeLanes(_ value: Lanes, _ p: UnsafeMutablePointer<Float>, _ lanes: Int) {
    if lanes == laneWidth {
        UnsafeMutableRawPointer(p).storeBytes(of: value, as: Lanes.self)
        return
    }
    for lane in 0..<lanes { p[lane] = value[lane] }
}

/// Two lanes' worth of a map row: 16 contiguous floats.
private typealias Run = SIMD16<Float>

@inline(__always)
private func loadSixteen(_ p: UnsafePointer<Float>) -> Run { UnsafeRawPointer(p).loadUnaligned(as: Run.self) }

@inline(__always)
private func loadSixteen(_ p: UnsafeMutablePointer<Float>) -> Run { loadSixteen(UnsafePointer(p)) }

@inline(__always)
private func storeSixteen(_ value: Run, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: value, as: Run.self)
}

@inline(__always)
private func addSixteen(_ value: Run, to p: UnsafeMutablePointer<Float>) { storeSixteen(loadSixteen(p) + value, p) }

/// (e₀, o₀, e₁, o₁, …, e₇, o₇): the even and odd columns of a run put back together.
@inline(__always)
private func interleave(_ even: Lanes, _ odd: Lanes) -> Run {
    Run(even[0], odd[0], even[1], odd[1], even[2], odd[2], even[3], odd[3],
        even[4], odd[4], even[5], odd[5], even[6], odd[6], even[7], odd[7])
}
