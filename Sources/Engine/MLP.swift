// Multi-layer perceptron: Linear → ReLU for each hidden width, then Linear to the logits.
// Names follow PyTorch's nn.Sequential indices ("0", "2", "4", …) so weights export as-is.
// MODELS.md §1: 784-1024-1024-10 has 1,863,690 parameters.

public enum MLP {
    public static func make(inputShape: Shape, hidden: [Int], classes: Int) -> Network {
        Network(layers: layers(inputShape: inputShape, hidden: hidden, classes: classes), classes: classes)
    }

    /// The layers of `make`, before any arena is allocated (e.g. to size a model first).
    public static func layers(inputShape: Shape, hidden: [Int], classes: Int) -> [Layer] {
        var layers: [Layer] = []
        var shape = Shape(inputShape.count)
        var index = 0
        for width in hidden {
            let linear = Linear(name: String(index), inputShape: shape, outFeatures: width)
            layers.append(linear)
            layers.append(ReLU(inputShape: linear.outputShape, inPlace: true))  // Linear backward reads its input only
            shape = linear.outputShape
            index += 2
        }
        layers.append(Linear(name: String(index), inputShape: shape, outFeatures: classes))
        return layers
    }
}
