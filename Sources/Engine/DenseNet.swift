// DenseNet without bottleneck or compression (MODELS.md §4).
// Huang, Liu, van der Maaten & Weinberger 2017, "Densely Connected Convolutional Networks":
// stem conv3×3 3→16 → dense block → transition → dense block → transition → dense block →
// BN → ReLU → global average pool → linear. Depth L has (L − 4)/3 layers per block.
// DenseNet-40 (k = 12) on 3×32×32 with 100 classes has 1,060,132 parameters.
//
// Names follow densenet.pytorch (Amos): "conv1", "dense<b>.<i>.bn1", "dense<b>.<i>.conv1",
// "trans<b>.bn1", "trans<b>.conv1", "bn1", "fc".

public enum DenseNet {
    /// Stem width of the non-bottleneck DenseNet.
    public static let stemChannels = 16

    public static func make(
        depth: Int = 40, growth: Int = 12, inputShape: Shape = Shape(3, 32, 32), classes: Int = 100,
        ghostBatch: Int
    ) -> Network {
        Network(layers: layers(depth: depth, growth: growth, inputShape: inputShape, classes: classes, ghostBatch: ghostBatch), classes: classes)
    }

    /// The layers of `make`, before any arena is allocated (e.g. to size a model first).
    public static func layers(
        depth: Int = 40, growth: Int = 12, inputShape: Shape = Shape(3, 32, 32), classes: Int = 100,
        ghostBatch: Int, winograd: Bool = true
    ) -> [Layer] {
        precondition(depth >= 7 && (depth - 4) % 3 == 0, "DenseNet: depth must be 3n + 4, got \(depth)")
        let layersPerBlock = (depth - 4) / 3
        let workspace = Workspace()
        let stem = Conv2d(
            name: "conv1", inputShape: inputShape, outChannels: stemChannels, kernel: 3, padding: 1,
            bias: false, winograd: winograd, workspace: workspace)
        var layers: [Layer] = [stem]
        var shape = stem.outputShape
        for block in 1...3 {
            for i in 0..<layersPerBlock {
                let layer = DenseLayer(
                    name: "dense\(block).\(i)", inputShape: shape, growthRate: growth, ghostBatch: ghostBatch,
                    winograd: winograd, workspace: workspace)
                layers.append(layer)
                shape = layer.outputShape
            }
            if block < 3 {
                let transition = Transition(
                    name: "trans\(block)", inputShape: shape, ghostBatch: ghostBatch, workspace: workspace)
                layers.append(transition)
                shape = transition.outputShape
            }
        }
        let norm = BatchNorm2d(name: "bn1", inputShape: shape, ghostBatch: ghostBatch)
        let pool = GlobalAvgPool(inputShape: shape)
        layers += [norm, ReLU(inputShape: shape, inPlace: true), pool]
        layers.append(Linear(name: "fc", inputShape: pool.outputShape, outFeatures: classes))
        return layers
    }
}
