import BackpropCore
import Foundation

/// A trained model and the complete state of the run that produced it, as one
/// HDF5 file (format version 2):
///
///     /                              format = "backprop-checkpoint", format_version,
///                                    program_version, created
///     /model                         loss, sizes (e.g. "784,256,128,10")
///     /model/layers/<i>              activation ("relu", …, "softmax" or "identity" last)
///     /model/layers/<i>/weight       float32 [out, in]
///     /model/layers/<i>/bias         float32 [out]
///     /training                      configuration (JSON of TrainingConfiguration)
///     /data                          path, fingerprint (shape + hash of the training set),
///                                    metric ("accuracy": classification, "rmse": regression)
///     /optimizer                     kind, step, learning_rate (η of the next step)
///     /optimizer/<buffer>/layers/<i>/weight|bias   moments, mirroring /model
///     /schedule                      kind, step (the schedule is a function of the step)
///     /rng                           seed, initialization_stream, shuffle_stream
///     /progress                      epoch, batch, step
///     /progress/order                int32 [N]: the current epoch's visiting order
///     /metrics                       wall_time
///     /metrics/step_loss             float64 [steps]: every step's mean loss
///     /metrics/epochs/<column>       float64 [epochs]: one row per finished epoch: epoch, step,
///                                    train_loss, test_loss, the task's score (test_accuracy
///                                    or test_rmse), learning_rate, samples_per_second,
///                                    wall_time, and any extras (epsilon, grad_norm_p50, …)
///
/// Paths mirror parameter names, so h5py users find weights where they expect.
public struct Checkpoint: Sendable {
    public static let format = "backprop-checkpoint"
    public static let formatVersion = 2
    public static let programVersion = "0.7.0"
    /// The most parameters a checkpoint may declare (2²⁸: 1 GiB of Float,
    /// three times that with Adam's moments); larger headers are refused unread.
    public static let parameterLimit = Network<Float>.parameterLimit
    /// The columns of /metrics/epochs for `task`, in EpochRecord's order.
    public static func epochColumns(_ task: LearningTask) -> [String] {
        ["epoch", "step", "train_loss", "test_loss", task.scoreColumn, "learning_rate", "samples_per_second", "wall_time"]
    }

    public var network: Network<Float>
    public var configuration: TrainingConfiguration
    public var optimizerKind: OptimizerKind
    public var optimizerState: OptimizerState<Float>
    public var position: TrainingPosition
    /// The current epoch's visiting order (empty in a model-only checkpoint).
    public var order: [Int32]
    public var history: History
    /// The dataset file the run trained on, and its fingerprint.
    public var dataPath: String
    public var dataFingerprint: String
    /// What the model was trained for: classes (judged by accuracy) or real
    /// values (judged by RMSE); predict reads it to decide what to write.
    public var task: LearningTask
    /// The classes' names, when the dataset had them (`ClassNames`).
    public var classNames: [String]? = nil

    public init(
        network: Network<Float>, configuration: TrainingConfiguration, optimizerKind: OptimizerKind,
        optimizerState: OptimizerState<Float>, position: TrainingPosition, order: [Int32] = [],
        history: History = History(), dataPath: String = "", dataFingerprint: String = "", task: LearningTask = .classification
    ) {
        self.network = network
        self.configuration = configuration
        self.optimizerKind = optimizerKind
        self.optimizerState = optimizerState
        self.position = position
        self.order = order
        self.history = history
        self.dataPath = dataPath
        self.dataFingerprint = dataFingerprint
        self.task = task
    }

    /// The checkpoint of a trainer's complete state.
    /// - Parameters:
    ///   - trainer: the run to save.
    ///   - dataPath: the dataset file, recorded for resume.
    ///   - dataFingerprint: the training set's `Dataset.fingerprint`, checked on resume.
    ///   - classNames: the classes' names, when the dataset has them.
    public init(of trainer: Trainer, dataPath: String, dataFingerprint: String, classNames: [String]? = nil) {
        self.init(network: trainer.network, configuration: trainer.configuration,
                  optimizerKind: trainer.optimizer.kind, optimizerState: trainer.optimizer.state,
                  position: trainer.position, order: trainer.order, history: trainer.history,
                  dataPath: dataPath, dataFingerprint: dataFingerprint, task: trainer.dataset.task)
        self.classNames = classNames
    }

    // MARK: - Saving

    /// Writes the checkpoint to `path` atomically: a temporary file beside it is
    /// written, fsynced and renamed into place, so `path` is never half-written.
    /// - Throws: `StorageError.io` (directory missing or not writable, disk full), `.call`.
    public func save(to path: String) throws(StorageError) {
        try HDF5File.writeAtomically(path) { (file) throws(StorageError) in
            try file.setAttribute("format", Checkpoint.format)
            try file.setAttribute("format_version", Int64(Checkpoint.formatVersion))
            try file.setAttribute("program_version", Checkpoint.programVersion)
            try file.setAttribute("created", ISO8601DateFormatter().string(from: Date()))

            try file.createGroup("/model")
            try file.setAttribute("loss", network.loss.rawValue, on: "/model")
            try file.setAttribute("sizes", network.sizes.map(String.init).joined(separator: ","), on: "/model")
            try writeParameters(network.parameters, under: "/model", to: file)
            // A check on read and a short name for the exact bits (`backprop train` prints it).
            try file.setAttribute("parameter_fingerprint", network.fingerprint, on: "/model")
            for (l, layer) in network.layers.enumerated() {
                try file.setAttribute("activation", layer.activation.rawValue, on: "/model/layers/\(l)")
            }

            try file.createGroup("/training")
            try file.setAttribute("configuration", try Checkpoint.json(configuration, path), on: "/training")

            try file.createGroup("/data")
            try file.setAttribute("path", dataPath, on: "/data")
            try file.setAttribute("fingerprint", dataFingerprint, on: "/data")
            try file.setAttribute("metric", task.metricName, on: "/data")
            try ClassNames.write(classNames, to: file, object: "/data")

            try file.createGroup("/optimizer")
            try file.setAttribute("kind", optimizerKind.rawValue, on: "/optimizer")
            try file.setAttribute("step", Int64(optimizerState.step), on: "/optimizer")
            let rate = configuration.schedule.rate(at: position.step)
            try file.setAttribute("learning_rate", rate, on: "/optimizer")
            for (name, buffer) in optimizerState.buffers.sorted(by: { $0.key < $1.key }) {
                try writeParameters(buffer, under: "/optimizer/\(name)", to: file)
            }

            try file.createGroup("/schedule")
            try file.setAttribute("kind", configuration.schedule.shape.name, on: "/schedule")
            try file.setAttribute("step", Int64(position.step), on: "/schedule")

            // Initialisation and every epoch's shuffle draw from generators
            // seeded by (seed, stream); nothing else is random.
            try file.createGroup("/rng")
            try file.setAttribute("seed", configuration.seed, on: "/rng")
            try file.setAttribute("initialization_stream", UInt64(0), on: "/rng")
            try file.setAttribute("shuffle_stream", Epochs.firstShuffleStream + UInt64(position.epoch), on: "/rng")

            try file.write(order, shape: [order.count], to: "/progress/order")
            try file.setAttribute("epoch", Int64(position.epoch), on: "/progress")
            try file.setAttribute("batch", Int64(position.batch), on: "/progress")
            try file.setAttribute("step", Int64(position.step), on: "/progress")

            try file.write(history.stepLosses, shape: [history.stepLosses.count], to: "/metrics/step_loss")
            try file.setAttribute("wall_time", history.wallTime, on: "/metrics")
            let rows = history.epochs
            let columns: [[Double]] = [rows.map { Double($0.epoch) }, rows.map { Double($0.step) }, rows.map(\.trainLoss),
                                       rows.map(\.testLoss), rows.map(\.testScore), rows.map(\.learningRate),
                                       rows.map(\.samplesPerSecond), rows.map(\.wallTime)]
            for (name, column) in zip(Checkpoint.epochColumns(task), columns) {
                try file.write(column, shape: [column.count], to: "/metrics/epochs/\(name)")
            }
            // The extras any epoch measured, NaN where one did not.
            for name in EpochRecord.extraNames where rows.contains(where: { $0.extras[name] != nil }) {
                try file.write(rows.map { $0.extras[name] ?? .nan }, shape: [rows.count], to: "/metrics/epochs/\(name)")
            }
        }
    }

    /// Writes a parameter-shaped vector as <group>/layers/<i>/weight [out, in] and bias [out].
    private func writeParameters(_ values: [Float], under group: String, to file: HDF5File) throws(StorageError) {
        for (l, layer) in network.layers.enumerated() {
            try file.write(Array(values[layer.weightRange]), shape: [layer.outputCount, layer.inputCount],
                           to: "\(group)/layers/\(l)/weight")
            try file.write(Array(values[layer.biasRange]), shape: [layer.outputCount], to: "\(group)/layers/\(l)/bias")
        }
    }

    private static func json(_ configuration: TrainingConfiguration, _ path: String) throws(StorageError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(configuration), let text = String(data: data, encoding: .utf8) else {
            throw .io(path: path, reason: "cannot encode the training configuration")
        }
        return text
    }

    // MARK: - Loading

    /// Reads and validates a checkpoint: the format and version first, then the
    /// layers (shapes must chain, activations must be known, values finite),
    /// the configuration, the optimizer state and the progress.
    /// - Throws: `StorageError` naming the file and the object at fault.
    public static func load(from path: String) throws(StorageError) -> Checkpoint {
        try load(from: HDF5File.open(path))
    }

    /// Reads and validates a checkpoint from an open file (a path or a memory image).
    public static func load(from file: HDF5File) throws(StorageError) -> Checkpoint {
        let path = file.path
        let format = try file.hasAttribute("format") ? try file.stringAttribute("format") : "non-checkpoint HDF5"
        guard format == Checkpoint.format else { throw .wrongFormat(path: path, found: format, expected: Checkpoint.format) }
        let version = Int(try file.attribute("format_version", as: Int64.self))
        guard version == formatVersion else {
            throw .unsupportedVersion(path: path, found: version, supported: formatVersion)
        }

        let lossName = try file.stringAttribute("loss", of: "/model")
        guard let loss = Loss(rawValue: lossName) else {
            throw .invalidContent(path: path, object: "attribute 'loss' of /model", reason: "unknown loss '\(lossName)'")
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
            let name = try file.stringAttribute("activation", of: group)
            guard let activation = Activation(rawValue: name) else {
                throw .invalidContent(path: path, object: "attribute 'activation' of \(group)", reason: "unknown activation '\(name)'")
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
        if try file.hasAttribute("parameter_fingerprint", of: "/model") {
            let saved = try file.stringAttribute("parameter_fingerprint", of: "/model")
            guard saved == network.fingerprint else {
                throw .invalidContent(path: path, object: "/model/layers",
                                      reason: "hold parameters whose fingerprint is \(network.fingerprint), "
                                          + "not the \(saved) saved with them (the file was altered)")
            }
        }

        let text = try file.stringAttribute("configuration", of: "/training")
        guard let data = text.data(using: .utf8),
              let configuration = try? JSONDecoder().decode(TrainingConfiguration.self, from: data)
        else { throw .invalidContent(path: path, object: "attribute 'configuration' of /training", reason: "is not a valid configuration") }
        // Settings a resume would use: each in range, and the model they name the one stored.
        do throws(TrainingError) {
            try configuration.validate()
        } catch {
            throw .invalidContent(path: path, object: "attribute 'configuration' of /training", reason: error.description)
        }
        let named = Network<Float>.activations(layerCount: configuration.sizes.count - 1, hidden: configuration.hiddenActivation,
                                               output: configuration.outputActivation, loss: configuration.loss)
        guard configuration.sizes == network.sizes, configuration.loss == network.loss, named == network.layers.map(\.activation) else {
            func model(_ sizes: [Int], _ activations: [Activation], _ loss: Loss) -> String {
                "\(sizes.map(String.init).joined(separator: "-")) (\(activations.map(\.rawValue).joined(separator: ", ")); \(loss.rawValue))"
            }
            throw .invalidContent(path: path, object: "attribute 'configuration' of /training",
                                  reason: "names the model \(model(configuration.sizes, named, configuration.loss)), but /model holds "
                                      + model(network.sizes, network.layers.map(\.activation), network.loss))
        }

        let kindName = try file.stringAttribute("kind", of: "/optimizer")
        guard let kind = OptimizerKind(rawValue: kindName) else {
            throw .invalidContent(path: path, object: "attribute 'kind' of /optimizer", reason: "unknown optimizer '\(kindName)'")
        }
        var state = OptimizerState<Float>(step: Int(try file.attribute("step", of: "/optimizer", as: Int64.self)))
        for name in ["velocity", "m", "v", "square_avg", "momentum_buffer", "grad_avg", "sum"] where try file.exists("/optimizer/\(name)") {
            state.buffers[name] = try readParameters(of: network, under: "/optimizer/\(name)", from: file)
        }
        guard kind == configuration.optimizer.kind else {
            throw .invalidContent(path: path, object: "attribute 'kind' of /optimizer",
                                  reason: "is '\(kind.rawValue)' but the configuration names '\(configuration.optimizer.kind.rawValue)'")
        }
        let needed = kind.bufferNames(configuration.optimizer)
        for name in needed where state.buffers[name] == nil {
            throw .missingObject(path: path, object: "/optimizer/\(name)")
        }
        let position = TrainingPosition(
            epoch: Int(try file.attribute("epoch", of: "/progress", as: Int64.self)),
            batch: Int(try file.attribute("batch", of: "/progress", as: Int64.self)),
            step: Int(try file.attribute("step", of: "/progress", as: Int64.self)))
        // Every length is known or bounded before anything is read.
        let order = try file.read("/progress/order", as: Int32.self, rank: 1, limit: 1 << 28).values
        try validate(order: order, position: position, batchSize: configuration.batchSize, path: path)

        var history = History(wallTime: try file.attribute("wall_time", of: "/metrics", as: Double.self))
        history.stepLosses = try file.read("/metrics/step_loss", as: Double.self, shape: [position.step]).values
        // The task: files before program 0.3 (no regression yet) have no "metric".
        let metricName = try file.hasAttribute("metric", of: "/data") ? try file.stringAttribute("metric", of: "/data")
                                                                  : LearningTask.classification.metricName
        guard let task = LearningTask(metricName: metricName) else {
            throw .invalidContent(path: path, object: "attribute 'metric' of /data", reason: "unknown metric '\(metricName)'")
        }
        // Files of programs 0.3–0.5 hold both score columns, NaN in the other task's: it is not read.
        let epochColumns = Checkpoint.epochColumns(task)
        let columns = try epochColumns.map { (name) throws(StorageError) in
            try file.read("/metrics/epochs/\(name)", as: Double.self, rank: 1, limit: position.epoch).values
        }
        guard columns.allSatisfy({ $0.count == columns[0].count }) else {
            throw .wrongShape(path: path, object: "/metrics/epochs", expected: "columns of equal length",
                              found: columns.map { "\($0.count)" }.joined(separator: ", "))
        }
        // Epoch and step numbers become Ints: whole numbers no larger than the position's.
        for (c, limit) in [(0, position.epoch), (1, position.step)] {
            if let bad = columns[c].first(where: { !($0 >= 0 && $0 <= Double(limit) && $0.rounded() == $0) }) {
                throw .invalidContent(path: path, object: "/metrics/epochs/\(epochColumns[c])",
                                      reason: "holds \(bad); it must be a whole number from 0 to \(limit)")
            }
        }
        history.epochs = columns[0].indices.map { i in
            EpochRecord(epoch: Int(columns[0][i]), step: Int(columns[1][i]), trainLoss: columns[2][i],
                        testLoss: columns[3][i], testScore: columns[4][i], learningRate: columns[5][i],
                        samplesPerSecond: columns[6][i], wallTime: columns[7][i])
        }
        for name in EpochRecord.extraNames where try file.exists("/metrics/epochs/\(name)") {
            let values = try file.read("/metrics/epochs/\(name)", as: Double.self, shape: [history.epochs.count]).values
            for (i, value) in values.enumerated() where !value.isNaN { history.epochs[i].extras[name] = value }
        }
        var checkpoint = Checkpoint(network: network, configuration: configuration, optimizerKind: kind,
                                    optimizerState: state, position: position, order: order, history: history,
                                    dataPath: try file.stringAttribute("path", of: "/data"),
                                    dataFingerprint: try file.stringAttribute("fingerprint", of: "/data"), task: task)
        checkpoint.classNames = try ClassNames.read(from: file, object: "/data")
        if let names = checkpoint.classNames, task == .classification, names.count != network.outputCount {
            throw .invalidContent(path: path, object: "attribute 'class_names' of /data",
                                  reason: "names \(names.count) classes, but the model has \(network.outputCount) outputs")
        }
        return checkpoint
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

    /// Reads a parameter-shaped vector from <group>/layers/<i>/weight and bias,
    /// checking shapes against the network and that every value is finite.
    private static func readParameters(of network: Network<Float>, under group: String, from file: HDF5File) throws(StorageError) -> [Float] {
        var values = [Float](repeating: 0, count: network.parameterCount)
        for (l, layer) in network.layers.enumerated() {
            for (part, range, shape) in [("weight", layer.weightRange, [layer.outputCount, layer.inputCount]),
                                         ("bias", layer.biasRange, [layer.outputCount])] {
                let object = "\(group)/layers/\(l)/\(part)"
                let read = try file.read(object, as: Float.self, rank: shape.count, shape: shape).values
                if let bad = read.firstIndex(where: { !$0.isFinite }) {
                    throw .invalidContent(path: file.path, object: object, reason: "value \(bad) is \(read[bad]); weights must be finite")
                }
                values.replaceSubrange(range, with: read)
            }
        }
        return values
    }
}
