import ArgumentParser
import BackpropHDF5

/// `backprop import`: converts datasets into Backprop's HDF5 layout.
struct ImportData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert a dataset into Backprop's HDF5 layout (/train/x, /train/y, /test/x, /test/y).",
        subcommands: [FashionMNIST.self, IDX.self])

    /// Options shared by the IDX importers.
    struct Options: ParsableArguments {
        @Option(help: "Keep only the first N training samples (to make a small sample).")
        var trainLimit: Int?
        @Option(help: "Keep only the first N test samples.")
        var testLimit: Int?

        func validate() throws {
            for (flag, value) in [("--train-limit", trainLimit), ("--test-limit", testLimit)] {
                if let value, value < 1 { throw ValidationError("\(flag) \(value) is invalid: it must be at least 1.") }
            }
        }
    }

    struct FashionMNIST: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fashion-mnist",
            abstract: "Import Fashion-MNIST from the IDX files of Debian's dataset-fashion-mnist package.")

        @Option(name: .customLong("from"), help: "Directory holding the four IDX files (.gz or plain).")
        var directory = "/usr/share/datasets/fashion-mnist"
        @Option(help: "The HDF5 file to write.")
        var output = "datasets/fashion-mnist.h5"
        @OptionGroup var options: Options

        func run() throws {
            try importIDX(from: directory, to: output, name: "fashion-mnist", options: options)
        }
    }

    struct IDX: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "idx",
            abstract: "Import any dataset in MNIST's IDX layout (train-images-idx3-ubyte, …, t10k-labels-idx1-ubyte).")

        @Option(name: .customLong("from"), help: "Directory holding the four IDX files (.gz or plain).")
        var directory: String
        @Option(help: "The HDF5 file to write.")
        var output: String
        @Option(help: "A name recorded in the file.")
        var name = "idx"
        @OptionGroup var options: Options

        func run() throws {
            try importIDX(from: directory, to: output, name: name, options: options)
        }
    }
}

private func importIDX(from directory: String, to output: String, name: String, options: ImportData.Options) throws {
    let (train, test) = try IDXImport.run(from: directory, to: output, name: name,
                                          trainLimit: options.trainLimit, testLimit: options.testLimit)
    print("wrote \(output): \(train.count) train and \(test.count) test samples of \(train.featureCount) features")
}
