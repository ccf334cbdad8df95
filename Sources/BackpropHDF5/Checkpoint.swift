import BackpropCore
import BackpropIO
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
///                                    ([0] for a block shuffle: the seed gives it)
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
    public static let programVersion = "0.10.0"
    /// The most parameters a checkpoint may declare (2²⁸: 1 GiB of Float,
    /// three times that with Adam's moments); larger headers are refused unread.
    public static let parameterLimit = Network<Float>.parameterLimit
    /// The columns of /metrics/epochs for `task` (`EpochRecord.columns`).
    public static func epochColumns(_ task: LearningTask) -> [String] { EpochRecord.columns(task).map(\.name) }

    public var network: Network<Float>
    public var configuration: TrainingConfiguration
    /// The optimizer's kind: the configuration's (/optimizer's `kind` attribute repeats it for h5py readers).
    public var optimizerKind: OptimizerKind { configuration.optimizer.kind }
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
        network: Network<Float>, configuration: TrainingConfiguration, optimizerState: OptimizerState<Float>, position: TrainingPosition, order: [Int32] = [],
        history: History = History(), dataPath: String = "", dataFingerprint: String = "", task: LearningTask = .classification
    ) {
        self.network = network
        self.configuration = configuration
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
        self.init(network: trainer.network, configuration: trainer.configuration, optimizerState: trainer.optimizer.state,
                  position: trainer.position, order: trainer.order, history: trainer.history,
                  dataPath: dataPath, dataFingerprint: dataFingerprint, task: trainer.dataset.task)
        self.classNames = classNames
    }

    // MARK: - Saving

    /// Writes the checkpoint to `path` atomically: a temporary file beside it is
    /// written, fsynced and renamed into place, so `path` is never half-written.
    /// - Throws: `StorageError.io` (directory missing or not writable, disk full), `.call`.
    public func save(to path: String) throws(StorageError) {
        try HDF5File.createAtomically(path) { (file) throws(StorageError) in
            try file.setAttribute("format", Checkpoint.format)
            try file.setAttribute("format_version", Int64(Checkpoint.formatVersion))
            try file.setAttribute("program_version", Checkpoint.programVersion)
            try file.setAttribute("created", Date().formatted(.iso8601))

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
            let rate = configuration.schedule.rate(at: position.step, reductions: history.reductions)
            try file.setAttribute("learning_rate", rate, on: "/optimizer")
            for (name, buffer) in optimizerState.buffers.sorted(by: { $0.key < $1.key }) {
                try writeParameters(buffer, under: "/optimizer/\(name)", to: file)
            }

            try file.createGroup("/schedule")
            try file.setAttribute("kind", configuration.schedule.shape.name, on: "/schedule")
            try file.setAttribute("step", Int64(position.step), on: "/schedule")
            // A plateau schedule's state (History.reducesRate).
            try file.setAttribute("reductions", Int64(history.reductions), on: "/schedule")
            try file.setAttribute("last_reduction_epoch", Int64(history.lastReduction ?? -1), on: "/schedule")

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

            // The history, bounded (`History`): the epoch under way's step losses, a digest of all
            // of them, the thinned epoch rows and the best epoch. metrics.csv holds every row.
            let losses = Array(history.stepLosses.suffix(position.batch))
            try file.write(losses, shape: [losses.count], to: "/metrics/step_loss")
            try file.setAttribute("step_loss_digest", history.stepLossDigest, on: "/metrics")
            try file.setAttribute("wall_time", history.wallTime, on: "/metrics")
            try file.setAttribute("epoch_stride", Int64(history.epochStride), on: "/metrics")
            if let best = history.best {
                try file.setAttribute("best_epoch", Int64(best.epoch), on: "/metrics")
                try file.setAttribute("best_score", best.score, on: "/metrics")
            }
            let rows = history.epochs
            for column in EpochRecord.columns(task) {
                try file.write(rows.map(column.value), shape: [rows.count], to: "/metrics/epochs/\(column.name)")
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

    /// Reads a parameter-shaped vector from <group>/layers/<i>/weight and bias,
    /// checking shapes against the network and that every value is finite.
    static func readParameters(of network: Network<Float>, under group: String, from file: HDF5File) throws(StorageError) -> [Float] {
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
