import Engine
import Foundation
import Testing
import TestSupport
import Training

@Suite struct SpectralNormTests {
    func randomMatrix(rows: Int, cols: Int, seed: UInt64) -> FloatBuffer {
        FloatBuffer(GradientCheck.gaussian(count: rows * cols, seed: seed))
    }

    @Test func powerIterationConvergesToLAPACKsLargestSingularValue() throws {
        let (rows, cols) = (40, 27)
        let w = randomMatrix(rows: rows, cols: cols, seed: 1)
        let regularizer = SpectralNormRegularizer(
            matrices: [WeightMatrix(name: "w", offset: 0, rows: rows, cols: cols)], lambda: 0.01, seed: 2)
        for _ in 0..<300 { regularizer.iterate(parameters: w) }
        let reference = try SingularValues.compute(w.pointer, rows: rows, cols: cols, divideAndConquer: false)[0]
        #expect(abs(regularizer.sigmas[0] - reference) / reference < 1e-3)
        let divideAndConquer = try SingularValues.compute(w.pointer, rows: rows, cols: cols)[0]
        #expect(abs(divideAndConquer - reference) / reference < 1e-5)
    }

    @Test func addedGradientEqualsFiniteDifferenceOfHalfLambdaSigmaSquared() throws {
        let (rows, cols) = (6, 5)
        let lambda = 0.5
        let w = randomMatrix(rows: rows, cols: cols, seed: 3)
        let regularizer = SpectralNormRegularizer(
            matrices: [WeightMatrix(name: "w", offset: 0, rows: rows, cols: cols)], lambda: lambda, seed: 4)
        for _ in 0..<500 { regularizer.iterate(parameters: w) }
        let gradient = FloatBuffer(count: rows * cols)
        regularizer.apply(parameters: w, gradient: gradient)
        // Independent oracle: (λ/2)·σ₁² with σ₁ from LAPACK, central differences in double.
        func penalty(_ m: FloatBuffer) throws -> Double {
            let sigma = Double(try SingularValues.compute(m.pointer, rows: rows, cols: cols, divideAndConquer: false)[0])
            return lambda / 2 * sigma * sigma
        }
        let h: Float = 1e-2
        var worst = 0.0
        for i in 0..<(rows * cols) {
            let saved = w[i]
            w[i] = saved + h
            let plus = try penalty(w)
            w[i] = saved - h
            let minus = try penalty(w)
            w[i] = saved
            let numeric = (plus - minus) / Double(2 * h)
            worst = max(worst, abs(numeric - Double(gradient[i])) / max(abs(numeric), 0.05))
        }
        #expect(worst < 5e-3)
    }

    @Test func vectorsPersistAcrossStepsAndThroughACheckpoint() throws {
        var config = Fixtures.syntheticConfig(method: .spectral)
        config.lambda = 0.01
        let directory = Fixtures.temporaryDirectory()
        let trainer = try Fixtures.trainer(config, runDirectory: directory)
        #expect(trainer.method is SpectralNormMethod)
        let initial = trainer.method.state.toArray()
        _ = try trainer.trainStep()
        let afterOne = trainer.method.state.toArray()
        #expect(afterOne != initial)
        // One more power iteration from the persisted vector moves it only a little.
        _ = try trainer.trainStep()
        let afterTwo = trainer.method.state.toArray()
        let change = zip(afterOne, afterTwo).map { abs($0 - $1) }.max() ?? 0
        #expect(change < 0.5)
        try trainer.writeCheckpoint()
        let restored = try Fixtures.trainer(config, runDirectory: directory, resume: true)
        #expect(restored.method.state.toArray() == afterTwo)
        #expect(restored.step == 2)
        // Every persisted vector is a unit vector.
        var offset = 0
        let spectral = try #require(restored.method as? SpectralNormMethod)
        for matrix in spectral.regularizer.matrices {
            let length = norm2(count: matrix.cols, spectral.state.pointer + offset)
            #expect(abs(length - 1) < 1e-5)
            offset += matrix.cols
        }
    }
}
