import BackpropCore
import BackpropIO
import Foundation

// Reading a checkpoint: the header, then each part of the layout declared in
// CheckpointSchema.swift in turn (the model, the configuration, the optimizer, the
// progress, the history, the data), each checked as it is read. Every length
// is known or bounded before anything of that length is read.

extension Checkpoint {
    private typealias S = CheckpointSchema

    /// Reads and validates a checkpoint: the format and version first, then the
    /// layers (shapes must chain, activations must be known, values finite),
    /// the configuration, the optimizer state and the progress.
    /// - Throws: `StorageError` naming the file and the object at fault.
    public static func load(from path: String) throws(StorageError) -> Checkpoint {
        try load(from: HDF5File.open(path))
    }

    /// Reads and validates a checkpoint from an open file (a path or a memory image).
    public static func load(from file: HDF5File) throws(StorageError) -> Checkpoint {
        try readHeader(file)
        let network = try readModel(file)
        let configuration = try readConfiguration(file, of: network)
        let state = try readOptimizer(file, of: network, configuration: configuration)
        let (position, order) = try readProgress(file, configuration: configuration)
        let task = try readTask(file)
        let history = try readHistory(file, position: position, task: task)
        var checkpoint = Checkpoint(network: network, configuration: configuration, optimizerState: state,
                                    position: position, order: order, history: history,
                                    dataPath: try S.dataPath.read(from: file),
                                    dataFingerprint: try S.dataFingerprint.read(from: file), task: task)
        checkpoint.classNames = try ClassNames.read(from: file, object: "/data")
        checkpoint.teacherPath = try S.teacherPath.readIfPresent(from: file)
        checkpoint.teacherFingerprint = try S.teacherFingerprint.readIfPresent(from: file)
        (checkpoint.average, checkpoint.trainedParameters) = try readAverage(file, of: network, configuration: configuration, at: position)
        if let names = checkpoint.classNames, task == .classification, names.count != network.outputCount {
            throw .invalidContent(path: file.path, object: S.classNames.described(),
                                  reason: "names \(names.count) classes, but the model has \(network.outputCount) outputs")
        }
        return checkpoint
    }

    // MARK: - The parts

    /// `format` and `format_version`, before anything else.
    private static func readHeader(_ file: HDF5File) throws(StorageError) {
        let format = try file.hasAttribute(S.format.name) ? try S.format.read(from: file) : "non-checkpoint HDF5"
        guard format == Checkpoint.format else { throw .wrongFormat(path: file.path, found: format, expected: Checkpoint.format) }
        let version = Int(try S.formatVersion.read(from: file))
        guard version == formatVersion else {
            throw .unsupportedVersion(path: file.path, found: version, supported: formatVersion)
        }
    }

    /// /model: the loss, the layers (shapes that chain, known activations),
    /// the parameter count (bounded before anything is allocated), the
    /// finite parameters and their fingerprint.
    private static func readModel(_ file: HDF5File) throws(StorageError) -> Network<Float> {
        let path = file.path
        let lossName = try S.loss.read(from: file)
        guard let loss = Loss(rawValue: lossName) else {
            throw .invalidContent(path: path, object: S.loss.described(), reason: "unknown loss '\(lossName)'")
        }
        var sizes: [Int] = []
        var activations: [Activation] = []
        for l in 0... {
            let group = "/model/layers/\(l)"
            guard try file.exists(group) else { break }
            let shape = try file.shape(of: "\(group)/weight")
            guard shape.count == 2 else { throw .wrongRank(path: path, object: "\(group)/weight", expected: 2, found: shape.count) }
            if l == 0 { sizes.append(shape[1]) }
            guard shape[1] == sizes[l] else {
                throw .wrongShape(path: path, object: "\(group)/weight", expected: "[out, \(sizes[l])] (the previous layer's output)",
                                  found: "[\(shape[0]), \(shape[1])]")
            }
            sizes.append(shape[0])
            let name = try S.activation.read(layer: l, from: file)
            guard let activation = Activation(rawValue: name) else {
                throw .invalidContent(path: path, object: S.activation.described(layer: l), reason: "unknown activation '\(name)'")
            }
            activations.append(activation)
        }
        guard !activations.isEmpty else { throw .missingObject(path: path, object: "/model/layers/0") }
        // Refuse a shape bomb before the network (and its optimizer buffers) is allocated.
        // Each term and each sum saturates at Int.max, which the limit then refuses.
        func saturated(_ result: (partialValue: Int, overflow: Bool)) -> Int { result.overflow ? Int.max : result.partialValue }
        let parameterCount = zip(sizes, sizes.dropFirst()).reduce(0) { total, pair in
            let layer = saturated(saturated(pair.0.multipliedReportingOverflow(by: pair.1)).addingReportingOverflow(pair.1))
            return saturated(total.addingReportingOverflow(layer))
        }
        guard parameterCount <= Checkpoint.parameterLimit, parameterCount > 0 else {
            throw .invalidContent(path: path, object: "/model/layers",
                                  reason: "declare \(parameterCount) parameters (\(sizes.map(String.init).joined(separator: "-"))), more than the limit of \(Checkpoint.parameterLimit)")
        }
        var network: Network<Float>
        do {
            network = try Network<Float>(sizes: sizes, activations: activations, loss: loss)
        } catch {
            throw .invalidContent(path: path, object: "/model", reason: error.description)
        }
        network.parameters = try readParameters(of: network, under: "/model", from: file)
        // Checkpoints before 0.4 have no fingerprint.
        if let saved = try S.parameterFingerprint.readIfPresent(from: file) {
            guard saved == network.fingerprint else {
                throw .invalidContent(path: path, object: "/model/layers",
                                      reason: "hold parameters whose fingerprint is \(network.fingerprint), "
                                          + "not the \(saved) saved with them (the file was altered)")
            }
        }
        return network
    }

    /// /training's configuration: every setting a resume would use in range,
    /// and the model it names the one /model holds.
    private static func readConfiguration(_ file: HDF5File, of network: Network<Float>) throws(StorageError) -> TrainingConfiguration {
        let object = S.configuration.described()
        let text = try S.configuration.read(from: file)
        guard let data = text.data(using: .utf8),
              let configuration = try? JSONDecoder().decode(TrainingConfiguration.self, from: data)
        else { throw .invalidContent(path: file.path, object: object, reason: "is not a valid configuration") }
        do throws(TrainingError) {
            try configuration.validate()
        } catch {
            throw .invalidContent(path: file.path, object: object, reason: error.description)
        }
        let named = Network<Float>.activations(layerCount: configuration.sizes.count - 1, hidden: configuration.hiddenActivation,
                                               output: configuration.outputActivation, loss: configuration.loss)
        guard configuration.sizes == network.sizes, configuration.loss == network.loss, named == network.layers.map(\.activation) else {
            func model(_ sizes: [Int], _ activations: [Activation], _ loss: Loss) -> String {
                "\(sizes.map(String.init).joined(separator: "-")) (\(activations.map(\.rawValue).joined(separator: ", ")); \(loss.rawValue))"
            }
            throw .invalidContent(path: file.path, object: object,
                                  reason: "names the model \(model(configuration.sizes, named, configuration.loss)), but /model holds "
                                      + model(network.sizes, network.layers.map(\.activation), network.loss))
        }
        return configuration
    }

    /// /training's average of the parameters, for a run that keeps one: its
    /// count and the trained parameters (/model holding the average), both
    /// present once averaging has begun (SWA before its first epoch: neither).
    /// Its count must be the one the run's `position` gives: an EMA averages
    /// once a step (θ̄_0 = θ_0 counted), SWA once an epoch's end from its start
    /// epoch on, so a count that is not is refused rather than resumed wrong.
    private static func readAverage(_ file: HDF5File, of network: Network<Float>, configuration: TrainingConfiguration,
                                    at position: TrainingPosition) throws(StorageError) -> (WeightAverage?, [Float]?) {
        let hasTrained = try file.exists("/training/parameters")
        guard let kind: WeightAverage.Kind = configuration.ema.map({ .exponential(decay: Float($0)) })
                ?? configuration.swaStart.map({ .uniform(startEpoch: $0) }) else {
            if hasTrained { throw .invalidContent(path: file.path, object: "/training/parameters", reason: "is there, but the configuration averages nothing") }
            return (nil, nil)
        }
        let count = try S.averageCount.readIfPresent(from: file).map(Int.init) ?? 0
        guard count >= 0 else { throw .invalidContent(path: file.path, object: S.averageCount.described(), reason: "is negative (\(count))") }
        let expected = configuration.swaStart.map { max(0, position.epoch - $0 + 1) } ?? position.step
        guard count == expected else {
            let rule = configuration.swaStart != nil ? "one an epoch's end from epoch \(configuration.swaStart!) on" : "one a step"
            throw .invalidContent(path: file.path, object: S.averageCount.described(),
                                  reason: "is \(count), but the run at epoch \(position.epoch), step \(position.step) has averaged \(expected) (\(rule))")
        }
        guard hasTrained == (count > 0 || configuration.ema != nil) else {
            throw .invalidContent(path: file.path, object: "/training/parameters",
                                  reason: hasTrained ? "is there before any parameters were averaged" : "is missing: /model holds an average")
        }
        guard hasTrained else { return (WeightAverage(kind: kind, parameters: [], count: 0), nil) }
        let trained = try readParameters(of: network, under: "/training/parameters", from: file)
        // Checkpoints of 0.10 have no fingerprint of them.
        if let saved = try S.trainedFingerprint.readIfPresent(from: file) {
            var read = network
            read.parameters = trained
            guard saved == read.fingerprint else {
                throw .invalidContent(path: file.path, object: "/training/parameters/layers",
                                      reason: "hold parameters whose fingerprint is \(read.fingerprint), not the \(saved) saved with them (the file was altered)")
            }
        }
        return (WeightAverage(kind: kind, parameters: network.parameters, count: count), trained)
    }

    /// /optimizer: its kind (the configuration's), step count and every buffer that kind keeps.
    private static func readOptimizer(_ file: HDF5File, of network: Network<Float>,
                                      configuration: TrainingConfiguration) throws(StorageError) -> OptimizerState<Float> {
        let kindName = try S.optimizerKind.read(from: file)
        guard let kind = OptimizerKind(rawValue: kindName) else {
            throw .invalidContent(path: file.path, object: S.optimizerKind.described(), reason: "unknown optimizer '\(kindName)'")
        }
        guard kind == configuration.optimizer.kind else {
            throw .invalidContent(path: file.path, object: S.optimizerKind.described(),
                                  reason: "is '\(kind.rawValue)' but the configuration names '\(configuration.optimizer.kind.rawValue)'")
        }
        var state = OptimizerState<Float>(step: Int(try S.optimizerStep.read(from: file)))
        for name in OptimizerKind.allBufferNames where try file.exists("/optimizer/\(name)") {
            state.buffers[name] = try readParameters(of: network, under: "/optimizer/\(name)", from: file)
        }
        for name in kind.bufferNames(configuration.optimizer) where state.buffers[name] == nil {
            throw .missingObject(path: file.path, object: "/optimizer/\(name)")
        }
        return state
    }

    /// /progress: the position, and the epoch's order (a permutation, with
    /// the position inside it), or none for a block shuffle, whose order the
    /// seed gives (the position is then checked against the data on resume).
    private static func readProgress(_ file: HDF5File, configuration: TrainingConfiguration) throws(StorageError) -> (TrainingPosition, [Int32]) {
        let position = TrainingPosition(
            epoch: Int(try S.epoch.read(from: file)), batch: Int(try S.batch.read(from: file)), step: Int(try S.step.read(from: file)))
        let order = try file.read(S.order.path, as: Int32.self, rank: 1, limit: 1 << 28).values
        if order.isEmpty && configuration.blockShuffle.isActive && configuration.shuffle {
            guard position.epoch >= 0, position.step >= 0, position.batch >= 0 else {
                throw .invalidContent(path: file.path, object: "/progress",
                                      reason: "epoch \(position.epoch), batch \(position.batch), step \(position.step) is outside the run")
            }
            return (position, order)
        }
        try validate(order: order, position: position, batchSize: configuration.batchSize, path: file.path)
        return (position, order)
    }

    /// /data's metric: files before program 0.3 (no regression yet) have none.
    private static func readTask(_ file: HDF5File) throws(StorageError) -> LearningTask {
        let metricName = try S.metric.readIfPresent(from: file) ?? LearningTask.classification.metricName
        guard let task = LearningTask(metricName: metricName) else {
            throw .invalidContent(path: file.path, object: S.metric.described(), reason: "unknown metric '\(metricName)'")
        }
        return task
    }

    /// /metrics: the wall time, the epoch under way's step losses and the digest
    /// of all, and the epoch rows of `EpochRecord.columns` with the extras
    /// (thinned by epoch_stride) and the best epoch. Files of programs before
    /// 0.8 hold one loss per step and every row: the digest and the best are
    /// computed from them. (Files of 0.3–0.5 hold both score columns, NaN in
    /// the other task's: it is not read.)
    private static func readHistory(_ file: HDF5File, position: TrainingPosition, task: LearningTask) throws(StorageError) -> History {
        let path = file.path
        let wallTime = try S.wallTime.read(from: file)
        let losses = try file.read(S.stepLoss.path, as: Double.self, rank: 1, limit: position.step).values
        var digest: UInt64
        if let saved = try S.stepLossDigest.readIfPresent(from: file) {
            guard losses.count == position.batch else {
                throw .wrongShape(path: path, object: S.stepLoss.path, expected: "[\(position.batch)] (the epoch's steps so far)",
                                  found: "[\(losses.count)]")
            }
            digest = saved
        } else {
            guard losses.count == position.step else {
                throw .wrongShape(path: path, object: S.stepLoss.path, expected: "[\(position.step)]", found: "[\(losses.count)]")
            }
            digest = losses.reduce(History.emptyDigest, History.digest)
        }
        let stride = try S.epochStride.readIfPresent(from: file) ?? 1
        guard stride >= 1, stride <= 1 << 40, stride & (stride - 1) == 0 else {
            throw .invalidContent(path: path, object: S.epochStride.described(), reason: "holds \(stride); it must be a power of two")
        }
        let columns = EpochRecord.columns(task)
        // A split's columns may be missing (files before 0.8 have no validation_*): NaN, not measured.
        let count = try file.shape(of: S.epochColumn.path(["column": "epoch"])).first ?? 0
        let values = try columns.map { (column) throws(StorageError) in
            if column.isOptional, !(try file.exists(S.epochColumn.path(["column": column.name]))) { return [Double](repeating: .nan, count: min(count, position.epoch)) }
            return try file.read(S.epochColumn.path(["column": column.name]), as: Double.self, rank: 1, limit: position.epoch).values
        }
        guard values.allSatisfy({ $0.count == values[0].count }) else {
            throw .wrongShape(path: path, object: "/metrics/epochs", expected: "columns of equal length",
                              found: values.map { "\($0.count)" }.joined(separator: ", "))
        }
        // Counts (the epoch and step) become Ints: whole numbers no larger than the position's.
        for (column, columnValues) in zip(columns, values) where column.isCount {
            let limit = column.name == "epoch" ? position.epoch : position.step
            if let bad = columnValues.first(where: { !($0 >= 0 && $0 <= Double(limit) && $0.rounded() == $0) }) {
                throw .invalidContent(path: path, object: S.epochColumn.path(["column": column.name]),
                                      reason: "holds \(bad); it must be a whole number from 0 to \(limit)")
            }
        }
        var rows = History.epochs(from: values, columns: columns)
        guard zip(rows, rows.dropFirst()).allSatisfy({ $0.epoch < $1.epoch }) else {
            throw .invalidContent(path: path, object: S.epochColumn.path(["column": "epoch"]), reason: "the epochs are not in ascending order")
        }
        for name in EpochRecord.extraNames where try file.exists(S.epochColumn.path(["column": name])) {
            let extras = try file.read(S.epochColumn.path(["column": name]), as: Double.self, shape: [rows.count]).values
            for (i, value) in extras.enumerated() where !value.isNaN { rows[i].extras[name] = value }
        }
        var best: History.Best?
        if let epoch = try S.bestEpoch.readIfPresent(from: file) {
            guard epoch >= 0, epoch < position.epoch else {
                throw .invalidContent(path: path, object: S.bestEpoch.described(),
                                      reason: "holds \(epoch); it must be an epoch the run logged (0 to \(position.epoch - 1))")
            }
            let score = try S.bestScore.read(from: file)
            guard !score.isNaN else {
                throw .invalidContent(path: path, object: S.bestScore.described(), reason: "is NaN")
            }
            best = History.Best(epoch: Int(epoch), score: score)
        }
        // A plateau schedule's reductions (files before 0.8 have none).
        var (reductions, lastReduction) = (Int64(0), Int64(-1))
        if let saved = try S.reductions.readIfPresent(from: file) {
            reductions = saved
            lastReduction = try S.lastReduction.read(from: file)
            guard reductions >= 0, reductions <= position.epoch, lastReduction >= -1, lastReduction < position.epoch,
                  (reductions == 0) == (lastReduction == -1) else {
                throw .invalidContent(path: path, object: "attributes 'reductions' and 'last_reduction_epoch' of /schedule",
                                      reason: "hold \(reductions) and \(lastReduction); at most one reduction an epoch, the last one logged")
            }
        }
        return History(stepLosses: Array(losses.suffix(position.batch)), stepLossDigest: digest, epochs: rows,
                       epochStride: Int(stride), best: best, task: task, wallTime: wallTime,
                       reductions: Int(reductions), lastReduction: lastReduction < 0 ? nil : Int(lastReduction))
    }

    /// The saved order must be a permutation of 0..<N and the position must
    /// lie inside an epoch of N samples.
    private static func validate(order: [Int32], position: TrainingPosition, batchSize: Int, path: String) throws(StorageError) {
        var seen = [Bool](repeating: false, count: order.count)
        for index in order {
            guard index >= 0, Int(index) < order.count, !seen[Int(index)] else {
                throw .invalidContent(path: path, object: "/progress/order", reason: "is not a permutation of the sample indices")
            }
            seen[Int(index)] = true
        }
        let size = max(batchSize, 1)
        let batches = order.count / size + (order.count % size == 0 ? 0 : 1)
        guard position.epoch >= 0, position.step >= 0, position.batch >= 0, position.batch < max(batches, 1) else {
            throw .invalidContent(path: path, object: "/progress",
                                  reason: "epoch \(position.epoch), batch \(position.batch), step \(position.step) is outside the run")
        }
    }
}
