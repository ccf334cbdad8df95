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
        larger than memory can be rewritten. With --refit, the file is the refit of a dataset with a \
        stored validation split instead: its /train rows followed by its /validation rows as one /train, \
        its /test as it is, no /validation (scikit-learn's refit: once validation has chosen every \
        setting, the last model trains on all the rows; a teacher whose members trained on the split \
        may teach it, docs/distillation.md).
        """)

    @Argument(help: "The dataset file to read.")
    var input: String
    @Option(help: "The HDF5 file to write (not the input).")
    var output: String
    @Flag(help: "Write the refit: /train then /validation as one /train, /test as it is, no /validation (needs a stored /validation).")
    var refit = false

    func run() throws {
        try refuseOverwritingInputs(output, flag: "--output", inputs: [input])
        let (train, test, validation, classNames, attributes) = try guardedRead(input) {
            let file = try HDF5File.open(input)
            let (train, test) = try DatasetFile.splits(of: file, streamingTrain: true)
            return (train, test, try DatasetFile.validation(of: file), try DatasetFile.classNames(of: file),
                    try DatasetFile.sourceAttributes(of: file))
        }
        if refit { return try writeRefit(train: train, validation: validation, test: test, classNames: classNames, attributes: attributes) }
        try DatasetFile.write(train: .init(train), validation: validation.map(DatasetFile.SplitRows.init), test: .init(test), attributes: attributes, classNames: classNames,
                              imageShape: train.imageShape, to: output)
        let check = try DatasetFile.training(of: HDF5File.open(output), streaming: true).fingerprint
        guard check == train.fingerprint else {
            throw StorageError.invalidContent(path: output, object: "/train", reason: "was written with fingerprint \(check), not the input's \(train.fingerprint)")
        }
        print("wrote \(output): \(train.count) train and \(test.count) test samples, chunked by \(DatasetFile.storageChunkRows(rowBytes: DatasetFile.SplitRows(train).rowBytes, rows: train.count)) rows; data fingerprint \(train.fingerprint)")
    }

    /// Writes the refit of `train` and its stored `validation`, and checks that
    /// the written /train is those rows in that order (`Dataset.isRefit`).
    private func writeRefit(train: any RowSource, validation: Dataset?, test: any RowSource, classNames: [String]?, attributes: [String: String]) throws {
        guard let validation else {
            throw ValidationError("--refit: \(input) has no /validation; a refit needs a dataset with a stored validation split "
                                  + "(`backprop import … --validation-fraction`).")
        }
        guard let rows = DatasetFile.SplitRows(train).followed(by: DatasetFile.SplitRows(validation)),
              train.imageShape == validation.imageShape, train.hasTargets(like: validation) else {
            throw ValidationError("--refit: /train and /validation of \(input) differ in their features' width, storage, image shape "
                                  + "or targets; they cannot be one /train.")
        }
        try DatasetFile.write(train: rows, test: .init(test), attributes: attributes, classNames: classNames, imageShape: train.imageShape,
                              to: output)
        // Read back whole: `isRefit` compares the fingerprints of the two parts of rows in memory.
        let written = try DatasetFile.load(output).train
        guard written.isRefit(of: DataRecord.of(training: train, validation: validation)) else {
            throw StorageError.invalidContent(path: output, object: "/train", reason: "is not /train then /validation of \(input) (fingerprint \(written.fingerprint))")
        }
        print("wrote \(output): the refit of \(input), its \(train.count) train then \(validation.count) validation rows as one /train of "
              + "\(written.count), and its \(test.count) test rows; data fingerprint \(written.fingerprint)")
    }
}
