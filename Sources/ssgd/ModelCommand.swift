import ArgumentParser
import Engine
import Training

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model", abstract: "Inspect the reference networks.", subcommands: [Info.self])

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a model's parameter count, BN layers and forward FLOPs (as MODELS.md counts them).")

        @Argument(help: "mlp, vgg16, nin, densenet40 or densenet22.")
        var name: String

        func run() throws {
            try reportingErrors {
                var config = TrainingConfig()
                let shape: Shape
                let classes: Int
                switch name {
                case "mlp": (config.model, shape, classes) = (.mlp, Shape(1, 28, 28), 10)
                case "vgg16": (config.model, shape, classes) = (.vgg16, Shape(3, 32, 32), 10)
                case "nin": (config.model, shape, classes) = (.nin, Shape(3, 32, 32), 100)
                case "densenet40": (config.model, config.depth, shape, classes) = (.densenet, 40, Shape(3, 32, 32), 100)
                case "densenet22": (config.model, config.depth, shape, classes) = (.densenet, 22, Shape(3, 96, 96), 10)
                default: throw ValidationError("unknown model '\(name)'; choose mlp, vgg16, nin, densenet40 or densenet22")
                }
                let network = try ModelFactory.make(config, inputShape: shape, classes: classes)
                let info = ModelInfo(network)
                Console.line("\(name): input \(shape), \(classes) classes")
                Console.line(info.description)
                Console.line("regularised weight matrices: \(network.weightMatrices.count)")
            }
        }
    }
}
