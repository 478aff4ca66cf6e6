import Engine
import Testing
import TestSupport

/// MMACs printed to three decimals, as MODELS.md prints them.
func mmacs(_ info: ModelInfo) -> String {
    let thousandths = Int((Double(info.forwardMACs) / 1000).rounded())
    let fraction = String(thousandths % 1000)
    return "\(thousandths / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
}

struct ModelsTests {
    @Test func vgg16BNHasTheParameterCountMACsAndBatchNormsOfModelsMD() {
        let info = ModelInfo(VGG.vgg16BN(classes: 10, ghostBatch: 128))
        #expect(info.parameterCount == 14_986_698)
        #expect(info.batchNormLayers == 13)
        #expect(info.batchNormParameters == 8_448)
        #expect(info.stateCount == 8_448)
        #expect(mmacs(info) == "313.464")
    }

    @Test func ninHasTheParameterCountAndMACsOfModelsMD() {
        let info = ModelInfo(NIN.make(classes: 100))
        #expect(info.parameterCount == 984_356)
        #expect(info.batchNormLayers == 0)
        #expect(mmacs(info) == "223.592")
    }

    @Test func denseNet40HasTheParameterCountMACsAndBatchNormsOfModelsMD() {
        let info = ModelInfo(DenseNet.make(depth: 40, growth: 12, inputShape: Shape(3, 32, 32), classes: 100, ghostBatch: 64))
        #expect(info.parameterCount == 1_060_132)
        #expect(info.batchNormLayers == 39)
        #expect(info.batchNormParameters == 18_096)
        #expect(mmacs(info) == "264.853")
    }

    @Test func theMLPHasTheMACsOfModelsMD() {
        let info = ModelInfo(MLP.make(inputShape: Shape(784), hidden: [1024, 1024], classes: 10))
        #expect(info.parameterCount == 1_863_690)
        #expect(mmacs(info) == "1.862")
    }

    /// DenseNet counts by the closed-form construction of MODELS.md §4: n = (L − 4)/3 layers per
    /// block; a dense layer with c inputs has 2c BN + 9·k·c conv parameters and 9·k·c·S MACs; a
    /// transition with c channels has 2c + c² parameters and c²·S MACs; the head has 2c BN
    /// parameters and a c → classes linear.
    static func denseNetFormula(depth: Int, growth k: Int, size: Int, classes: Int) -> (parameters: Int, macs: Int) {
        let n = (depth - 4) / 3
        var c = 16
        var side = size
        var parameters = 27 * 16
        var macs = 27 * 16 * side * side
        for block in 0..<3 {
            let sumC = n * c + k * n * (n - 1) / 2  // Σ_{i<n} (c + k·i)
            parameters += (2 + 9 * k) * sumC
            macs += 9 * k * sumC * side * side
            c += n * k
            if block < 2 {
                parameters += 2 * c + c * c
                macs += c * c * side * side
                side /= 2
            }
        }
        parameters += 2 * c + c * classes + classes
        macs += c * classes
        return (parameters, macs)
    }

    @Test func denseNet22ForSTL10MatchesTheClosedFormCount() {
        let formula = Self.denseNetFormula(depth: 22, growth: 12, size: 96, classes: 10)
        #expect(formula.parameters == 270_706)
        let info = ModelInfo(DenseNet.make(depth: 22, growth: 12, inputShape: Shape(3, 96, 96), classes: 10, ghostBatch: 64))
        #expect(info.parameterCount == formula.parameters)
        #expect(info.forwardMACs == formula.macs)
        #expect(info.batchNormLayers == 3 * 6 + 2 + 1)
        // The same formula reproduces DenseNet-40's published numbers.
        let forty = Self.denseNetFormula(depth: 40, growth: 12, size: 32, classes: 100)
        #expect(forty.parameters == 1_060_132)
        #expect(abs(Double(forty.macs) / 1e6 - 264.853) < 5e-4)
    }

    @Test func modelsUsePyTorchStyleParameterNamesAndRegulariseOnlyConvAndLinearWeights() {
        let vgg = VGG.vgg16BN(classes: 10, ghostBatch: 128)
        let names = vgg.parameterTable.map(\.name)
        #expect(names.prefix(4) == ["features.0.weight", "features.1.weight", "features.1.bias", "features.3.weight"])
        #expect(names.suffix(4) == ["classifier.0.weight", "classifier.0.bias", "classifier.2.weight", "classifier.2.bias"])
        #expect(vgg.weightMatrices.count == 15)
        #expect(vgg.weightMatrices[1].rows == 64 && vgg.weightMatrices[1].cols == 576)
        let nin = NIN.make(classes: 100)
        #expect(nin.weightMatrices.count == 9)
        #expect(nin.parameterTable.first?.name == "features.0.weight")
        let dense = DenseNet.make(depth: 40, growth: 12, inputShape: Shape(3, 32, 32), classes: 100, ghostBatch: 64)
        #expect(dense.parameterTable.first?.name == "conv1.weight")
        #expect(dense.parameterTable.map(\.name).contains("dense3.11.conv1.weight"))
        #expect(dense.parameterTable.map(\.name).contains("trans2.bn1.bias"))
        #expect(dense.parameterTable.last?.name == "fc.bias")
        #expect(dense.stateTable.count == 2 * 39)
        #expect(dense.weightMatrices.count == 1 + 36 + 2 + 1)
    }
}
