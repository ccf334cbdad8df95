import ArgumentParser
import BackpropCore
import BackpropHDF5
import BackpropIO
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
    @OptionGroup var streaming: StreamOptions
    @Option(help: "Where to write: FILE.csv or FILE.h5.")
    var output = "predictions.csv"
    @OptionGroup var precision: InferencePrecisionOptions

    func validate() throws {
        guard output.hasSuffix(".csv") || output.hasSuffix(".h5") else {
            throw ValidationError("--output \(output) is invalid: end it in .csv or .h5.")
        }
    }

    func run() throws {
        try refuseOverwritingInputs(output, flag: "--output", inputs: [input, checkpoint])
        let model = try guardedRead(checkpoint) { try Checkpoint.load(from: checkpoint) }
        let network = model.network
        let data = try readInputs(trainedAs: model.configuration)
        guard data.featureCount == network.inputCount else {
            throw ValidationError("\(input) has \(data.featureCount) features per sample, but the model in \(checkpoint) takes \(network.inputCount).")
        }
        let (count, k) = (data.count, network.outputCount)
        // Classes for a classifier only: the arg-max of y.
        let classifies = model.task == .classification
        // The model's outputs a block of samples at a time (a streamed split is read a block at a time too).
        let blockRows = max(1, (4 << 20) / max(1, 4 * max(k, data.featureCount)))
        // A split that cannot be read stops the writing (which then leaves `output` as it was) and is the error reported.
        var failure: (any Error)?
        func forEachBlock(_ body: (Range<Int>, [Float], [Int32]) throws(StorageError) -> Void) throws(StorageError) {
            for start in stride(from: 0, to: count, by: blockRows) {
                let rows = start..<min(start + blockRows, count)
                let block: Dataset
                do { block = try Settings.namingFlags { try data.rows(rows) } } catch {
                    failure = error
                    throw .io(path: output, reason: "not written")
                }
                let outputs = network.predict(inputs: block.arrays(outputCount: k, as: Float.self).inputs, precision: precision.precision)
                let classes: [Int32] = classifies ? (0..<rows.count).map { n in
                    let row = outputs[(n * k)..<((n + 1) * k)]
                    return Int32(row.indices.max { row[$0] < row[$1] }! - n * k)
                } : []
                try body(rows, outputs, classes)
            }
        }
        do {
            if output.hasSuffix(".h5") {
                let verify = { (file: HDF5File) throws(StorageError) in
                    guard try file.shape(of: TeacherFile.outputs) == [count, k] else {
                        throw .invalidContent(path: output, object: TeacherFile.outputs, reason: "was not written whole")
                    }
                }
                try HDF5File.createOnDisk(output, expectedBytes: count * (4 * k + 4), verify: verify) { (file) throws(StorageError) in
                    try file.setAttribute("format", TeacherFile.format)
                    try file.setAttribute("checkpoint", checkpoint)
                    try file.setAttribute("input", input)
                    let writer = try file.createRows(TeacherFile.outputs, of: Float.self, rows: count, columns: k,
                                                     chunkRows: DatasetFile.storageChunkRows(rowBytes: 4 * k, rows: count))
                    var classes: [Int32] = []
                    try forEachBlock { (rows, outputs, block) throws(StorageError) in
                        try outputs.withUnsafeBufferPointer { (values) throws(StorageError) in try writer.write(values, rows: rows) }
                        classes += block
                    }
                    if classifies { try file.write(classes, shape: [count], to: "/predictions/class") }
                    if classifies { try ClassNames.write(model.classNames, to: file, object: "/predictions") }
                }
            } else {
                // The class's name beside its number when the model knows the names (quoted per RFC 4180).
                let names = classifies ? model.classNames : nil
                let header = ["index"] + (classifies ? ["class"] : []) + (names == nil ? [] : ["class_name"]) + (0..<k).map { "y\($0)" }
                try FileSystem.writeAtomically(to: output) { (file) throws(StorageError) in
                    try FileSystem.write(Array((header.joined(separator: ",") + "\n").utf8), to: file, reporting: output)
                    try forEachBlock { (rows, outputs, classes) throws(StorageError) in
                        var text = ""
                        for (i, n) in rows.enumerated() {
                            var fields = ["\(n)"]
                            if classifies { fields.append("\(classes[i])") }
                            if let names { fields.append("\"" + names[Int(classes[i])].replacingOccurrences(of: "\"", with: "\"\"") + "\"") }
                            fields += outputs[(i * k)..<((i + 1) * k)].map { "\($0)" }
                            text += fields.joined(separator: ",") + "\n"
                        }
                        try FileSystem.write(Array(text.utf8), to: file, reporting: output)
                    }
                }
            }
        } catch {
            throw failure ?? error
        }
        if let note = precision.note { print(note) }
        print("wrote \(count) predictions of \(URL(fileURLWithPath: checkpoint).lastPathComponent) to \(output)")
    }

    /// The samples to predict: a split of a dataset (streamed past --data-memory, or with --stream), or an IDX file's images.
    private func readInputs(trainedAs configuration: TrainingConfiguration) throws -> any RowSource {
        if input.hasSuffix(".h5") || input.hasSuffix(".hdf5") {
            return try guardedRead(input) {
                try split.read(HDF5File.open(input), path: input, trainedAs: configuration, checkpoint: checkpoint, streaming: streaming)
            }
        }
        let idx = try IDXArray.read(input)
        guard idx.shape.count >= 2 else {
            throw StorageError.wrongRank(path: input, object: "IDX array", expected: 3, found: idx.shape.count)
        }
        let width = idx.shape.dropFirst().reduce(1, *)
        return Dataset(name: input, features: idx.bytes, labels: [UInt8](repeating: 0, count: idx.shape[0]), featureCount: width, scale: 1 / 255)
    }
}
