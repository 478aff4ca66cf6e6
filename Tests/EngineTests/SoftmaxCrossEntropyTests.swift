import Engine
import Foundation
import Testing

@Suite struct SoftmaxCrossEntropyTests {
    @Test func lossMatchesAHandComputedCase() {
        let loss = SoftmaxCrossEntropy(classes: 3)
        loss.reserve(maxBatch: 1)
        let logits: [Float] = [1, 2, 3]
        let labels: [Int32] = [0]
        let (sum, correct) = logits.withUnsafeBufferPointer { z in
            labels.withUnsafeBufferPointer { loss.forward(logits: z.baseAddress!, labels: $0.baseAddress!, batch: 1) }
        }
        // −log(e¹ / (e¹ + e² + e³)) = log(1 + e + e²)
        #expect(abs(sum - log(1 + M_E + M_E * M_E)) < 1e-6)
        #expect(correct == 0)
        let g = loss.backward(scale: 2)
        let z = exp(1.0) + exp(2.0) + exp(3.0)
        #expect(abs(Double(g[0]) - 2 * (exp(1.0) / z - 1)) < 1e-6)
        #expect(abs(Double(g[2]) - 2 * exp(3.0) / z) < 1e-6)
    }

    @Test func hugeLogitsStayFinite() {
        let loss = SoftmaxCrossEntropy(classes: 2)
        loss.reserve(maxBatch: 2)
        let logits: [Float] = [1e30, -1e30, 80_000, 80_010]
        let labels: [Int32] = [1, 1]
        let (sum, correct) = logits.withUnsafeBufferPointer { z in
            labels.withUnsafeBufferPointer { loss.forward(logits: z.baseAddress!, labels: $0.baseAddress!, batch: 2) }
        }
        #expect(sum.isFinite)
        #expect(sum > 1e29)  // the first example is confidently wrong
        #expect(correct == 1)
        let g = loss.backward(scale: 1)
        #expect((0..<4).allSatisfy { g[$0].isFinite })
    }
}
