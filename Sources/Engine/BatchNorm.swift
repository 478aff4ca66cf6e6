#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Batch normalisation (Ioffe & Szegedy 2015) over (N, H, W) per channel, with ghost batches
// (Hoffer et al. 2017): in training the batch is cut into consecutive chunks of `ghostBatch`
// samples (the last may be smaller) and each chunk is normalised with its own statistics, so
// the result does not depend on how many workers share a batch (DESIGN §3).
//
// Dimension letters: N batch, C channels, S = H·W positions, G chunk size (samples),
// M = G·S values per channel and chunk.
//
// Training:  μ = mean, σ² = biased variance over the chunk;  x̂ = (x − μ)/√(σ² + ε);
//            y = γ x̂ + β.
//            Batch statistics (forward never touches the running statistics): for channel
//            c of this layer,
//            batchStatistics[offset + c] = mean over chunks of μ,
//            batchStatistics[channels + offset + c] = mean over chunks of the UNBIASED
//            variance σ²·M/(M−1) (σ² itself when M = 1).
// Chunks:    when the pass computes one chunk of a unit (context.chunk, see
//            ChunkCollective.swift), the statistics are the unit's: Σx, then Σ(x − μ)², and in
//            backward Σdy and Σdy·(x − μ), are summed over the unit's chunks in chunk order;
//            each chunk normalises its own rows and adds its own rows' share to dγ, dβ.
// Running:   once per step the trainer hands back the step's batch statistics (the mean over
//            its units of each unit's batch statistics) and the layer folds them in:
//            running ← (1 − momentum)·running + momentum·step statistic (PyTorch's form).
// Inference: y = γ (x − running_mean)/√(running_var + ε) + β.
// Backward (training, per chunk and channel):
//            dγ += Σ dy·x̂;  dβ += Σ dy;  dx = γ/(M√(σ²+ε)) · (M·dy − Σdy − x̂·Σ dy·x̂).

public final class BatchNorm2d: Layer {
    public let inputShape: Shape
    public var outputShape: Shape { inputShape }
    public let channels: Int
    public let ghostBatch: Int
    public let epsilon: Float = 1e-5
    /// Weight of a step's batch statistics in the running statistics (PyTorch's `momentum`).
    public var momentum: Float = 0.1
    private let name: String
    private let spatial: Int

    private var scaleOffset = 0, shiftOffset = 0
    private var meanOffset = 0, varianceOffset = 0
    private var statisticsOffset = 0
    private var scale: UnsafeMutablePointer<Float>!  // γ (C)
    private var shift: UnsafeMutablePointer<Float>!  // β (C)
    private var scaleGradient: UnsafeMutablePointer<Float>!  // (C)
    private var shiftGradient: UnsafeMutablePointer<Float>!  // (C)
    private var runningMean: UnsafeMutablePointer<Float>!  // (C), state
    private var runningVariance: UnsafeMutablePointer<Float>!  // (C), state
    private var statisticsMean: UnsafeMutablePointer<Float>!  // (C) in arenas.batchStatistics
    private var statisticsVariance: UnsafeMutablePointer<Float>!  // (C)

    private var output: FloatBuffer?  // (N, C, S)
    private var chunkMean: FloatBuffer?  // (chunks, C)
    private var chunkInverseStd: FloatBuffer?  // (chunks, C), 1/√(σ²+ε)
    private var input: UnsafePointer<Float>?  // (N, C, S), the last forward's input
    private var lastMode: Mode = .training
    /// The chunk of a unit the last training forward computed (nil: a whole micro-batch).
    private var lastChunk: ChunkContext?
    private var sums: UnsafeMutablePointer<Double>?  // (2C + 1) partial and total sums for chunks

    /// `name` is the PyTorch module name, e.g. "features.1". A flat input [F] is C = F, S = 1.
    public init(name: String, inputShape: Shape, ghostBatch: Int) {
        precondition(ghostBatch >= 1, "BatchNorm2d \(name): ghostBatch must be at least 1, got \(ghostBatch)")
        let (c, h, w) = inputShape.chw
        self.name = name
        self.inputShape = inputShape
        self.channels = c
        self.spatial = h * w
        self.ghostBatch = ghostBatch
    }

    public func declare(into layout: ParameterLayout) {
        layout.scoped(name) {
            scaleOffset = layout.addParameter(
                "weight", shape: [channels], role: .normScale, initializer: .constant(1))
            shiftOffset = layout.addParameter(
                "bias", shape: [channels], role: .normShift, initializer: .constant(0))
            meanOffset = layout.addState("running_mean", shape: [channels], role: .runningMean, initialValue: 0)
            varianceOffset = layout.addState(
                "running_var", shape: [channels], role: .runningVariance, initialValue: 1)
        }
        statisticsOffset = layout.addNormalizationChannels(channels, owner: self)
    }

    /// Fold a step's batch statistics (laid out as `Arenas.batchStatistics`: every BN channel's
    /// mean, then every BN channel's variance; `totalChannels` per half) into this layer's
    /// running statistics.
    public func foldBatchStatistics(_ statistics: UnsafePointer<Float>, totalChannels: Int) {
        let means = statistics + statisticsOffset
        let variances = statistics + totalChannels + statisticsOffset
        for c in 0..<channels {
            runningMean[c] = (1 - momentum) * runningMean[c] + momentum * means[c]
            runningVariance[c] = (1 - momentum) * runningVariance[c] + momentum * variances[c]
        }
    }

    public func bind(_ arenas: Arenas) {
        scale = arenas.parameters + scaleOffset
        shift = arenas.parameters + shiftOffset
        scaleGradient = arenas.gradients + scaleOffset
        shiftGradient = arenas.gradients + shiftOffset
        runningMean = arenas.state + meanOffset
        runningVariance = arenas.state + varianceOffset
        statisticsMean = arenas.batchStatistics + statisticsOffset
        statisticsVariance = arenas.batchStatistics + arenas.normalizationChannels + statisticsOffset
    }

    public func reserve(maxBatch: Int) {
        if let output, output.count >= maxBatch * inputShape.count { return }
        output = FloatBuffer(count: maxBatch * inputShape.count)
        let chunks = (maxBatch + ghostBatch - 1) / ghostBatch
        chunkMean = FloatBuffer(count: chunks * channels)
        chunkInverseStd = FloatBuffer(count: chunks * channels)
        if sums == nil {
            sums = UnsafeMutablePointer<Double>.allocate(capacity: 2 * channels + 1)
        }
    }

    deinit { sums?.deallocate() }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext)
        -> UnsafeMutablePointer<Float>
    {
        guard let output, let chunkMean, let chunkInverseStd else {
            preconditionFailure("BatchNorm2d \(name): reserve(maxBatch:) not called")
        }
        precondition(
            batch * inputShape.count <= output.count, "BatchNorm2d \(name): batch \(batch) exceeds reserved size")
        input = x
        lastMode = context.mode
        let y = output.pointer
        let (c, s) = (channels, spatial)
        if context.mode == .inference {
            for channel in 0..<c {
                let inverse = 1 / (runningVariance[channel] + epsilon).squareRoot()
                let a = scale[channel] * inverse
                let b = shift[channel] - runningMean[channel] * a
                for n in 0..<batch {
                    let base = (n * c + channel) * s
                    VectorKernels.affine(x + base, y + base, count: s, a: a, b: b)
                }
            }
            return y
        }
        lastChunk = context.chunk
        if let chunk = context.chunk {
            forwardChunk(x, y, batch: batch, chunk: chunk)
            return y
        }
        let chunks = (batch + ghostBatch - 1) / ghostBatch
        for channel in 0..<c {
            var meanSum = 0.0
            var varianceSum = 0.0
            for chunk in 0..<chunks {
                let first = chunk * ghostBatch
                let last = min(first + ghostBatch, batch)
                let m = Double((last - first) * s)
                // Two passes in Double: mean, then centred sum of squares.
                var sum = 0.0
                for n in first..<last { sum += VectorKernels.sumDouble(x + (n * c + channel) * s, count: s) }
                let mean = sum / m
                var squares = 0.0
                for n in first..<last {
                    squares += VectorKernels.squaredDeviationsDouble(x + (n * c + channel) * s, count: s, mean: mean)
                }
                let variance = squares / m
                let inverse = Float(1 / (variance + Double(epsilon)).squareRoot())
                chunkMean[chunk * c + channel] = Float(mean)
                chunkInverseStd[chunk * c + channel] = inverse
                meanSum += mean
                varianceSum += m > 1 ? squares / (m - 1) : variance
                let a = scale[channel] * inverse
                let b = shift[channel] - Float(mean) * a
                for n in first..<last {
                    let base = (n * c + channel) * s
                    VectorKernels.affine(x + base, y + base, count: s, a: a, b: b)
                }
            }
            statisticsMean[channel] = Float(meanSum / Double(chunks))
            statisticsVariance[channel] = Float(varianceSum / Double(chunks))
        }
        return y
    }

    /// Training forward of one chunk of a unit: the unit's statistics through the collective.
    private func forwardChunk(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, chunk: ChunkContext) {
        guard let sums, let chunkMean, let chunkInverseStd else { preconditionFailure("BatchNorm2d \(name): not reserved") }
        let (c, s) = (channels, spatial)
        // Σx per channel and this chunk's value count, summed over the unit's chunks.
        for channel in 0..<c {
            var sum = 0.0
            for n in 0..<batch { sum += VectorKernels.sumDouble(x + (n * c + channel) * s, count: s) }
            sums[channel] = sum
        }
        sums[c] = Double(batch * s)
        chunk.collective.allReduceSum(sums, count: c + 1, participant: chunk.index)
        let m = sums[c]
        for channel in 0..<c { sums[c + 1 + channel] = sums[channel] / m }  // means, kept past Σ(x − μ)²
        for channel in 0..<c {
            let mean = sums[c + 1 + channel]
            var squares = 0.0
            for n in 0..<batch {
                squares += VectorKernels.squaredDeviationsDouble(x + (n * c + channel) * s, count: s, mean: mean)
            }
            sums[channel] = squares
        }
        chunk.collective.allReduceSum(sums, count: c, participant: chunk.index)
        for channel in 0..<c {
            let mean = sums[c + 1 + channel]
            let variance = sums[channel] / m
            let inverse = Float(1 / (variance + Double(epsilon)).squareRoot())
            chunkMean[channel] = Float(mean)
            chunkInverseStd[channel] = inverse
            statisticsMean[channel] = Float(mean)
            statisticsVariance[channel] = Float(m > 1 ? sums[channel] / (m - 1) : variance)
            let a = scale[channel] * inverse
            let b = shift[channel] - Float(mean) * a
            for n in 0..<batch {
                let base = (n * c + channel) * s
                VectorKernels.affine(x + base, y + base, count: s, a: a, b: b)
            }
        }
    }

    /// Backward of one chunk of a unit: Σdy and Σdy·(x − μ) over the unit through the collective;
    /// dγ, dβ get this chunk's rows only (the chunks' gradients are summed afterwards).
    private func backwardChunk(
        _ dy: UnsafeMutablePointer<Float>, _ dx: UnsafeMutablePointer<Float>?, x: UnsafePointer<Float>, batch: Int,
        chunk: ChunkContext
    ) {
        guard let sums, let chunkMean, let chunkInverseStd else { preconditionFailure("BatchNorm2d \(name): not reserved") }
        let (c, s) = (channels, spatial)
        for channel in 0..<c {
            let mean = chunkMean[channel]
            var sumDy = 0.0
            var sumDyCentred = 0.0
            for n in 0..<batch {
                let base = (n * c + channel) * s
                let (rowSum, rowDot) = VectorKernels.sumAndCentredDot(dy + base, x + base, count: s, mean: mean)
                sumDy += Double(rowSum)
                sumDyCentred += Double(rowDot)
            }
            shiftGradient[channel] += Float(sumDy)
            scaleGradient[channel] += Float(sumDyCentred) * chunkInverseStd[channel]
            sums[channel] = sumDy
            sums[c + channel] = sumDyCentred
        }
        sums[2 * c] = Double(batch * s)
        chunk.collective.allReduceSum(sums, count: 2 * c + 1, participant: chunk.index)
        guard let dx else { return }
        let m = Float(sums[2 * c])
        for channel in 0..<c {
            let mean = chunkMean[channel]
            let inverse = chunkInverseStd[channel]
            let factor = scale[channel] * inverse
            let meanDy = Float(sums[channel]) / m
            let meanDyXhat = Float(sums[c + channel]) * inverse / m
            let beta = -factor * inverse * meanDyXhat
            let gamma = factor * (mean * inverse * meanDyXhat - meanDy)
            for n in 0..<batch {
                let base = (n * c + channel) * s
                VectorKernels.combine(dy + base, x + base, dx + base, count: s, alpha: factor, beta: beta, gamma: gamma)
            }
        }
    }

    public func backward(
        outputGradient dy: UnsafeMutablePointer<Float>, inputGradient dx: UnsafeMutablePointer<Float>?,
        batch: Int
    ) {
        guard let x = input, let chunkMean, let chunkInverseStd else {
            preconditionFailure("BatchNorm2d \(name): backward before forward")
        }
        let (c, s) = (channels, spatial)
        if lastMode == .inference {
            for channel in 0..<c {
                let inverse = 1 / (runningVariance[channel] + epsilon).squareRoot()
                let mean = runningMean[channel]
                var sumDy: Float = 0
                var sumDyXhat: Float = 0
                let a = scale[channel] * inverse
                for n in 0..<batch {
                    let base = (n * c + channel) * s
                    for i in 0..<s {
                        let g = dy[base + i]
                        sumDy += g
                        sumDyXhat += g * (x[base + i] - mean) * inverse
                        dx?[base + i] = g * a
                    }
                }
                shiftGradient[channel] += sumDy
                scaleGradient[channel] += sumDyXhat
            }
            return
        }
        if let chunk = lastChunk {
            backwardChunk(dy, dx, x: x, batch: batch, chunk: chunk)
            return
        }
        let chunks = (batch + ghostBatch - 1) / ghostBatch
        for channel in 0..<c {
            var totalDy = 0.0
            var totalDyXhat = 0.0
            for chunk in 0..<chunks {
                let first = chunk * ghostBatch
                let last = min(first + ghostBatch, batch)
                let mean = chunkMean[chunk * c + channel]
                let inverse = chunkInverseStd[chunk * c + channel]
                // Σ dy and Σ dy·(x − μ) per row in Float, over rows in Double; x̂ = (x − μ)·inverse.
                var sumDyDouble = 0.0
                var sumDyCentred = 0.0
                for n in first..<last {
                    let base = (n * c + channel) * s
                    let (rowSum, rowDot) = VectorKernels.sumAndCentredDot(dy + base, x + base, count: s, mean: mean)
                    sumDyDouble += Double(rowSum)
                    sumDyCentred += Double(rowDot)
                }
                let sumDy = Float(sumDyDouble)
                let sumDyXhat = Float(sumDyCentred) * inverse
                totalDy += Double(sumDy)
                totalDyXhat += Double(sumDyXhat)
                guard let dx else { continue }
                let m = Float((last - first) * s)
                let factor = scale[channel] * inverse
                let meanDy = sumDy / m
                let meanDyXhat = sumDyXhat / m
                // dx = factor·(dy − meanDy − (x − μ)·inverse·meanDyXhat) = α·dy + β·x + γ
                let beta = -factor * inverse * meanDyXhat
                let gamma = factor * (mean * inverse * meanDyXhat - meanDy)
                for n in first..<last {
                    let base = (n * c + channel) * s
                    VectorKernels.combine(dy + base, x + base, dx + base, count: s, alpha: factor, beta: beta, gamma: gamma)
                }
            }
            shiftGradient[channel] += Float(totalDy)
            scaleGradient[channel] += Float(totalDyXhat)
        }
    }
}
