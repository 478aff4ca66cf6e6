import Foundation
import Engine
import Testing
import TestSupport

@Suite struct LinearTests {
    @Test func forwardMatchesAHandComputedCase() {
        let linear = Linear(name: "fc", inputShape: Shape(2), outFeatures: 2)
        let network = Network(layers: [linear], classes: 2)
        network.reserve(maxBatch: 1)
        // W = [[1, 2], [3, 4]], b = [0.5, -1]; x = [1, -1] → y = [1−2+0.5, 3−4−1] = [−0.5, −2]
        let values: [Float] = [1, 2, 3, 4, 0.5, -1]
        for (i, v) in values.enumerated() { network.parameters[i] = v }
        let x: [Float] = [1, -1]
        let y = x.withUnsafeBufferPointer { network.forward($0.baseAddress!, batch: 1, context: .inference) }
        #expect(y[0] == -0.5)
        #expect(y[1] == -2)
    }

    @Test func backwardMatchesFiniteDifferences() {
        let network = Network(layers: [Linear(name: "0", inputShape: Shape(5), outFeatures: 3)], classes: 3)
        network.reserve(maxBatch: 4)
        network.initializeParameters(seed: 3)
        let input = GradientCheck.gaussian(count: 20, seed: 4)
        // Linear + softmax is smooth, so h = 1e-2 in float32 gives ~1e-4 relative agreement.
        let result = GradientCheck.compare(network, input: input, labels: [0, 1, 2, 1], batch: 4)
        #expect(result.checked > 20)
        #expect(result.worstRelativeError < 2e-3, "\(result)")
    }

    @Test func weightRoleIsTheRegularisedMatrix() {
        let network = MLP.make(inputShape: Shape(6), hidden: [4], classes: 3)
        #expect(network.weightMatrices.map(\.name) == ["0.weight", "2.weight"])
        #expect(network.weightMatrices.map(\.rows) == [4, 3])
        #expect(network.weightMatrices.map(\.cols) == [6, 4])
    }

    /// A 3-layer MLP whose Linear layers split their GEMMs into `blocks` pieces run by `jobs`.
    func splitMLP(blocks: Int, jobs: @escaping BlockJobs) -> Network {
        let network = makeNetwork(MLP.layers(inputShape: Shape(13), hidden: [11, 7], classes: 5), maxBatch: 6, seed: 21)
        for case let linear as Linear in network.layers { linear.splitGEMMs(blocks: blocks, jobs: jobs) }
        return network
    }

    func run(_ network: Network) -> (output: [Float], inputGradient: [Float], gradients: [Float]) {
        let input = GradientCheck.gaussian(count: 6 * 13, seed: 22)
        let outputGradient = GradientCheck.gaussian(count: 6 * 5, seed: 23)
        network.gradients.zero()
        let (output, inputGradient) = forwardBackward(network, input, outputGradient, batch: 6)
        return (output, inputGradient, Array(network.gradients.buffer))
    }

    @Test func splitGEMMsGiveTheSameBitsInAnyOrderAndOnAnyThreads() {
        let inOrder = run(splitMLP(blocks: 3) { count, job in for index in 0..<count { job(index) } })
        let reversed = run(splitMLP(blocks: 3) { count, job in for index in (0..<count).reversed() { job(index) } })
        let concurrent = run(splitMLP(blocks: 3) { count, job in
            withoutActuallyEscaping(job) { job in
                nonisolated(unsafe) let job = job
                DispatchQueue.concurrentPerform(iterations: count) { job($0) }
            }
        })
        for other in [reversed, concurrent] {
            #expect(other.output == inOrder.output)
            #expect(other.inputGradient == inOrder.inputGradient)
            #expect(other.gradients == inOrder.gradients)
        }
        // And the same values as one GEMM per product, up to rounding.
        let whole = run(makeNetwork(MLP.layers(inputShape: Shape(13), hidden: [11, 7], classes: 5), maxBatch: 6, seed: 21))
        #expect(maxAbsDifference(whole.output, inOrder.output) < 1e-5)
        #expect(maxAbsDifference(whole.inputGradient, inOrder.inputGradient) < 1e-5)
        #expect(maxAbsDifference(whole.gradients, inOrder.gradients) < 1e-5)
        #expect(inOrder.gradients.contains { $0 != 0 })
    }

    @Test func splitGEMMsMatchFiniteDifferences() {
        let network = splitMLP(blocks: 2) { count, job in for index in 0..<count { job(index) } }
        let input = GradientCheck.gaussian(count: 6 * 13, seed: 24)
        let result = GradientCheck.compare(network, input: input, labels: [0, 1, 2, 3, 4, 0], batch: 6, step: 1e-3, absoluteFloor: 1e-2)
        #expect(result.worstRelativeError < 1e-2, "\(result)")
    }
}
