import Engine

// Fast gradient method with an L2 constraint (Goodfellow et al. 2015; the paper's "adversarial
// training" baseline): η = ε · g / ‖g‖₂ per example, g = ∇ₓL. An example whose gradient is
// exactly zero is left unperturbed.

public enum AdversarialPerturbation {
    public static func perturb(
        _ input: UnsafePointer<Float>, gradient: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>,
        batch: Int, sampleSize: Int, epsilon: Float
    ) {
        for n in 0..<batch {
            let x = input + n * sampleSize
            let g = gradient + n * sampleSize
            let y = output + n * sampleSize
            let length = norm2(count: sampleSize, g)
            let factor: Float = length > 0 ? epsilon / length : 0
            for i in 0..<sampleSize { y[i] = x[i] + factor * g[i] }
        }
    }
}
