import ArgumentParser
import Bench
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
                // The reference networks by name, as `ssgd bench` builds them (the ghost batch
                // does not change any count).
                let model = try BenchmarkModel.named(name)
                let network = try model.make(128)
                Console.line("\(name): input \(model.inputShape), \(model.classes) classes")
                Console.line(ModelInfo(network).description)
                Console.line("regularised weight matrices: \(network.weightMatrices.count)")
            }
        }
    }
}
