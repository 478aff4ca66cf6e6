import Engine
import Testing
import TestSupport

// The SIMD kernels of the step's update passes against their scalar definitions, bit for bit
// (they must not change a result), on lengths that leave a scalar tail.
@Suite struct VectorKernelsTests {
    @Test func allFiniteFindsANaNOrAnInfinityAnywhere() {
        var values = GradientCheck.gaussian(count: 1001, seed: 1)
        #expect(VectorKernels.allFinite(values, count: values.count))
        for (index, bad) in [(0, Float.nan), (517, Float.infinity), (1000, -Float.infinity), (31, Float.nan)] {
            let saved = values[index]
            values[index] = bad
            #expect(!VectorKernels.allFinite(values, count: values.count), "\(bad) at \(index)")
            values[index] = saved
        }
        values[3] = .greatestFiniteMagnitude
        #expect(VectorKernels.allFinite(values, count: values.count))
    }

    @Test func momentumKernelsGiveTheScalarLoopsBits() {
        let count = 1003
        let gradient = GradientCheck.gaussian(count: count, seed: 2)
        let (lr, mu): (Float, Float) = (0.037, 0.9)
        for nesterov in [false, true] {
            var theta = GradientCheck.gaussian(count: count, seed: 3), velocity = GradientCheck.gaussian(count: count, seed: 4)
            var expectedTheta = theta, expectedVelocity = velocity
            for i in 0..<count {
                let updated = mu * expectedVelocity[i] + gradient[i]
                expectedVelocity[i] = updated
                expectedTheta[i] -= nesterov ? lr * (gradient[i] + mu * updated) : lr * updated
            }
            theta.withUnsafeMutableBufferPointer { t in
                velocity.withUnsafeMutableBufferPointer { v in
                    VectorKernels.momentumStep(
                        parameters: t.baseAddress!, gradient: gradient, velocity: v.baseAddress!, count: count,
                        learningRate: lr, momentum: mu, nesterov: nesterov)
                }
            }
            #expect(theta.map(\.bitPattern) == expectedTheta.map(\.bitPattern), "nesterov \(nesterov)")
            #expect(velocity.map(\.bitPattern) == expectedVelocity.map(\.bitPattern), "nesterov \(nesterov)")
        }
    }
}
