import ArgumentParser
import Data
import Training

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Look at data sets on disk.",
        subcommands: [DataInspect.self])
}

struct DataInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Recognise, load and summarise a data set folder.",
        discussion: """
            PATH is the folder a config's data_path names: Fashion-MNIST/MNIST IDX files, \
            cifar-10-batches-bin, cifar-100-binary or stl10_binary. Prints, per split, the sample \
            count, image shape, classes and samples per class (and per coarse class for CIFAR-100), \
            and the data fingerprint a training run records.
            """)

    @Argument(help: "Folder holding the data set files.")
    var path: String

    @Option(name: .long, help: "Read PATH as this data set (fashion-mnist, mnist, cifar10, cifar100, stl10) instead of recognising it.")
    var dataset: String?

    func run() throws {
        try reportingErrors {
            let kind = try dataset.map(DatasetInspection.kind(named:))
            let summary = try DatasetInspection.inspect(directory: path, dataset: kind)
            Console.line(summary.report)
        }
    }
}
