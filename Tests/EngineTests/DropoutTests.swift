import Engine
import Testing
import TestSupport

struct DropoutTests {
    func mask(seed: UInt64, step: UInt64, unit: UInt64, salt: UInt64 = 0) -> [Float] {
        let dropout = Dropout(inputShape: Shape(64), probability: 0.5, salt: salt)
        let network = makeNetwork([dropout], maxBatch: 2)
        let y = forward(
            network, [Float](repeating: 1, count: 128), batch: 2,
            context: ForwardContext(mode: .training, seed: seed, step: step, unit: unit))
        #expect(y == dropout.lastMask(count: 128))
        return y
    }

    @Test func theSameSeedStepAndUnitDrawTheSameMaskInAnyProcess() {
        let a = mask(seed: 1, step: 7, unit: 3)
        #expect(a == mask(seed: 1, step: 7, unit: 3))
        // Inverted dropout: kept elements are scaled by 1/(1 − p) = 2.
        #expect(Set(a) == [0, 2])
        let kept = a.filter { $0 > 0 }.count
        #expect(kept > 40 && kept < 88)  // Binomial(128, ½): mean 64, sd ≈ 5.7
    }

    @Test func anotherUnitStepSeedOrLayerDrawsAnotherMask() {
        let a = mask(seed: 1, step: 7, unit: 3)
        #expect(a != mask(seed: 1, step: 7, unit: 4))
        #expect(a != mask(seed: 1, step: 8, unit: 3))
        #expect(a != mask(seed: 2, step: 7, unit: 3))
        #expect(a != mask(seed: 1, step: 7, unit: 3, salt: 1))
    }

    @Test func inferenceIsTheIdentityAndTrainingBackwardAppliesTheMask() {
        let dropout = Dropout(inputShape: Shape(8), probability: 0.25, salt: 0)
        let network = makeNetwork([dropout], maxBatch: 1)
        let x: [Float] = [1, -2, 3, -4, 5, -6, 7, -8]
        #expect(forward(network, x, batch: 1, context: .inference) == x)
        #expect(backward(network, x, batch: 1) == x)
        let y = forward(network, x, batch: 1, context: ForwardContext(mode: .training, seed: 9))
        let m = dropout.lastMask(count: 8)
        #expect(Set(m).isSubset(of: [0, Float(4) / 3]))
        #expect(y == zip(x, m).map { $0 * $1 })
        #expect(backward(network, [Float](repeating: 1, count: 8), batch: 1) == m)
    }
}
