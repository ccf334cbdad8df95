import ArgumentParser
import BackpropCore
import BackpropHDF5
import Foundation

/// `backprop predict`: a trained model's outputs for new inputs.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a checkpoint's model on inputs and write its predictions (CSV or HDF5).",
        discussion: """
        Inputs: a Backprop dataset (--split picks test or train) or an IDX images file (bytes scaled \
        by 1/255). Output, chosen by the extension of --output: CSV with one row per sample \
        (index, class, then each output: class probabilities for softmax, y_k otherwise), or HDF5 \
        with /predictions/class int32 [N] and /predictions/outputs float32 [N, K]. A regression \
        model (trained on real-valued targets) writes the outputs y_k alone: no class.
        """)

    @Option(help: "The trained model (a checkpoint).")
    var checkpoint: String
    @Option(help: "The inputs: a Backprop dataset (.h5) or an IDX images file (.idx3-ubyte[.gz]).")
    var input: String
    @OptionGroup var split: SplitOptions
    @Option(help: "Where to write: FILE.csv or FILE.h5.")
    var output = "predictions.csv"

    func validate() throws {
        guard output.hasSuffix(".csv") || output.hasSuffix(".h5") else {
            throw ValidationError("--output \(output) is invalid: end it in .csv or .h5.")
        }
    }

    func run() throws {
        try Backprop.setUp()
        try refuseOverwritingInputs(output, flag: "--output", inputs: [input, checkpoint])
        let model = try guardedRead(checkpoint) { try Checkpoint.load(from: checkpoint) }
        let network = model.network
        let (inputs, width) = try readInputs(trainedAs: model.configuration)
        guard width == network.inputCount else {
            throw ValidationError("\(input) has \(width) features per sample, but the model in \(checkpoint) takes \(network.inputCount).")
        }
        let count = inputs.count / width
        let outputs = network.predict(inputs: inputs)
        let k = network.outputCount
        // Classes for a classifier only: the arg-max of y.
        var classes: [Int32]?
        if model.task == .classification {
            classes = (0..<count).map { n in
                let row = outputs[(n * k)..<((n + 1) * k)]
                return Int32(row.indices.max { row[$0] < row[$1] }! - n * k)
            }
        }
        if output.hasSuffix(".h5") {
            try HDF5File.createAtomically(output) { (file) throws(StorageError) in
                try file.setAttribute("format", "backprop-predictions")
                try file.setAttribute("checkpoint", checkpoint)
                try file.setAttribute("input", input)
                if let classes { try file.write(classes, shape: [count], to: "/predictions/class") }
                try file.write(outputs, shape: [count, k], to: "/predictions/outputs")
                if classes != nil { try ClassNames.write(model.classNames, to: file, object: "/predictions") }
            }
        } else {
            // The class's name beside its number when the model knows the names (quoted per RFC 4180).
            let names = classes == nil ? nil : model.classNames
            let header = ["index"] + (classes == nil ? [] : ["class"]) + (names == nil ? [] : ["class_name"]) + (0..<k).map { "y\($0)" }
            var text = header.joined(separator: ",") + "\n"
            for n in 0..<count {
                var fields = ["\(n)"]
                if let classes { fields.append("\(classes[n])") }
                if let names, let classes { fields.append("\"" + names[Int(classes[n])].replacingOccurrences(of: "\"", with: "\"\"") + "\"") }
                fields += outputs[(n * k)..<((n + 1) * k)].map { "\($0)" }
                text += fields.joined(separator: ",") + "\n"
            }
            try FileSystem.writeAtomically(Array(text.utf8), to: output)
        }
        print("wrote \(count) predictions of \(URL(fileURLWithPath: checkpoint).lastPathComponent) to \(output)")
    }

    /// The inputs x of every sample, row-major, and the features per sample.
    private func readInputs(trainedAs configuration: TrainingConfiguration) throws -> (x: [Float], width: Int) {
        if input.hasSuffix(".h5") || input.hasSuffix(".hdf5") {
            let data = try guardedRead(input) {
                try split.read(HDF5File.open(input), path: input, trainedAs: configuration, checkpoint: checkpoint)
            }
            switch data.features {
            case .bytes(let bytes, let scale): return (bytes.map { Float($0) * scale }, data.featureCount)
            case .floats(let values): return (values, data.featureCount)
            case .streamed: preconditionFailure("predict reads its split in memory")
            }
        }
        let idx = try IDXArray.read(input)
        guard idx.shape.count >= 2 else {
            throw StorageError.wrongRank(path: input, object: "IDX array", expected: 3, found: idx.shape.count)
        }
        let scale: Float = 1 / 255
        return (idx.bytes.map { Float($0) * scale }, idx.shape.dropFirst().reduce(1, *))
    }
}
