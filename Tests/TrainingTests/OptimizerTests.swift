import Engine
import Testing
import Training

@Suite struct OptimizerTests {
    @Test func nesterovMatchesAHandComputedTwoStepExample() {
        // PyTorch SGD(nesterov=True, momentum=0.5, lr=0.1), θ₀ = 1:
        // step 1, g = 2: b = 2;            θ = 1 − 0.1·(2 + 0.5·2)   = 0.7
        // step 2, g = 4: b = 0.5·2 + 4 = 5; θ = 0.7 − 0.1·(4 + 0.5·5) = 0.05
        let optimizer = NesterovMomentum(parameterCount: 1, momentum: 0.5)
        let theta = FloatBuffer([1])
        optimizer.step(parameters: theta, gradient: FloatBuffer([2]), learningRate: 0.1)
        #expect(abs(theta[0] - 0.7) < 1e-6)
        #expect(optimizer.velocity[0] == 2)
        optimizer.step(parameters: theta, gradient: FloatBuffer([4]), learningRate: 0.1)
        #expect(optimizer.velocity[0] == 5)
        #expect(abs(theta[0] - 0.05) < 1e-6)
    }

    @Test func learningRateDropsAtExactlyHalfAndThreeQuarters() {
        let schedule = LearningRateSchedule(initial: 1.0, totalSteps: 200)
        #expect(schedule.rate(atStep: 0) == 1.0)
        #expect(schedule.rate(atStep: 99) == 1.0)
        #expect(abs(schedule.rate(atStep: 100) - 0.1) < 1e-12)
        #expect(abs(schedule.rate(atStep: 149) - 0.1) < 1e-12)
        #expect(abs(schedule.rate(atStep: 150) - 0.01) < 1e-12)
        #expect(abs(schedule.rate(atStep: 199) - 0.01) < 1e-12)
        // 7 steps: 50% is step 3.5 and 75% is 5.25, so steps 0–3 use lr0, 4–5 lr0/10, 6 lr0/100.
        let odd = LearningRateSchedule(initial: 1.0, totalSteps: 7)
        #expect((0..<7).map { odd.rate(atStep: $0) > 0.5 } == [true, true, true, true, false, false, false])
        #expect(odd.rate(atStep: 5) > 0.05 && odd.rate(atStep: 6) < 0.05)
    }

    @Test func weightDecayTouchesWeightMatricesOnly() {
        let network = MLP.make(inputShape: Shape(3), hidden: [2], classes: 2)
        network.initializeParameters(seed: 1)
        let gradient = FloatBuffer(count: network.parameterCount)
        WeightDecay(lambda: 0.5, matrices: network.weightMatrices).apply(parameters: network.parameters, gradient: gradient)
        for entry in network.parameterTable {
            for i in 0..<entry.count {
                let expected: Float = entry.name.hasSuffix("weight") ? 0.5 * network.parameters[entry.offset + i] : 0
                #expect(gradient[entry.offset + i] == expected)
            }
        }
    }
}
