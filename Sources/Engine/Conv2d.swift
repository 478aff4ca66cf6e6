// 2-D convolution (cross-correlation, PyTorch/cuDNN convention) as im2col + ONE GEMM per layer
// over the whole micro-batch (Caffe's base_conv_layer, with the batch folded into the GEMM).
//
// Dimension letters: N batch, C input channels, H×W input map, O output channels,
// KH×KW kernel, HO×WO output map, P = HO·WO output positions, K = C·KH·KW.
//
// Forward:  columns (K, N·P) = im2col(x);  Y (O, N·P) = W (O, K) · columns;  y (N, O, P) = Y + b.
// Backward: dY (O, N·P) = reorder(dy);  dW (O, K) += dY · columnsᵀ;  db += Σ dY;
//           dcolumns (K, N·P) = Wᵀ · dY;  dx = col2im(dcolumns).
// The column and reorder buffers live in a Workspace shared by the network's layers, so
// backward recomputes im2col of the stored input instead of keeping every layer's columns.
// A 1×1, stride-1, unpadded convolution needs no im2col: per sample, y_n (O, P) = W · x_n (C, P).

public final class Conv2d: Layer, CountsMACs {
    public let inputShape: Shape
    public let outputShape: Shape
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: (h: Int, w: Int)
    public let stride: Int
    public let padding: Int
    public let hasBias: Bool
    private let name: String
    private let workspace: Workspace

    private let h: Int, w: Int, ho: Int, wo: Int
    /// Positions per output map (P) and rows of the column matrix (K).
    private let positions: Int
    private let patch: Int
    private let pointwise: Bool

    private var weightOffset = 0
    private var biasOffset = 0
    private var weight: UnsafeMutablePointer<Float>!  // (O, C, KH, KW) = (O, K)
    private var weightGradient: UnsafeMutablePointer<Float>!  // (O, K)
    private var bias: UnsafeMutablePointer<Float>?  // (O)
    private var biasGradient: UnsafeMutablePointer<Float>?  // (O)
    private var output: FloatBuffer?  // (N, O, HO, WO)
    private var input: UnsafePointer<Float>?  // (N, C, H, W), the last forward's input

    /// `name` is the PyTorch module name, e.g. "features.0". `workspace` is shared by the
    /// network's layers; by default the layer gets its own.
    public init(
        name: String, inputShape: Shape, outChannels: Int, kernel: Int, stride: Int = 1,
        padding: Int = 0, bias: Bool = true, workspace: Workspace = Workspace()
    ) {
        let (c, h, w) = inputShape.chw
        precondition(kernel >= 1 && stride >= 1 && padding >= 0, "Conv2d \(name): bad geometry")
        let ho = (h + 2 * padding - kernel) / stride + 1
        let wo = (w + 2 * padding - kernel) / stride + 1
        precondition(
            ho >= 1 && wo >= 1,
            "Conv2d \(name): kernel \(kernel) with padding \(padding) does not fit input \(inputShape)")
        self.name = name
        self.inputShape = inputShape
        self.inChannels = c
        self.outChannels = outChannels
        self.kernel = (kernel, kernel)
        self.stride = stride
        self.padding = padding
        self.hasBias = bias
        self.workspace = workspace
        self.h = h
        self.w = w
        self.ho = ho
        self.wo = wo
        self.positions = ho * wo
        self.patch = c * kernel * kernel
        self.pointwise = kernel == 1 && stride == 1 && padding == 0
        self.outputShape = Shape(outChannels, ho, wo)
    }

    public var forwardMACs: Int { outChannels * patch * positions }

    public func declare(into layout: ParameterLayout) {
        layout.scoped(name) {
            weightOffset = layout.addParameter(
                "weight", shape: [outChannels, inChannels, kernel.h, kernel.w],
                role: .weight(rows: outChannels, cols: patch),
                initializer: .kaimingNormal(fanIn: patch))
            if hasBias {
                biasOffset = layout.addParameter(
                    "bias", shape: [outChannels], role: .bias, initializer: .uniformFanIn(fanIn: patch))
            }
        }
    }

    public func bind(_ arenas: Arenas) {
        weight = arenas.parameters + weightOffset
        weightGradient = arenas.gradients + weightOffset
        if hasBias {
            bias = arenas.parameters + biasOffset
            biasGradient = arenas.gradients + biasOffset
        }
    }

    public func reserve(maxBatch: Int) {
        if !pointwise {
            workspace.reserve(.columns, count: patch * maxBatch * positions)
            workspace.reserve(.reordered, count: outChannels * maxBatch * positions)
        }
        if let output, output.count >= maxBatch * outputShape.count { return }
        output = FloatBuffer(count: maxBatch * outputShape.count)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext)
        -> UnsafeMutablePointer<Float>
    {
        guard let output else { preconditionFailure("Conv2d \(name): reserve(maxBatch:) not called") }
        precondition(
            batch * outputShape.count <= output.count, "Conv2d \(name): batch \(batch) exceeds reserved size")
        input = x
        let y = output.pointer
        let (o, p, k) = (outChannels, positions, patch)
        if pointwise {
            // y_n (O, P) = W (O, C) · x_n (C, P)
            for n in 0..<batch {
                gemm(.none, .none, m: o, n: p, k: k, weight, lda: k, x + n * k * p, ldb: p,
                     beta: 0, y + n * o * p, ldc: p)
            }
            if let bias { addBias(bias, to: y, batch: batch) }
            return y
        }
        let columns = workspace.pointer(.columns)
        let reordered = workspace.pointer(.reordered)
        im2col(x, batch: batch, into: columns)
        let np = batch * p
        // Y (O, N·P) = W (O, K) · columns (K, N·P)
        gemm(.none, .none, m: o, n: np, k: k, weight, lda: k, columns, ldb: np, beta: 0, reordered, ldc: np)
        // y (N, O, P) ← Y (O, N·P) + b
        for n in 0..<batch {
            for channel in 0..<o {
                let source = reordered + channel * np + n * p
                let target = y + (n * o + channel) * p
                if let bias {
                    VectorKernels.affine(source, target, count: p, a: 1, b: bias[channel])
                } else {
                    target.update(from: source, count: p)
                }
            }
        }
        return y
    }

    public func backward(
        outputGradient dy: UnsafeMutablePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?,
        batch: Int
    ) {
        guard let x = input else { preconditionFailure("Conv2d \(name): backward before forward") }
        let (o, p, k) = (outChannels, positions, patch)
        if let biasGradient {
            for n in 0..<batch {
                for channel in 0..<o {
                    biasGradient[channel] += VectorKernels.sum(dy + (n * o + channel) * p, count: p)
                }
            }
        }
        if pointwise {
            for n in 0..<batch {
                // dW (O, C) += dy_n (O, P) · x_nᵀ (P, C)
                gemm(.none, .transposed, m: o, n: k, k: p, dy + n * o * p, lda: p, x + n * k * p, ldb: p,
                     beta: 1, weightGradient, ldc: k)
            }
            if let dx {
                for n in 0..<batch {
                    // dx_n (C, P) = Wᵀ (C, O) · dy_n (O, P)
                    gemm(.transposed, .none, m: k, n: p, k: o, weight, lda: k, dy + n * o * p, ldb: p,
                         beta: 0, dx + n * k * p, ldc: p)
                }
            }
            return
        }
        let columns = workspace.pointer(.columns)
        let reordered = workspace.pointer(.reordered)
        let np = batch * p
        // dY (O, N·P) ← dy (N, O, P)
        for n in 0..<batch {
            for channel in 0..<o {
                (reordered + channel * np + n * p).update(from: dy + (n * o + channel) * p, count: p)
            }
        }
        im2col(x, batch: batch, into: columns)
        // dW (O, K) += dY (O, N·P) · columnsᵀ (N·P, K)
        gemm(.none, .transposed, m: o, n: k, k: np, reordered, lda: np, columns, ldb: np,
             beta: 1, weightGradient, ldc: k)
        guard let dx else { return }
        // dcolumns (K, N·P) = Wᵀ (K, O) · dY (O, N·P), overwriting the columns
        gemm(.transposed, .none, m: k, n: np, k: o, weight, lda: k, reordered, ldb: np,
             beta: 0, columns, ldc: np)
        col2im(columns, batch: batch, into: dx)
    }

    private func addBias(_ bias: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, batch: Int) {
        let p = positions
        for n in 0..<batch {
            for channel in 0..<outChannels {
                VectorKernels.addScalar(bias[channel], to: y + (n * outChannels + channel) * p, count: p)
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

    /// columns[(c·KH + ki)·KW + kj, n·P + oh·WO + ow] = x[n, c, oh·s − p + ki, ow·s − p + kj] (0 outside).
    private func im2col(_ x: UnsafePointer<Float>, batch: Int, into columns: UnsafeMutablePointer<Float>) {
        let np = batch * positions
        let hw = h * w
        if stride == 1 && wo == w {
            im2colSameWidth(x, batch: batch, into: columns)
            return
        }
        for c in 0..<inChannels {
            for ki in 0..<kernel.h {
                for kj in 0..<kernel.w {
                    let row = columns + ((c * kernel.h + ki) * kernel.w + kj) * np
                    let (lo, hi) = validRange(offset: kj)
                    for n in 0..<batch {
                        let plane = x + (n * inChannels + c) * hw
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
                                (target + lo).update(from: source + (lo + shift), count: hi - lo)
                            } else {
                                for ow in lo..<hi { target[ow] = source[ow * stride + shift] }
                            }
                            for ow in hi..<wo { target[ow] = 0 }
                        }
                    }
                }
            }
        }
    }

    /// dx[n, c, ih, iw] = Σ dcolumns over every (ki, kj, oh, ow) that read x[n, c, ih, iw].
    private func col2im(
        _ columns: UnsafeMutablePointer<Float>, batch: Int, into dx: UnsafeMutablePointer<Float>
    ) {
        let np = batch * positions
        let hw = h * w
        dx.update(repeating: 0, count: batch * inChannels * hw)
        if stride == 1 && wo == w {
            col2imSameWidth(columns, batch: batch, into: dx)
            return
        }
        for c in 0..<inChannels {
            for ki in 0..<kernel.h {
                for kj in 0..<kernel.w {
                    let row = columns + ((c * kernel.h + ki) * kernel.w + kj) * np
                    let (lo, hi) = validRange(offset: kj)
                    for n in 0..<batch {
                        let plane = dx + (n * inChannels + c) * hw
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

    private func im2colSameWidth(_ x: UnsafePointer<Float>, batch: Int, into columns: UnsafeMutablePointer<Float>) {
        let np = batch * positions
        let hw = h * w
        for c in 0..<inChannels {
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
                        let plane = x + (n * inChannels + c) * hw
                        target.update(repeating: 0, count: first)
                        (target + first).update(from: plane + first + offset, count: end - first)
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
    private func col2imSameWidth(
        _ columns: UnsafeMutablePointer<Float>, batch: Int, into dx: UnsafeMutablePointer<Float>
    ) {
        let np = batch * positions
        let hw = h * w
        for c in 0..<inChannels {
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
                        let plane = dx + (n * inChannels + c) * hw
                        VectorKernels.add(source + first, into: plane + first + offset, count: end - first)
                    }
                }
            }
        }
    }
}
