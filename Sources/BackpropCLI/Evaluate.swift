import ArgumentParser
import BackpropCore
import BackpropHDF5
import Foundation

/// `backprop evaluate`: loss, accuracy and confusion matrix of a checkpoint.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint on a dataset's test split: loss, accuracy, per-class accuracy, confusion matrix (or RMSE for regression).")

    @Option(help: "The checkpoint file written by `backprop train`.")
    var checkpoint: String
    @Option(help: "The HDF5 dataset.")
    var data = "datasets/fashion-mnist.h5"
    @Option(help: "Which split to evaluate.")
    var split: DatasetSplit = .test
    @Option(help: "Worker threads (default: the active cores).")
    var workers = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard workers > 0 else { throw ValidationError("--workers \(workers) is invalid: it must be at least 1.") }
    }

    func run() throws {
        Backprop.setUp()
        let model = try guardedRead(checkpoint) { try Checkpoint.load(from: checkpoint) }
        let (dataset, fileNames) = try guardedRead(data) {
            let file = try HDF5File.open(data)
            return (try DatasetFile.split(split.rawValue, of: file), try DatasetFile.classNames(of: file))
        }
        // The dataset's class names, else the model's; shown beside the class numbers.
        let names = (fileNames ?? model.classNames).flatMap { $0.count >= model.network.outputCount ? $0 : nil }
        func label(_ c: Int) -> String {
            let name = names.map { " " + $0[c].padding(toLength: min($0.map(\.count).max() ?? 0, 24), withPad: " ", startingAt: 0) } ?? ""
            return String(format: "%2d", c) + name
        }
        try dataset.validate(for: model.network)
        let result = evaluate(model.network, on: dataset, workers: workers)
        print("\(checkpoint) on \(dataset.name): \(result.sampleCount) samples")
        guard !dataset.isRegression else {
            print(String(format: "loss %.4g  RMSE %.4g", result.meanLoss, result.rootMeanSquaredError))
            return
        }
        print(String(format: "loss %.4f  accuracy %.2f%%", result.meanLoss, 100 * result.accuracy))
        print("per-class accuracy:")
        for (c, accuracy) in result.perClassAccuracy.enumerated() {
            print("  class " + label(c) + String(format: "  %6.2f%%", 100 * accuracy))
        }
        print("confusion matrix (rows: true class, columns: predicted):")
        for (c, row) in result.confusion.enumerated() {
            print("  " + label(c) + " " + row.map { String(format: "%5d", $0) }.joined(separator: " "))
        }
    }
}
