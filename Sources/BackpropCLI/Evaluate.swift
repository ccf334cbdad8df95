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
    @OptionGroup var data: DataOptions
    @OptionGroup var split: SplitOptions
    @OptionGroup(title: "Streaming") var streaming: StreamOptions
    @OptionGroup var threads: WorkerOptions
    @OptionGroup var precision: InferencePrecisionOptions
    @Flag(help: "Print one JSON object instead (checkpoint, parameters, data, split, samples, task, loss, score, and for classes accuracy, class_names, per_class_accuracy, confusion), for scripts.")
    var json = false

    func run() throws {
        let model = try guardedRead(checkpoint) { try Checkpoint.load(from: checkpoint) }
        let (dataset, fileNames) = try guardedRead(data.path) {
            let file = try HDF5File.open(data.path)
            return (try split.read(file, path: data.path, trainedAs: model.configuration, checkpoint: checkpoint, streaming: streaming),
                    try DatasetFile.classNames(of: file))
        }
        // The dataset's class names, else the model's; shown beside the class numbers.
        let names = (fileNames ?? model.classNames).flatMap { $0.count >= model.network.outputCount ? $0 : nil }
        func label(_ c: Int) -> String {
            let name = names.map { " " + $0[c].padding(toLength: min($0.map(\.count).max() ?? 0, 24), withPad: " ", startingAt: 0) } ?? ""
            return String(format: "%2d", c) + name
        }
        try dataset.validate(for: model.network)
        let result = try evaluate(model.network, on: dataset, workers: threads.count, products: precision.products)
        if json { return try printJSON(result, model: model, dataset: dataset, classNames: names) }
        print("\(checkpoint) on \(dataset.name): \(result.sampleCount) samples")
        if let note = precision.note { print(note) }
        switch result.task {
        case .regression:
            print(String(format: "loss %.4g  RMSE %@", result.meanLoss, result.task.format(result.score)))
        case .classification:
            print(String(format: "loss %.4f  accuracy %@", result.meanLoss, result.task.format(result.score)))
            printClasses(of: result, label: label)
        }
    }

    /// The evaluation as one JSON object, keys sorted: what scripts read instead of the lines above.
    private func printJSON(_ result: Evaluation, model: Checkpoint, dataset: any RowSource, classNames: [String]?) throws {
        // JSON has no NaN or infinity: a value that is not finite (a diverged model's loss) is null.
        func number(_ x: Double) -> Any { x.isFinite ? x : NSNull() }
        var object: [String: Any] = [
            "checkpoint": checkpoint, "parameters": model.network.fingerprint, "data": data.path, "split": split.name,
            "samples": result.sampleCount, "task": result.task.rawValue, "loss": number(result.meanLoss), "precision": precision.precision.rawValue,
            "score": ["name": result.task.metricName, "value": number(result.score)],
        ]
        if result.task == .classification {
            object["accuracy"] = number(result.score)
            object["per_class_accuracy"] = result.perClassAccuracy.map(number)
            object["confusion"] = result.confusion
            if let classNames { object["class_names"] = Array(classNames.prefix(model.network.outputCount)) }
        }
        let text = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        print(String(decoding: text, as: UTF8.self))
    }

    /// Per-class accuracy and the confusion matrix, each class labelled by `label`.
    private func printClasses(of result: Evaluation, label: (Int) -> String) {
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
