import ArgumentParser
import BackpropCore
import BackpropHDF5
import Foundation

/// `backprop ensemble`: a teacher to distil from (`train --teacher`), the
/// average of several models' class probabilities over /train.
struct Ensemble: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Average several models' class probabilities over /train: a teacher for train --teacher.",
        discussion: """
        Every member must have been trained on the same rows and validation split of the dataset (their \
        checkpoints record the data's fingerprint), so that a student trained on that split with \
        --teacher never learns from its own validation rows through the teacher. The teacher's \
        probabilities are p̄ = (1/M) Σ_m p_m, summed in the order given, over /train only (streamed past \
        --data-memory). The ensemble's own accuracy on /train, the validation split and /test is reported, \
        choosing nothing. The output is predict's HDF5 layout with what a student checks \
        (docs/file-formats.md).
        """)

    @Option(parsing: .upToNextOption, help: "The members: checkpoints of classifiers trained on the same data and split.")
    var checkpoints: [String]
    @Option(name: Settings.data.name, help: "The HDF5 dataset the members trained on (default: the first member's).")
    var data: String?
    @OptionGroup var streaming: StreamOptions
    @Option(help: "Where to write the teacher (FILE.h5).")
    var output: String

    func validate() throws {
        guard !checkpoints.isEmpty else { throw ValidationError("--checkpoints: name at least one member checkpoint.") }
        guard output.hasSuffix(".h5") else { throw ValidationError("--output \(output) is invalid: a teacher is HDF5; end it in .h5.") }
        if let repeated = checkpoints.first(where: { path in checkpoints.filter { $0 == path }.count > 1 }) {
            throw ValidationError("--checkpoints names \(repeated) twice; each member once.")
        }
    }

    func run() throws {
        let members = try checkpoints.map { path in (path, try guardedRead(path) { try Checkpoint.load(from: path) }) }
        let (firstPath, first) = members[0]
        for (path, member) in members {
            guard member.task == .classification, member.network.loss == .crossEntropy else {
                throw ValidationError("--checkpoints \(path): its model is not a softmax classifier; a teacher gives class probabilities.")
            }
            guard member.network.inputCount == first.network.inputCount, member.network.outputCount == first.network.outputCount else {
                throw ValidationError("--checkpoints \(path): its model maps \(member.network.inputCount) inputs to \(member.network.outputCount) classes, "
                                      + "\(firstPath)'s \(first.network.inputCount) to \(first.network.outputCount).")
            }
            guard member.dataFingerprint == first.dataFingerprint else {
                throw ValidationError("--checkpoints \(path) was trained on other rows than \(firstPath) (its data fingerprint is "
                                      + "'\(member.dataFingerprint)', the other's '\(first.dataFingerprint)'); a teacher's members share one split.")
            }
        }
        let dataPath = data ?? first.dataPath
        try refuseOverwritingInputs(output, flag: "--output", inputs: [dataPath] + checkpoints)
        let (train, validation, test) = try guardedRead(dataPath) {
            let file = try HDF5File.open(dataPath)
            func read(_ split: String) throws -> any RowSource {
                streaming.streams(featureBytes: try DatasetFile.featureBytes(of: split, in: file))
                    ? try DatasetFile.streamedSplit(split, of: file) : try DatasetFile.split(split, of: file)
            }
            let stored = try file.exists("/validation") ? try read("validation") : nil
            return (try read("train"), stored, try read("test"))
        }
        // The members' rows, as their runs took them from /train: the split the student must train with too.
        let (kept, held) = try Settings.namingFlags {
            try train.validationParts(fraction: first.configuration.validationFraction, seed: first.configuration.seed, stored: validation)
        }
        let trainedOn = DataRecord.of(training: kept, validation: held)
        // Or the file refits the members' rows (their training rows, then their validation rows) for a student without a validation split.
        let refit = held == nil && (kept as? Dataset)?.isRefit(of: first.dataFingerprint) == true
        guard trainedOn == first.dataFingerprint || refit else {
            throw ValidationError("--checkpoints \(firstPath) was not trained on \(dataPath) (its data fingerprint is '\(first.dataFingerprint)', "
                                  + "the file's rows as it split them '\(trainedOn)'); give the members' dataset with --data, or a refit of it "
                                  + "(their training rows, then their validation rows).")
        }
        let networks = members.map(\.1.network)
        let probabilities = try Self.averagedProbabilities(of: networks, on: train)
        let teacher = TeacherFile(probabilities: probabilities, count: train.count, classes: first.network.outputCount,
                                  dataFingerprint: train.fingerprint, trainedOn: first.dataFingerprint, members: checkpoints)
        try teacher.write(to: output)

        func accuracy(_ p: [Float], _ dataset: any RowSource) -> String {
            let k = first.network.outputCount
            let labels = dataset.labels ?? []
            let correct = labels.indices.filter { n in
                let row = p[(n * k)..<((n + 1) * k)]
                return row.indices.max { row[$0] < row[$1] }! - n * k == Int(labels[n])
            }.count
            return String(format: "%.2f %%", 100 * Double(correct) / Double(max(labels.count, 1)))
        }
        var line = "wrote the teacher of \(members.count) model\(members.count == 1 ? "" : "s") over \(train.count) rows of /train to \(output)"
        if refit { line += " (a refit: the members' training rows, then their validation rows)" }
        line += "; the ensemble's accuracy: /train \(accuracy(probabilities, train))"
        if let held { line += ", validation \(accuracy(try Self.averagedProbabilities(of: networks, on: held), held))" }
        line += ", test \(accuracy(try Self.averagedProbabilities(of: networks, on: test), test)) (reported, choosing nothing)"
        print(line)
    }

    /// p̄ = (1/M) Σ_m p_m of every row of `dataset`, [count, classes], the
    /// members' probabilities summed in their order (the same bits for any
    /// machine's block size: each row's sum is its own).
    /// - Throws: `TrainingError.dataUnreadable` when rows cannot be read.
    static func averagedProbabilities(of members: [Network<Float>], on dataset: any RowSource) throws -> [Float] {
        let k = members[0].outputCount
        var average = [Float](repeating: 0, count: dataset.count * k)
        let blockRows = max(1, (8 << 20) / max(1, 4 * max(k, dataset.featureCount)))
        let scale = 1 / Float(members.count)
        for start in stride(from: 0, to: dataset.count, by: blockRows) {
            let rows = start..<min(start + blockRows, dataset.count)
            let inputs = try Settings.namingFlags { try dataset.rows(rows) }.arrays(outputCount: k, as: Float.self).inputs
            var sum = [Float](repeating: 0, count: rows.count * k)
            for network in members {
                let p = network.predict(inputs: inputs)
                for i in sum.indices { sum[i] += p[i] }
            }
            for i in sum.indices { average[start * k + i] = sum[i] * scale }
        }
        return average
    }
}
