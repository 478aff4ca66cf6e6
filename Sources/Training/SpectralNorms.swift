import Engine

// σ_max of every regularised weight matrix as runs report it (metrics.jsonl "sigma", the
// progress line, `ssgd report`'s σ figures): 30 power iterations from a seeded Gaussian start,
// independent of the training method's own persistent vectors, so every method's runs are
// measured alike. `ssgd analyze` computes full spectra with LAPACK (its largest singular value
// agrees with this one; AnalysisTests checks it).

public enum SpectralNorms {
    public static let iterations = 30

    /// σ_max by name of each of the network's regularised matrices.
    public static func largest(network: Network, seed: UInt64, iterations: Int = SpectralNorms.iterations) -> [String: Float] {
        let monitor = SpectralNormRegularizer(matrices: network.weightMatrices, lambda: 0, seed: seed ^ 0x4D4F_4E49)
        for _ in 0..<iterations { monitor.iterate(parameters: network.parameters) }
        var result = [String: Float]()
        for (matrix, sigma) in zip(monitor.matrices, monitor.sigmas) { result[matrix.name] = sigma }
        return result
    }
}
