import ArgumentParser
import BackpropCore
import BackpropHDF5
import BackpropIO
import Foundation

/// `backprop rechunk`: an earlier version's dataset file, rewritten as the
/// importers now write one.
struct Rechunk: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rechunk",
        abstract: "Rewrite a dataset file with its features chunked by rows and fingerprinted, as the importers write them now.",
        discussion: """
        Files from before 0.10 store /train/x contiguously and without fingerprints: they train in \
        memory and stream as they are, but a stream then reads all of /train once at start to \
        fingerprint it. The rewritten file has the same samples and the same data fingerprint \
        (checkpoints of the old one resume on it); /train is copied a chunk at a time, so a file \
        larger than memory can be rewritten.
        """)

    @Argument(help: "The dataset file to read.")
    var input: String
    @Option(help: "The HDF5 file to write (not the input).")
    var output: String

    func run() throws {
        try Backprop.setUp()
        try refuseOverwritingInputs(output, flag: "--output", inputs: [input])
        let (train, test, validation, classNames, attributes) = try guardedRead(input) {
            let file = try HDF5File.open(input)
            let (train, test) = try DatasetFile.load(file, streamingTrain: true)
            return (train, test, try DatasetFile.validation(of: file), try DatasetFile.classNames(of: file),
                    try DatasetFile.sourceAttributes(of: file))
        }
        try DatasetFile.write(train: .init(train), validation: validation.map(DatasetFile.SplitRows.init), test: .init(test), attributes: attributes, classNames: classNames,
                              imageShape: train.imageShape, to: output)
        let check = try DatasetFile.load(HDF5File.open(output), streamingTrain: true).train.fingerprint
        guard check == train.fingerprint else {
            throw StorageError.invalidContent(path: output, object: "/train", reason: "was written with fingerprint \(check), not the input's \(train.fingerprint)")
        }
        print("wrote \(output): \(train.count) train and \(test.count) test samples, chunked by \(DatasetFile.storageChunkRows(rowBytes: DatasetFile.SplitRows(train).rowBytes, rows: train.count)) rows; data fingerprint \(train.fingerprint)")
    }
}
