import BackpropCore
import BackpropIO
import Foundation

/// A trained model and the complete state of the run that produced it, as one
/// HDF5 file (format version 2) whose every attribute and dataset is declared
/// in `CheckpointSchema` (the table in docs/file-formats.md is
/// `Checkpoint.schemaTable`). Paths mirror parameter names
/// (/model/layers/<i>/weight [out, in]), so h5py users find weights where they expect.
public struct Checkpoint: Sendable {
    public static let format = "backprop-checkpoint"
    public static let formatVersion = 2
    public static let programVersion = "0.11.0"
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
    /// The teacher file the run distils from (`TeacherFile`), recorded for resume; nil when it distils from none.
    public var teacherPath: String? = nil
    /// The teacher's own fingerprint (`RowSource.teacherFingerprint`, `TeacherColumn.fingerprint`); nil without one, or in a checkpoint that predates it.
    public var teacherFingerprint: String? = nil
    /// The run's average of the parameters (`WeightAverage`), when it keeps
    /// one: then `network` (what evaluate, predict and export read) holds the
    /// average once it has begun, and the trained parameters are kept beside it.
    public var average: WeightAverage? = nil
    /// The parameters the optimizer updates, where `network` holds their average; nil: `network`'s own.
    public var trainedParameters: [Float]? = nil

    /// The network a resume trains on: the trained parameters, not their average.
    public var trainedNetwork: Network<Float> {
        guard let trainedParameters else { return network }
        var trained = network
        trained.parameters = trainedParameters
        return trained
    }

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

    /// A model alone, with no run to resume (Keras' `model.save`): what
    /// `evaluate`, `predict` and `export` read. It names no data, its
    /// optimizer state is a fresh optimizer's and its position the start
    /// (`isModelOnly`); `train --resume` refuses it.
    /// - Parameters:
    ///   - network: the model.
    ///   - configuration: how it was trained (its loss, activations and optimizer are recorded).
    ///   - task: what it was trained for: classes or real values.
    ///   - classNames: the classes' names, if any.
    public init(model network: Network<Float>, configuration: TrainingConfiguration, task: LearningTask = .classification,
                classNames: [String]? = nil) {
        var state = OptimizerState<Float>()
        let settings = configuration.optimizer
        for name in settings.kind.bufferNames(settings) {
            // Adagrad's accumulator starts at its initial value; every other buffer at 0.
            let start = name == "sum" ? Float(settings.accumulatorStart) : 0
            state.buffers[name] = [Float](repeating: start, count: network.parameterCount)
        }
        self.init(network: network, configuration: configuration, optimizerState: state, position: TrainingPosition(), task: task)
        self.classNames = classNames
    }

    /// Whether it is a model alone (`init(model:configuration:task:classNames:)`), with no run to resume.
    public var isModelOnly: Bool { dataFingerprint.isEmpty }

    /// The checkpoint of a trainer's complete state.
    /// - Parameters:
    ///   - trainer: the run to save.
    ///   - dataPath: the dataset file, recorded for resume.
    ///   - dataFingerprint: what the run trained on (`DataRecord`; with a teacher, `taughtFingerprint`), checked on resume.
    ///   - classNames: the classes' names, when the dataset has them.
    public init(of trainer: Trainer, dataPath: String, dataFingerprint: String, classNames: [String]? = nil) {
        self.init(network: trainer.evaluatedNetwork, configuration: trainer.configuration, optimizerState: trainer.optimizer.state,
                  position: trainer.position, order: trainer.order, history: trainer.history,
                  dataPath: dataPath, dataFingerprint: dataFingerprint, task: trainer.dataset.task)
        self.classNames = classNames
        teacherFingerprint = trainer.dataset.teacherFingerprint
        average = trainer.average
        if trainer.average?.isActive == true { trainedParameters = trainer.network.parameters }
    }

    // MARK: - Saving

    /// Writes the checkpoint to `path` atomically: a temporary file beside it is
    /// written, fsynced and renamed into place, so `path` is never half-written.
    /// - Throws: `StorageError.io` (directory missing or not writable, disk full), `.call`.
    public func save(to path: String) throws(StorageError) {
        typealias S = CheckpointSchema
        try HDF5File.createAtomically(path) { (file) throws(StorageError) in
            try S.format.write(Checkpoint.format, to: file)
            try S.formatVersion.write(Int64(Checkpoint.formatVersion), to: file)
            try S.programVersion.write(Checkpoint.programVersion, to: file)
            try S.created.write(Date().formatted(.iso8601), to: file)

            try file.createGroup("/model")
            try S.loss.write(network.loss.rawValue, to: file)
            try S.sizes.write(network.sizes.map(String.init).joined(separator: ","), to: file)
            try writeParameters(network.parameters, under: "/model", to: file)
            // A check on read and a short name for the exact bits (`backprop train` prints it).
            try S.parameterFingerprint.write(network.fingerprint, to: file)
            for (l, layer) in network.layers.enumerated() {
                try S.activation.write(layer.activation.rawValue, layer: l, to: file)
            }

            try file.createGroup("/training")
            try S.configuration.write(try Checkpoint.json(configuration, path), to: file)
            if let average { try S.averageCount.write(Int64(average.count), to: file) }
            if let trainedParameters {
                try writeParameters(trainedParameters, under: "/training/parameters", to: file)
                var trained = network
                trained.parameters = trainedParameters
                try S.trainedFingerprint.write(trained.fingerprint, to: file)
            }

            try file.createGroup("/data")
            try S.dataPath.write(dataPath, to: file)
            try S.dataFingerprint.write(dataFingerprint, to: file)
            try S.metric.write(task.metricName, to: file)
            try ClassNames.write(classNames, to: file, object: "/data")
            if let teacherPath { try S.teacherPath.write(teacherPath, to: file) }
            if let teacherFingerprint { try S.teacherFingerprint.write(teacherFingerprint, to: file) }

            try file.createGroup("/optimizer")
            try S.optimizerKind.write(optimizerKind.rawValue, to: file)
            try S.optimizerStep.write(Int64(optimizerState.step), to: file)
            let rate = configuration.schedule.rate(at: position.step, reductions: history.reductions)
            try S.learningRate.write(rate, to: file)
            for (name, buffer) in optimizerState.buffers.sorted(by: { $0.key < $1.key }) {
                try writeParameters(buffer, under: "/optimizer/\(name)", to: file)
            }

            try file.createGroup("/schedule")
            try S.scheduleKind.write(configuration.schedule.shape.name, to: file)
            try S.scheduleStep.write(Int64(position.step), to: file)
            // A plateau schedule's state (History.reducesRate).
            try S.reductions.write(Int64(history.reductions), to: file)
            try S.lastReduction.write(Int64(history.lastReduction ?? -1), to: file)

            // Initialisation and every epoch's shuffle draw from generators
            // seeded by (seed, stream); nothing else is random.
            try file.createGroup("/rng")
            try S.seed.write(configuration.seed, to: file)
            try S.initializationStream.write(UInt64(0), to: file)
            try S.shuffleStream.write(Epochs.firstShuffleStream + UInt64(position.epoch), to: file)

            try file.write(order, shape: [order.count], to: S.order.path)
            try S.epoch.write(Int64(position.epoch), to: file)
            try S.batch.write(Int64(position.batch), to: file)
            try S.step.write(Int64(position.step), to: file)

            // The history, bounded (`History`): the epoch under way's step losses, a digest of all
            // of them, the thinned epoch rows and the best epoch. metrics.csv holds every row.
            let losses = Array(history.stepLosses.suffix(position.batch))
            try file.write(losses, shape: [losses.count], to: S.stepLoss.path)
            try S.stepLossDigest.write(history.stepLossDigest, to: file)
            try S.wallTime.write(history.wallTime, to: file)
            try S.epochStride.write(Int64(history.epochStride), to: file)
            if let best = history.best {
                try S.bestEpoch.write(Int64(best.epoch), to: file)
                try S.bestScore.write(best.score, to: file)
            }
            let rows = history.epochs
            for column in EpochRecord.columns(task) {
                try file.write(rows.map(column.value), shape: [rows.count], to: S.epochColumn.path(["column": column.name]))
            }
            // The extras any epoch measured, NaN where one did not.
            for name in EpochRecord.extraNames where rows.contains(where: { $0.extras[name] != nil }) {
                try file.write(rows.map { $0.extras[name] ?? .nan }, shape: [rows.count], to: S.epochColumn.path(["column": name]))
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
