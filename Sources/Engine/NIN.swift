// Network in Network, CIFAR variant (MODELS.md §3).
// Lin, Chen & Yan 2014, "Network In Network" (the Caffe CIFAR-10 model), here with 100
// classes: three mlpconv blocks (a k×k conv then two 1×1 convs, each with bias and ReLU,
// including the last), max-pool 3×3 s2 p1, average-pool 3×3 s2 p1 (in-bounds mean) and a
// global average pool over the class maps as the logits. No BN.
//
// Names follow PyTorch nn.Sequential indices: "features.<i>" for every layer in order.

public enum NIN {
    /// 984,356 parameters on 3×32×32 with 100 classes. `dropout` > 0 adds dropout after the
    /// two pooling stages (the paper's base architecture; off in benchmarks).
    public static func make(
        classes: Int = 100, inputShape: Shape = Shape(3, 32, 32), dropout: Float = 0
    ) -> Network {
        Network(layers: layers(classes: classes, inputShape: inputShape, dropout: dropout), classes: classes)
    }

    /// The layers of `make`, before any arena is allocated (e.g. to size a model first).
    public static func layers(
        classes: Int = 100, inputShape: Shape = Shape(3, 32, 32), dropout: Float = 0, winograd: Bool = true
    ) -> [Layer] {
        let workspace = Workspace()
        var layers: [Layer] = []
        var shape = inputShape
        var dropoutSalt: UInt64 = 0
        func conv(_ out: Int, _ kernel: Int, padding: Int = 0) {
            let layer = Conv2d(
                name: "features.\(layers.count)", inputShape: shape, outChannels: out, kernel: kernel,
                padding: padding, winograd: winograd, workspace: workspace)
            layers += [layer, ReLU(inputShape: layer.outputShape, inPlace: true)]  // conv backward reads its input only
            shape = layer.outputShape
        }
        func pool(_ layer: Layer) {
            layers.append(layer)
            shape = layer.outputShape
            if dropout > 0 {
                layers.append(Dropout(inputShape: shape, probability: dropout, salt: dropoutSalt))
                dropoutSalt += 1
            }
        }
        conv(192, 5, padding: 2)
        conv(160, 1)
        conv(96, 1)
        pool(MaxPool2d(inputShape: shape, kernel: 3, stride: 2, padding: 1))
        conv(192, 5, padding: 2)
        conv(192, 1)
        conv(192, 1)
        pool(AvgPool2d(inputShape: shape, kernel: 3, stride: 2, padding: 1))
        conv(192, 3, padding: 1)
        conv(192, 1)
        conv(classes, 1)
        layers.append(GlobalAvgPool(inputShape: shape))
        return layers
    }
}
