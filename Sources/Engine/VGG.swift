// VGG-16 with batch normalisation, CIFAR variant (MODELS.md §2).
// Simonyan & Zisserman 2015, "Very Deep Convolutional Networks for Large-Scale Image
// Recognition"; BN after every conv as in Ioffe & Szegedy 2015; the CIFAR classifier
// 512 → 512 → classes.
//
// Names follow PyTorch nn.Sequential indices: "features.<i>" (conv i, BN i+1, ReLU i+2,
// pools take an index too) and "classifier.<i>".

public enum VGG {
    /// Channels of each conv3×3 p1 → BN → ReLU; nil is max-pool 2×2 stride 2.
    public static let configuration16: [Int?] = [
        64, 64, nil, 128, 128, nil, 256, 256, 256, nil, 512, 512, 512, nil, 512, 512, 512, nil,
    ]

    /// VGG-16-BN: 14,986,698 parameters on 3×32×32 with 10 classes. `widthDivisor` divides every
    /// conv width and the hidden linear width (for small test models); `dropout` > 0 puts dropout
    /// before each classifier linear (the paper's base architecture; off in benchmarks).
    public static func vgg16BN(
        classes: Int = 10, ghostBatch: Int, inputShape: Shape = Shape(3, 32, 32),
        widthDivisor: Int = 1, dropout: Float = 0
    ) -> Network {
        Network(layers: vgg16BNLayers(classes: classes, ghostBatch: ghostBatch, inputShape: inputShape, widthDivisor: widthDivisor, dropout: dropout), classes: classes)
    }

    /// The layers of `vgg16BN`, before any arena is allocated (e.g. to size a model first).
    public static func vgg16BNLayers(
        classes: Int = 10, ghostBatch: Int, inputShape: Shape = Shape(3, 32, 32),
        widthDivisor: Int = 1, dropout: Float = 0, winograd: Bool = true
    ) -> [Layer] {
        precondition(widthDivisor >= 1 && 64 % widthDivisor == 0, "VGG: widthDivisor must divide 64")
        let workspace = Workspace()
        var layers: [Layer] = []
        var shape = inputShape
        var index = 0
        for entry in configuration16 {
            if let width = entry {
                let conv = Conv2d(
                    name: "features.\(index)", inputShape: shape, outChannels: width / widthDivisor,
                    kernel: 3, padding: 1, bias: false, winograd: winograd, workspace: workspace)
                let norm = BatchNorm2d(name: "features.\(index + 1)", inputShape: conv.outputShape, ghostBatch: ghostBatch)
                // BN reads its input in backward, never its output: the ReLU can overwrite it.
                layers += [conv, norm, ReLU(inputShape: conv.outputShape, inPlace: true)]
                shape = conv.outputShape
                index += 3
            } else {
                let pool = MaxPool2d(inputShape: shape, kernel: 2, stride: 2)
                layers.append(pool)
                shape = pool.outputShape
                index += 1
            }
        }
        let hidden = 512 / widthDivisor
        var classifier = 0
        var dropoutSalt: UInt64 = 0
        func addDropout() {
            guard dropout > 0 else { return }
            layers.append(Dropout(inputShape: shape, probability: dropout, salt: dropoutSalt))
            dropoutSalt += 1
            classifier += 1
        }
        addDropout()
        let first = Linear(name: "classifier.\(classifier)", inputShape: Shape(shape.count), outFeatures: hidden)
        layers += [first, ReLU(inputShape: first.outputShape, inPlace: true)]
        shape = first.outputShape
        classifier += 2
        addDropout()
        layers.append(Linear(name: "classifier.\(classifier)", inputShape: shape, outFeatures: classes))
        return layers
    }
}
