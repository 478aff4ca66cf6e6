// im2col / col2im for one convolution geometry (Caffe's im2col.cpp, with the batch folded into
// the columns).
//
// Dimension letters: N samples, C channels, H×W input map, KH×KW kernel, HO×WO output map,
// P = HO·WO output positions, K = C·KH·KW rows of the column matrix.
//
// columns (K, N·P): columns[(c·KH + ki)·KW + kj, n·P + oh·WO + ow] = x[n, c, oh·s − p + ki, ow·s − p + kj]
// (0 outside the map). col2im is its adjoint (a sum over every column entry that read an input).
// With `relu`, the builders read max(x, 0) instead of x (a ReLU fused into the convolution).
//
// Row shifts (stride-1 "same" convolutions, HO = H, WO = W, KH = KW = k, one sample): only the
// k horizontal shifts are materialised, on a map padded with p zero rows above and below:
// shifted (C·k, (H + 2p)·W): shifted[c·k + kj, r·W + ow] = x[c, r − p, ow + kj − p] (0 outside).
// The column matrix rows of kernel row ki are then the view shifted + ki·W with row stride
// (H + 2p)·W: element (c·k + kj, oh·W + ow) reads x[c, oh + ki − p, ow + kj − p]. A convolution
// is k accumulating GEMMs over these views, and writes k·C·(H + 2p)·W floats instead of k²·C·H·W.

/// dst[i] = src[i], or max(src[i], 0) with `relu`.
@inline(__always)
private func copy(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int, relu: Bool) {
    if relu {
        VectorKernels.relu(src, dst, count: count)
    } else {
        dst.update(from: src, count: count)
    }
}

struct ConvolutionGeometry {
    let channels: Int
    let h: Int, w: Int
    let kernel: (h: Int, w: Int)
    let stride: Int
    let padding: Int
    let ho: Int, wo: Int

    init(channels: Int, h: Int, w: Int, kernel: Int, stride: Int, padding: Int) {
        self.channels = channels
        self.h = h
        self.w = w
        self.kernel = (kernel, kernel)
        self.stride = stride
        self.padding = padding
        ho = (h + 2 * padding - kernel) / stride + 1
        wo = (w + 2 * padding - kernel) / stride + 1
    }

    /// Output positions per map (P).
    var positions: Int { ho * wo }
    /// Rows of the column matrix (K).
    var patch: Int { channels * kernel.h * kernel.w }
    /// Stride 1 and an output as wide as the input: the contiguous fast path.
    var sameWidth: Bool { stride == 1 && wo == w }
    /// Stride 1, square kernel, output the size of the input: row shifts apply.
    var same: Bool { stride == 1 && kernel.h == kernel.w && ho == h && wo == w }
    /// Row length of the row-shifted matrix, (H + 2p)·W.
    var shiftedRowLength: Int { (h + 2 * padding) * w }

    /// shifted (C·k, (H + 2p)·W) ← x (C, H, W), one sample of a `same` geometry.
    func rowShifts(_ x: UnsafePointer<Float>, relu: Bool = false, into shifted: UnsafeMutablePointer<Float>) {
        let k = kernel.w
        let hw = h * w
        let length = shiftedRowLength
        let top = padding * w
        for c in 0..<channels {
            let plane = x + c * hw
            for kj in 0..<k {
                let row = shifted + (c * k + kj) * length
                let shift = kj - padding
                // row[top + t] = plane[t + shift], t < H·W, for the t whose column stays in the map.
                let first = max(0, -shift), end = min(hw, hw - shift)
                row.update(repeating: 0, count: top + first)
                copy(plane + first + shift, row + top + first, count: end - first, relu: relu)
                (row + top + end).update(repeating: 0, count: length - top - end)
                // The positions whose shifted column left the map: a few per image row, stored
                // one by one (a memset call per one or two floats costs more than the stores).
                if shift != 0 {
                    let (lo, hi) = shift > 0 ? (w - shift, w) : (0, -shift)
                    var rowStart = row + top
                    for _ in 0..<h {
                        for ow in lo..<hi { rowStart[ow] = 0 }
                        rowStart += w
                    }
                }
            }
        }
    }

    /// The output columns [lo, hi) whose input column ow·stride − padding + kj is inside 0..<W.
    @inline(__always)
    private func validRange(offset kj: Int) -> (lo: Int, hi: Int) {
        // iw = ow·s − p + kj ∈ [0, W)  ⇔  ow ≥ ceil((p − kj)/s) and ow ≤ floor((W − 1 + p − kj)/s)
        let shift = padding - kj
        let lo = shift > 0 ? (shift + stride - 1) / stride : 0
        let last = w - 1 + shift
        let hi = last < 0 ? 0 : min(wo, last / stride + 1)
        return (min(lo, hi), hi)
    }

    /// columns (K, batch·P) ← x (batch, C, H, W).
    func im2col(_ x: UnsafePointer<Float>, batch: Int, relu: Bool = false, into columns: UnsafeMutablePointer<Float>) {
        if sameWidth {
            im2colSameWidth(x, batch: batch, relu: relu, into: columns)
            return
        }
        let np = batch * positions
        let hw = h * w
        for c in 0..<channels {
            for ki in 0..<kernel.h {
                for kj in 0..<kernel.w {
                    let row = columns + ((c * kernel.h + ki) * kernel.w + kj) * np
                    let (lo, hi) = validRange(offset: kj)
                    for n in 0..<batch {
                        let plane = x + (n * channels + c) * hw
                        for oh in 0..<ho {
                            let target = row + n * positions + oh * wo
                            let ih = oh * stride - padding + ki
                            if ih < 0 || ih >= h {
                                target.update(repeating: 0, count: wo)
                                continue
                            }
                            for ow in 0..<lo { target[ow] = 0 }
                            // Input column of output column ow is ow·s + shift, in bounds on [lo, hi).
                            let source = plane + ih * w
                            let shift = kj - padding
                            if stride == 1 {
                                copy(source + (lo + shift), target + lo, count: hi - lo, relu: relu)
                            } else {
                                for ow in lo..<hi {
                                    let value = source[ow * stride + shift]
                                    target[ow] = relu ? max(value, 0) : value
                                }
                            }
                            for ow in hi..<wo { target[ow] = 0 }
                        }
                    }
                }
            }
        }
    }

    /// dx (batch, C, H, W) = Σ dcolumns over every (ki, kj, oh, ow) that read x[n, c, ih, iw].
    /// Overwrites dx; may clobber `columns`.
    func col2im(_ columns: UnsafeMutablePointer<Float>, batch: Int, into dx: UnsafeMutablePointer<Float>) {
        let np = batch * positions
        let hw = h * w
        dx.update(repeating: 0, count: batch * channels * hw)
        if sameWidth {
            col2imSameWidth(columns, batch: batch, into: dx)
            return
        }
        for c in 0..<channels {
            for ki in 0..<kernel.h {
                for kj in 0..<kernel.w {
                    let row = columns + ((c * kernel.h + ki) * kernel.w + kj) * np
                    let (lo, hi) = validRange(offset: kj)
                    for n in 0..<batch {
                        let plane = dx + (n * channels + c) * hw
                        for oh in 0..<ho {
                            let ih = oh * stride - padding + ki
                            if ih < 0 || ih >= h { continue }
                            let source = row + n * positions + oh * wo
                            let target = plane + ih * w
                            let shift = kj - padding
                            if stride == 1 {
                                VectorKernels.add(source + lo, into: target + lo + shift, count: hi - lo)
                            } else {
                                for ow in lo..<hi { target[ow * stride + shift] += source[ow] }
                            }
                        }
                    }
                }
            }
        }
    }

    // Stride 1 with WO = W (a "same"-width convolution): output position t = oh·W + ow of row
    // (c, ki, kj) reads input position t + (ki − p)·W + (kj − p) of the same plane, so each
    // (row, sample) is ONE contiguous copy over the valid output rows; the few positions where
    // the shift wraps into the neighbouring image row (the column padding) are then zeroed.

    /// Valid output rows [lo, hi) of kernel row ki: input row oh − p + ki inside 0..<H.
    @inline(__always)
    private func validRows(offset ki: Int) -> (lo: Int, hi: Int) {
        let lo = max(0, padding - ki)
        let hi = min(ho, h + padding - ki)
        return (min(lo, hi), hi)
    }

    private func im2colSameWidth(
        _ x: UnsafePointer<Float>, batch: Int, relu: Bool, into columns: UnsafeMutablePointer<Float>
    ) {
        let np = batch * positions
        let hw = h * w
        for c in 0..<channels {
            for ki in 0..<kernel.h {
                let (rowLo, rowHi) = validRows(offset: ki)
                for kj in 0..<kernel.w {
                    let row = columns + ((c * kernel.h + ki) * kernel.w + kj) * np
                    let (lo, hi) = validRange(offset: kj)
                    let offset = (ki - padding) * w + (kj - padding)
                    for n in 0..<batch {
                        let target = row + n * positions
                        guard rowLo < rowHi && lo < hi else {
                            target.update(repeating: 0, count: positions)
                            continue
                        }
                        let first = rowLo * wo + lo, end = (rowHi - 1) * wo + hi
                        let plane = x + (n * channels + c) * hw
                        target.update(repeating: 0, count: first)
                        copy(plane + first + offset, target + first, count: end - first, relu: relu)
                        (target + end).update(repeating: 0, count: positions - end)
                        if hi - lo < wo {
                            for oh in rowLo..<(rowHi - 1) {
                                (target + oh * wo + hi).update(repeating: 0, count: wo - hi + lo)
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of im2colSameWidth; clobbers the wrapped positions of `columns`.
    private func col2imSameWidth(_ columns: UnsafeMutablePointer<Float>, batch: Int, into dx: UnsafeMutablePointer<Float>) {
        let np = batch * positions
        let hw = h * w
        for c in 0..<channels {
            for ki in 0..<kernel.h {
                let (rowLo, rowHi) = validRows(offset: ki)
                for kj in 0..<kernel.w {
                    let row = columns + ((c * kernel.h + ki) * kernel.w + kj) * np
                    let (lo, hi) = validRange(offset: kj)
                    guard rowLo < rowHi && lo < hi else { continue }
                    let offset = (ki - padding) * w + (kj - padding)
                    let first = rowLo * wo + lo, end = (rowHi - 1) * wo + hi
                    for n in 0..<batch {
                        let source = row + n * positions
                        // Positions that read padding contribute nothing: zero them so the
                        // whole valid span can be added in one pass.
                        if hi - lo < wo {
                            for oh in rowLo..<(rowHi - 1) {
                                (source + oh * wo + hi).update(repeating: 0, count: wo - hi + lo)
                            }
                        }
                        let plane = dx + (n * channels + c) * hw
                        VectorKernels.add(source + first, into: plane + first + offset, count: end - first)
                    }
                }
            }
        }
    }
}
