// 2-D convolution (cross-correlation, PyTorch/cuDNN convention) as im2col + GEMM (Caffe's
// base_conv_layer), over fixed groups of samples so the column matrix stays in cache.
//
// Dimension letters: N batch, C input channels, H×W input map, O output channels,
// KH×KW kernel, HO×WO output map, P = HO·WO output positions, K = C·KH·KW,
// G samples per group (fixed by the geometry: G·P ≥ `groupColumns`), g ≤ G this group's samples.
//
// Forward, per group:  columns (K, g·P) = im2col(x_group);  Y (O, g·P) = W (O, K) · columns;
//                      y (g, O, P) = Y + b (a group of one sample writes y_n directly).
// Backward, per group: dY (O, g·P) = reorder(dy_group);  dW (O, K) += dY · columnsᵀ;  db += Σ dY;
//   "same" convolutions (stride 1, HO = H, WO = W): dx is the convolution of dy with the
//   flipped kernel, W' (C, O·KH·KW) with W'[c, (o, ki, kj)] = W[o, c, KH−1−ki, KW−1−kj]:
//                      dcolumns (O·KH·KW, g·P) = im2col(dy_group);  dX (C, g·P) = W' · dcolumns.
//   others:            dcolumns (K, g·P) = Wᵀ · dY;  dx_group = col2im(dcolumns).
// Grouping matters for thin layers (DenseNet's O = 12): a whole-batch column matrix is 9·C·N·P
// floats written and read from memory several times per step, while a group's stays in cache;
// the flipped-kernel dx reads 9·O rows instead of writing and re-adding 9·C.
// Row shifts ("same" convolutions on maps of at least `rowShiftPositions` positions, or of at
// least `thinRowShiftPositions` when the output is thin (O ≤ `thinOutputs`), with C·k ≥
// `rowShiftDepth`; one sample at a time; see Im2col.swift): instead of im2col, shifted (C·k, (H+2p)·W) holds the
// k horizontal shifts of x_n, and with the kernel rows W_ki (O, C·k), W_ki[o, c·k + kj] = W[o, c, ki, kj]:
//   forward:  y_n (O, P) = Σ_ki W_ki · (shifted + ki·W);
//   backward: dW_ki (O, C·k) += dy_n (O, P) · (shifted + ki·W)ᵀ, summed over the samples in a
//             scratch and then added to dW; dx by the flipped kernel as above.
// For thin outputs (O ≤ `thinOutputs`) each direction is ONE GEMM over the whole padded map
// (L = (H+2p)·W columns, the k kernel rows stacked as k·O output rows), so OpenBLAS packs
// `shifted` once instead of k times, at the price of (H+2p)/H times the multiply-adds; forward
// then sums the k row blocks at their offsets, backward stacks k shifted copies of dy. Wide
// layers, whose GEMMs outweigh the packing, run the k GEMMs.
// The group count and every GEMM shape depend only on the geometry and the batch, never on
// threads. The columns and reorder buffers live in a Workspace shared by the network's layers.
// 3×3, stride-1, padding-1 layers on even maps with at least `winogradChannels` inputs and more
// than `thinOutputs` outputs run F(2×2, 3×3) Winograd instead (Winograd.swift): 16 GEMMs per
// group of samples with 2.25 times fewer multiply-adds; the transformed kernel U, then its
// gradient, lives in the workspace's kernel-rows slot, the transformed input and output in the
// column and reorder slots.
// A 1×1, stride-1, unpadded convolution needs no im2col: per sample, y_n (O, P) = W · x_n (C, P).
// With `inputReLU` the layer is ReLU → Conv in one: the column builders read max(x, 0), and the
// input gradient is masked where x ≤ 0 right after each group's GEMM, while it is in cache; the
// ReLU's output is never stored.

public final class Conv2d: Layer, CountsMACs {
    /// Smallest number of output positions per group GEMM (G = ⌈groupColumns / P⌉ samples).
    public static let groupColumns = 256
    /// Smallest map (positions) computed by row shifts, one sample per GEMM. Below it, the
    /// per-sample GEMMs of wide layers ran 6–10 % slower than one im2col GEMM over a group of 4
    /// samples (C micro-benchmark, OpenBLAS Zen, 1 thread: C = O = 192 and 256 on 8×8 maps),
    /// while on 16×16 maps and up they ran as fast or faster, and im2col is saved on top.
    public static let rowShiftPositions = 256
    /// Thin outputs (DenseNet's O = 12), whose im2col costs as much as their GEMM, use row shifts
    /// down to 8×8 maps (their GEMMs ran as fast as the grouped im2col GEMMs there).
    public static let thinOutputs = 32
    public static let thinRowShiftPositions = 64
    /// Smallest depth C·k of one row-shift GEMM: with few input channels (an RGB stem) the k
    /// short GEMMs ran at half the rate of one im2col GEMM (C = 3, k = 5, O = 192 on 32×32:
    /// 40 vs 75 GFLOPS; C = 8, k = 3: 63 vs 71; C = 16, k = 3, O = 12: 63 vs 59).
    public static let rowShiftDepth = 48
    /// Winograd needs enough input channels for its GEMMs' depth (an RGB stem stays on im2col).
    public static let winogradChannels = 16
    /// Smallest number of 2×2 tiles per Winograd GEMM (samples per group: ⌈this / tiles per
    /// sample⌉). Each of the 16 GEMMs packs its (O, C) kernel slice once per group: the 16
    /// forward GEMMs with 32 tiles (512 channels on 2×2 maps, 32 samples) ran 1.5 times as fast
    /// as the im2col GEMM, with 64–256 tiles 1.7–1.95 times (OpenBLAS Zen, 1 thread, C
    /// micro-benchmark).
    public static let winogradGroupTiles = 512

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

    private let geometry: ConvolutionGeometry
    /// dy's im2col for the flipped-kernel input gradient (nil: dx by col2im).
    private let transposedGeometry: ConvolutionGeometry?
    /// Positions per output map (P), rows of the column matrix (K), samples per group (G).
    private let positions: Int
    private let patch: Int
    private let groupSize: Int
    private let pointwise: Bool
    private let rowShifted: Bool
    /// Row shifts with the k kernel rows stacked into one GEMM (thin outputs).
    private let stackedRows: Bool
    /// Convolve max(x, 0) instead of x (a fused ReLU before the convolution).
    public let inputReLU: Bool
    /// F(2×2, 3×3) Winograd geometry (nil: im2col, row shifts or pointwise), and its group size.
    private let winograd: WinogradGeometry?
    private let winogradGroupSize: Int
    /// Each tile's window in the padded planes and in the output map (WinogradGeometry's
    /// offset tables, built in `reserve` for the largest group).
    private var paddedTileOffsets: [Int] = []
    private var mapTileOffsets: [Int] = []
    private var tileOffsetSamples = 0
    /// Whether this layer computes by Winograd (tests pin the paths against each other).
    public var usesWinograd: Bool { winograd != nil }
    /// Floats of this layer's transformed kernel set U (16·O·C; 0 without Winograd).
    public var winogradKernelCount: Int { winograd?.kernelCount ?? 0 }
    /// This layer's place among its network's Winograd layers, in forward order (Network sets
    /// it): which shared kernel slot each of its passes uses (SharedKernelSlots.swift).
    public internal(set) var winogradOrdinal = 0
    /// The chunk the last forward pass computed, for the backward pass that follows it.
    private var chunk: ChunkContext?
    /// That chunk and its unit's shared kernel slots, when it shares U with other chunks.
    private var sharing: (chunk: ChunkContext, kernels: SharedKernelSlots)? {
        guard let chunk, chunk.count > 1, let kernels = chunk.kernels else { return nil }
        return (chunk, kernels)
    }

    private var weightOffset = 0
    private var biasOffset = 0
    private var weight: UnsafeMutablePointer<Float>!  // (O, C, KH, KW) = (O, K)
    private var weightGradient: UnsafeMutablePointer<Float>!  // (O, K)
    private var bias: UnsafeMutablePointer<Float>?  // (O)
    private var biasGradient: UnsafeMutablePointer<Float>?  // (O)
    private var output: FloatBuffer?  // (N, O, HO, WO)
    private var input: UnsafePointer<Float>?  // (N, C, H, W), the last forward's input

    /// `name` is the PyTorch module name, e.g. "features.0". `workspace` is shared by the
    /// network's layers; by default the layer gets its own. `winograd: false` keeps a layer
    /// Winograd would apply to on im2col or row shifts.
    public init(
        name: String, inputShape: Shape, outChannels: Int, kernel: Int, stride: Int = 1,
        padding: Int = 0, bias: Bool = true, inputReLU: Bool = false, winograd: Bool = true,
        workspace: Workspace = Workspace()
    ) {
        let (c, h, w) = inputShape.chw
        precondition(kernel >= 1 && stride >= 1 && padding >= 0, "Conv2d \(name): bad geometry")
        let geometry = ConvolutionGeometry(channels: c, h: h, w: w, kernel: kernel, stride: stride, padding: padding)
        precondition(
            geometry.ho >= 1 && geometry.wo >= 1,
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
        self.geometry = geometry
        self.positions = geometry.positions
        self.patch = geometry.patch
        self.groupSize = max(1, (Self.groupColumns + geometry.positions - 1) / geometry.positions)
        self.pointwise = kernel == 1 && stride == 1 && padding == 0
        precondition(
            !(inputReLU && pointwise),
            "Conv2d \(name): a fused input ReLU needs the column path (kernel > 1, stride > 1 or padding)")
        self.inputReLU = inputReLU
        if winograd && c >= Self.winogradChannels && outChannels > Self.thinOutputs
            && WinogradGeometry.applies(kernel: kernel, stride: stride, padding: padding, h: h, w: w)
        {
            let tiles = WinogradGeometry(channels: c, outputs: outChannels, h: h, w: w)
            self.winograd = tiles
            self.winogradGroupSize = max(1, (Self.winogradGroupTiles + tiles.tilesPerSample - 1) / tiles.tilesPerSample)
        } else {
            self.winograd = nil
            self.winogradGroupSize = 0
        }
        let rowShiftMinimum = outChannels <= Self.thinOutputs ? Self.thinRowShiftPositions : Self.rowShiftPositions
        self.rowShifted = self.winograd == nil && geometry.same && kernel > 1 && geometry.positions >= rowShiftMinimum
            && c * kernel >= Self.rowShiftDepth
        self.stackedRows = rowShifted && outChannels <= Self.thinOutputs
        if stride == 1 && geometry.ho == h && geometry.wo == w {
            transposedGeometry = ConvolutionGeometry(
                channels: outChannels, h: h, w: w, kernel: kernel, stride: 1, padding: kernel - 1 - padding)
        } else {
            transposedGeometry = nil
        }
        self.outputShape = Shape(outChannels, geometry.ho, geometry.wo)
    }

    public var forwardMACs: Int { outChannels * patch * positions }
    /// Winograd: 16 GEMM multiply-adds per channel pair and 2×2 tile, 4/9 of `forwardMACs`.
    public var executedMACs: Int { winograd.map { 16 * outChannels * inChannels * $0.tilesPerSample } ?? forwardMACs }

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
        if let winograd {
            let samples = min(winogradGroupSize, maxBatch)
            let tiles = samples * winograd.tilesPerSample
            // V or dV, then the zero-bordered planes of the tile transforms.
            workspace.reserve(.columns, count: 16 * inChannels * tiles + samples * winograd.paddedCount)
            if samples > tileOffsetSamples {
                paddedTileOffsets = winograd.paddedOffsets(samples: samples)
                mapTileOffsets = winograd.mapOffsets(samples: samples)
                tileOffsetSamples = samples
            }
            workspace.reserve(.reordered, count: 16 * outChannels * tiles)  // M or dM
            workspace.reserve(.kernelRows, count: winograd.kernelCount)  // U, then dU
        } else if rowShifted {
            let transposedPatch = transposedGeometry?.patch ?? 0
            workspace.reserve(.columns, count: max(patch / kernel.w * geometry.shiftedRowLength, transposedPatch * positions))
            workspace.reserve(.kernelRows, count: outChannels * patch)
            workspace.reserve(.flippedKernel, count: outChannels * patch)
            if stackedRows { workspace.reserve(.reordered, count: kernel.w * outChannels * geometry.shiftedRowLength) }
        } else if !pointwise {
            let group = min(groupSize, maxBatch) * positions
            let transposedPatch = transposedGeometry?.patch ?? 0
            workspace.reserve(.columns, count: max(patch, transposedPatch) * group)
            workspace.reserve(.reordered, count: max(outChannels, inChannels) * group)
            if transposedGeometry != nil { workspace.reserve(.flippedKernel, count: outChannels * patch) }
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
        chunk = context.chunk
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
        if let winograd {
            forwardWinograd(x, batch: batch, winograd, into: y)
            return y
        }
        if rowShifted {
            forwardRowShifted(x, batch: batch, into: y)
            return y
        }
        let columns = workspace.pointer(.columns)
        let reordered = workspace.pointer(.reordered)
        let inputCount = inputShape.count
        for first in Swift.stride(from: 0, to: batch, by: groupSize) {
            let g = min(groupSize, batch - first)
            let gp = g * p
            let target = y + first * o * p
            geometry.im2col(x + first * inputCount, batch: g, relu: inputReLU, into: columns)
            if g == 1 {
                // y_n (O, P) = W (O, K) · columns (K, P)
                gemm(.none, .none, m: o, n: p, k: k, weight, lda: k, columns, ldb: p, beta: 0, target, ldc: p)
                if let bias { addBias(bias, to: target, batch: 1) }
                continue
            }
            // Y (O, g·P) = W (O, K) · columns (K, g·P);  y (g, O, P) ← Y + b
            gemm(.none, .none, m: o, n: gp, k: k, weight, lda: k, columns, ldb: gp, beta: 0, reordered, ldc: gp)
            for n in 0..<g {
                for channel in 0..<o {
                    let source = reordered + channel * gp + n * p
                    let sampleTarget = target + (n * o + channel) * p
                    if let bias {
                        VectorKernels.affine(source, sampleTarget, count: p, a: 1, b: bias[channel])
                    } else {
                        sampleTarget.update(from: source, count: p)
                    }
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
        if let winograd {
            backwardWinograd(x, dy, dx, batch: batch, winograd)
            return
        }
        if rowShifted {
            backwardRowShifted(x, dy, dx, batch: batch)
            return
        }
        let columns = workspace.pointer(.columns)
        let reordered = workspace.pointer(.reordered)
        let flipped = workspace.pointer(.flippedKernel)
        if dx != nil, transposedGeometry != nil { flipKernel(into: flipped) }
        let inputCount = inputShape.count
        let c = inChannels
        for first in Swift.stride(from: 0, to: batch, by: groupSize) {
            let g = min(groupSize, batch - first)
            let gp = g * p
            let groupDy = dy + first * o * p
            // dY (O, g·P): a single sample's dy_n already is (O, P).
            let dY: UnsafeMutablePointer<Float>
            if g == 1 {
                dY = groupDy
            } else {
                dY = reordered
                for n in 0..<g {
                    for channel in 0..<o {
                        (reordered + channel * gp + n * p).update(from: groupDy + (n * o + channel) * p, count: p)
                    }
                }
            }
            geometry.im2col(x + first * inputCount, batch: g, relu: inputReLU, into: columns)
            // dW (O, K) += dY (O, g·P) · columnsᵀ (g·P, K)
            gemm(.none, .transposed, m: o, n: k, k: gp, dY, lda: gp, columns, ldb: gp,
                 beta: 1, weightGradient, ldc: k)
            guard let dx else { continue }
            let groupDx = dx + first * inputCount
            guard let transposedGeometry else {
                // dcolumns (K, g·P) = Wᵀ (K, O) · dY (O, g·P), overwriting the columns
                gemm(.transposed, .none, m: k, n: gp, k: o, weight, lda: k, dY, ldb: gp,
                     beta: 0, columns, ldc: gp)
                geometry.col2im(columns, batch: g, into: groupDx)
                maskInputGradient(groupDx, input: x + first * inputCount, count: g * inputCount)
                continue
            }
            // dcolumns (O·KH·KW, g·P) = im2col(dy_group);  dX (C, g·P) = W' (C, O·KH·KW) · dcolumns
            let tk = transposedGeometry.patch
            transposedGeometry.im2col(groupDy, batch: g, into: columns)
            if g == 1 {
                gemm(.none, .none, m: c, n: p, k: tk, flipped, lda: tk, columns, ldb: p, beta: 0, groupDx, ldc: p)
                maskInputGradient(groupDx, input: x + first * inputCount, count: inputCount)
                continue
            }
            gemm(.none, .none, m: c, n: gp, k: tk, flipped, lda: tk, columns, ldb: gp, beta: 0, reordered, ldc: gp)
            for n in 0..<g {
                for channel in 0..<c {
                    (groupDx + (n * c + channel) * p).update(from: reordered + channel * gp + n * p, count: p)
                }
            }
            maskInputGradient(groupDx, input: x + first * inputCount, count: g * inputCount)
        }
    }

    /// With a fused input ReLU: dx[i] = 0 where x[i] ≤ 0.
    @inline(__always)
    private func maskInputGradient(_ dx: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>, count: Int) {
        if inputReLU { VectorKernels.reluBackward(x, dx, dx, count: count) }
    }

    private func forwardWinograd(
        _ x: UnsafePointer<Float>, batch: Int, _ winograd: WinogradGeometry, into y: UnsafeMutablePointer<Float>
    ) {
        let (o, c) = (outChannels, inChannels)
        let u = transformedKernel(winograd, use: winogradOrdinal)
        let m = workspace.pointer(.reordered)
        for first in Swift.stride(from: 0, to: batch, by: winogradGroupSize) {
            let g = min(winogradGroupSize, batch - first)
            let tiles = g * winograd.tilesPerSample
            let v = workspace.pointer(.columns)
            winograd.transformInput(
                x + first * inputShape.count, batch: g, relu: inputReLU, planes: v + 16 * c * tiles,
                offsets: paddedTileOffsets, into: v)
            runPieces(16) { xi in
                // M[ξ] (O, T) = U[ξ] (O, C) · V[ξ] (C, T)
                gemm(.none, .none, m: o, n: tiles, k: c, u + xi * o * c, lda: c, v + xi * c * tiles, ldb: tiles,
                     beta: 0, m + xi * o * tiles, ldc: tiles)
            }
            winograd.inverseTransformOutput(
                m, batch: g, bias: bias, offsets: mapTileOffsets, into: y + first * outputShape.count)
        }
    }

    /// `body(ξ)` for the 16 independent GEMMs of a Winograd group: in a chunk of a unit with
    /// shared pieces, the other chunks may take some while they wait (SharedPieces.swift).
    private func runPieces(_ count: Int, _ body: (Int) -> Void) {
        ChunkContext.runPieces(in: chunk, count, body)
    }

    /// U for this pass: in a chunk of a unit with shared slots, this chunk's share of the pairs
    /// goes into the slot of `use` and the chunks meet before anyone reads it; otherwise the
    /// whole set goes into this layer's workspace.
    private func transformedKernel(_ winograd: WinogradGeometry, use: Int) -> UnsafeMutablePointer<Float> {
        guard let (chunk, kernels) = sharing else {
            let u = workspace.pointer(.kernelRows)
            winograd.transformKernel(weight, into: u)
            return u
        }
        precondition(
            kernels.capacity >= winograd.kernelCount,
            "Conv2d \(name): shared kernel slots of \(kernels.capacity) floats, U needs \(winograd.kernelCount)")
        let u = kernels.slot(forUse: use)
        winograd.transformKernel(weight, into: u, share: winograd.kernelShare(chunk.index, of: chunk.count))
        chunk.meet()
        return u
    }

    private func backwardWinograd(
        _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>?, batch: Int,
        _ winograd: WinogradGeometry
    ) {
        let (o, c) = (outChannels, inChannels)
        // U and then dU in one slot (16·O·C floats each, the largest buffer of a wide layer): the
        // input gradient, which reads U, comes first, then the weight gradient overwrites U.
        // (A chunk of a unit reads U from the chunks' shared slot instead.) A single group's dM
        // serves both.
        let kernelSet = workspace.pointer(.kernelRows)
        let dm = workspace.pointer(.reordered)
        let v = workspace.pointer(.columns)
        let groupStarts = Swift.stride(from: 0, to: batch, by: winogradGroupSize)
        let tilesPerSample = winograd.tilesPerSample
        func transformOutputGradient(_ first: Int, _ g: Int) {
            winograd.transformOutputGradient(dy + first * outputShape.count, batch: g, offsets: mapTileOffsets, into: dm)
        }
        if let dx {
            let u = transformedKernel(winograd, use: winogradOrdinal + 1)
            for first in groupStarts {
                let g = min(winogradGroupSize, batch - first)
                let tiles = g * tilesPerSample
                transformOutputGradient(first, g)
                runPieces(16) { xi in
                    // dV[ξ] (C, T) = U[ξ]ᵀ (C, O) · dM[ξ] (O, T)
                    gemm(.transposed, .none, m: c, n: tiles, k: o, u + xi * o * c, lda: c, dm + xi * o * tiles,
                         ldb: tiles, beta: 0, v + xi * c * tiles, ldc: tiles)
                }
                let groupDx = dx + first * inputShape.count
                winograd.inverseTransformInputGradient(
                    v, batch: g, planes: v + 16 * c * tiles, offsets: paddedTileOffsets, into: groupDx)
                maskInputGradient(groupDx, input: x + first * inputShape.count, count: g * inputShape.count)
            }
        } else if let (chunk, _) = sharing {
            // No U to share, but still meet: a chunk that went on to another Winograd layer's
            // transform would otherwise write the slot the last one's GEMMs may still read.
            chunk.meet()
        }
        let oneGroup = batch <= winogradGroupSize
        for first in groupStarts {
            let g = min(winogradGroupSize, batch - first)
            let tiles = g * tilesPerSample
            if dx == nil || !oneGroup { transformOutputGradient(first, g) }
            winograd.transformInput(
                x + first * inputShape.count, batch: g, relu: inputReLU, planes: v + 16 * c * tiles,
                offsets: paddedTileOffsets, into: v)
            runPieces(16) { xi in
                // dU[ξ] (O, C) (+)= dM[ξ] (O, T) · V[ξ]ᵀ (T, C), groups in order
                gemm(.none, .transposed, m: o, n: c, k: tiles, dm + xi * o * tiles, lda: tiles, v + xi * c * tiles,
                     ldb: tiles, beta: first == 0 ? 0 : 1, kernelSet + xi * o * c, ldc: c)
            }
        }
        winograd.foldKernelGradient(kernelSet, into: weightGradient)
    }

    private func forwardRowShifted(_ x: UnsafePointer<Float>, batch: Int, into y: UnsafeMutablePointer<Float>) {
        let (o, p, k) = (outChannels, positions, kernel.w)
        let rowPatch = inChannels * k  // C·k
        let length = geometry.shiftedRowLength
        let shifted = workspace.pointer(.columns)  // (C·k, (H + 2p)·W)
        let kernelRows = workspace.pointer(.kernelRows)  // (k, O, C·k)
        // W_ki[o, c·k + kj] = W[o, c, ki, kj]
        for ki in 0..<k {
            for row in 0..<o {
                for c in 0..<inChannels {
                    let source = weight + ((row * inChannels + c) * k + ki) * k
                    (kernelRows + (ki * o + row) * rowPatch + c * k).update(from: source, count: k)
                }
            }
        }
        let stacked = workspace.pointer(.reordered)  // Z (k·O, (H + 2p)·W)
        for n in 0..<batch {
            let target = y + n * o * p
            geometry.rowShifts(x + n * inputShape.count, relu: inputReLU, into: shifted)
            guard stackedRows else {
                for ki in 0..<k {
                    // y_n (O, P) (+)= W_ki (O, C·k) · (shifted + ki·W) (C·k, P)
                    gemm(.none, .none, m: o, n: p, k: rowPatch, kernelRows + ki * o * rowPatch, lda: rowPatch,
                         shifted + ki * geometry.w, ldb: length, beta: ki == 0 ? 0 : 1, target, ldc: p)
                }
                if let bias { addBias(bias, to: target, batch: 1) }
                continue
            }
            // One GEMM packs `shifted` once: Z (k·O, L) = [W_0; …; W_k−1] (k·O, C·k) · shifted (C·k, L)
            gemm(.none, .none, m: k * o, n: length, k: rowPatch, kernelRows, lda: rowPatch, shifted, ldb: length,
                 beta: 0, stacked, ldc: length)
            // y_n[o, t] = Σ_ki Z[ki·O + o, ki·W + t]
            for row in 0..<o {
                let rowTarget = target + row * p
                rowTarget.update(from: stacked + row * length, count: p)
                for ki in 1..<k {
                    VectorKernels.add(stacked + (ki * o + row) * length + ki * geometry.w, into: rowTarget, count: p)
                }
            }
            if let bias { addBias(bias, to: target, batch: 1) }
        }
    }

    private func backwardRowShifted(
        _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>?, batch: Int
    ) {
        let (o, p, k, c) = (outChannels, positions, kernel.w, inChannels)
        let rowPatch = c * k
        let length = geometry.shiftedRowLength
        let columns = workspace.pointer(.columns)  // shifted (C·k, (H + 2p)·W), then dcolumns (O·k², P)
        let kernelRows = workspace.pointer(.kernelRows)  // dW_ki (k, O, C·k)
        let flipped = workspace.pointer(.flippedKernel)
        let stackedDy = workspace.pointer(.reordered)  // D (k·O, (H + 2p)·W)
        kernelRows.update(repeating: 0, count: o * patch)
        if dx != nil { flipKernel(into: flipped) }
        for n in 0..<batch {
            let sampleDy = dy + n * o * p
            geometry.rowShifts(x + n * inputShape.count, relu: inputReLU, into: columns)
            if stackedRows {
                stackShiftedRows(sampleDy, into: stackedDy)
                gemm(.none, .transposed, m: k * o, n: rowPatch, k: length, stackedDy, lda: length, columns,
                     ldb: length, beta: 1, kernelRows, ldc: rowPatch)
            } else {
                for ki in 0..<k {
                    // dW_ki (O, C·k) += dy_n (O, P) · (shifted + ki·W)ᵀ (P, C·k)
                    gemm(.none, .transposed, m: o, n: rowPatch, k: p, sampleDy, lda: p, columns + ki * geometry.w,
                         ldb: length, beta: 1, kernelRows + ki * o * rowPatch, ldc: rowPatch)
                }
            }
            guard let dx, let transposedGeometry else { continue }
            // dcolumns (O·k², P) = im2col(dy_n);  dx_n (C, P) = W' (C, O·k²) · dcolumns
            let tk = transposedGeometry.patch
            transposedGeometry.im2col(sampleDy, batch: 1, into: columns)
            let sampleDx = dx + n * inputShape.count
            gemm(.none, .none, m: c, n: p, k: tk, flipped, lda: tk, columns, ldb: p, beta: 0, sampleDx, ldc: p)
            maskInputGradient(sampleDx, input: x + n * inputShape.count, count: inputShape.count)
        }
        // dW[o, c, ki, kj] += dW_ki[o, c·k + kj]
        for ki in 0..<k {
            for row in 0..<o {
                for channel in 0..<c {
                    let source = kernelRows + (ki * o + row) * rowPatch + channel * k
                    VectorKernels.add(source, into: weightGradient + ((row * c + channel) * k + ki) * k, count: k)
                }
            }
        }
    }

    /// D (k·O, L), D[ki·O + o, s] = dy_n[o, s − ki·W] (0 outside 0..<P): with it,
    /// dW_ki (O, C·k) += dy_n · (shifted + ki·W)ᵀ for every ki is ONE GEMM that packs `shifted`
    /// once: [dW_0; …; dW_k−1] (k·O, C·k) += D (k·O, L) · shiftedᵀ (L, C·k).
    private func stackShiftedRows(_ sampleDy: UnsafePointer<Float>, into stacked: UnsafeMutablePointer<Float>) {
        let (o, p, length) = (outChannels, positions, geometry.shiftedRowLength)
        for ki in 0..<kernel.w {
            let shift = ki * geometry.w
            for row in 0..<o {
                let target = stacked + (ki * o + row) * length
                target.update(repeating: 0, count: shift)
                (target + shift).update(from: sampleDy + row * p, count: p)
                (target + shift + p).update(repeating: 0, count: length - shift - p)
            }
        }
    }

    /// W' (C, O·KH·KW) with W'[c, (o·KH + ki)·KW + kj] = W[o, c, KH−1−ki, KW−1−kj].
    private func flipKernel(into flipped: UnsafeMutablePointer<Float>) {
        let (kh, kw) = kernel
        let area = kh * kw
        let rowLength = outChannels * area
        for o in 0..<outChannels {
            for c in 0..<inChannels {
                let source = weight + (o * inChannels + c) * area
                let target = flipped + c * rowLength + o * area
                for i in 0..<area { target[i] = source[area - 1 - i] }
            }
        }
    }

    private func addBias(_ bias: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, batch: Int) {
        let p = positions
        for n in 0..<batch {
            for channel in 0..<outChannels {
                VectorKernels.addScalar(bias[channel], to: y + (n * outChannels + channel) * p, count: p)
            }
        }
    }
}
