import BackpropCore
import BackpropIO

// The layout of a checkpoint (format version 2), declared once: every
// attribute and dataset, its type, whether older files may lack it, and what
// it holds. `Checkpoint.save` writes through these declarations,
// `Checkpoint.load` reads through them (presence and type checked the same
// way for every attribute), and docs/file-formats.md's table is
// `Checkpoint.schemaTable` (a test compares the two).

/// A value a checkpoint attribute holds: a string or one HDF5 number.
protocol CheckpointValue: Sendable {
    /// The type as the table shows it ("string", "int64").
    static var schemaType: String { get }
    func write(_ name: String, on object: String, to file: HDF5File) throws(StorageError)
    static func read(_ name: String, of object: String, from file: HDF5File) throws(StorageError) -> Self
}

extension String: CheckpointValue {
    static var schemaType: String { "string" }
    func write(_ name: String, on object: String, to file: HDF5File) throws(StorageError) { try file.setAttribute(name, self, on: object) }
    static func read(_ name: String, of object: String, from file: HDF5File) throws(StorageError) -> String {
        try file.stringAttribute(name, of: object)
    }
}

extension CheckpointValue where Self: HDF5Element {
    static var schemaType: String { typeName }
    func write(_ name: String, on object: String, to file: HDF5File) throws(StorageError) { try file.setAttribute(name, self, on: object) }
    static func read(_ name: String, of object: String, from file: HDF5File) throws(StorageError) -> Self {
        try file.attribute(name, of: object, as: Self.self)
    }
}

extension Int64: CheckpointValue {}
extension UInt64: CheckpointValue {}
extension Double: CheckpointValue {}

/// When an object is in a checkpoint.
enum Presence: Sendable, Equatable {
    /// In every checkpoint of the format.
    case always
    /// In files of this program version and later; older ones lack it.
    case since(String)
    /// Only when what it describes exists (said in the words given).
    case when(String)

    var words: String {
        switch self {
        case .always: return ""
        case .since(let version): return " (since \(version))"
        case .when(let condition): return " (\(condition))"
        }
    }
}

/// One row of the schema: an object (an attribute's group or dataset, or a
/// dataset's path: "<i>" a layer, "<buffer>" an optimizer buffer, "<column>"
/// an epoch column), the attribute's name (nil for a dataset), its type, when
/// it is there, and what it holds.
struct SchemaEntry: Sendable {
    let object: String
    let name: String?
    let type: String
    let presence: Presence
    let meaning: String
}

/// An attribute of a checkpoint object, of type `Value`.
struct CheckpointAttribute<Value: CheckpointValue>: Sendable {
    let entry: SchemaEntry
    /// The object it is on; "<i>" stands for a layer's index.
    var object: String { entry.object }
    let name: String
    var presence: Presence { entry.presence }

    init(_ object: String, _ name: String, _ meaning: String, _ presence: Presence = .always) {
        self.name = name
        entry = SchemaEntry(object: object, name: name, type: Value.schemaType, presence: presence, meaning: meaning)
    }

    /// The object for layer `layer` ("/model/layers/2"), or the object itself.
    func path(layer: Int? = nil) -> String {
        layer.map { object.replacingOccurrences(of: "<i>", with: "\($0)") } ?? object
    }

    func write(_ value: Value, layer: Int? = nil, to file: HDF5File) throws(StorageError) {
        try value.write(name, on: path(layer: layer), to: file)
    }

    /// The value; the attribute must be there.
    /// - Throws: `StorageError.missingObject` or `.wrongType` naming it.
    func read(layer: Int? = nil, from file: HDF5File) throws(StorageError) -> Value {
        try Value.read(name, of: path(layer: layer), from: file)
    }

    /// The value, or nil where the file lacks it, as a file of an older version (`.since`) or without what it describes (`.when`) may.
    func readIfPresent(layer: Int? = nil, from file: HDF5File) throws(StorageError) -> Value? {
        precondition(presence != .always, "\(object) \(name) is in every checkpoint")
        return try file.hasAttribute(name, of: path(layer: layer)) ? try read(layer: layer, from: file) : nil
    }

    /// The attribute as messages name it: "attribute 'kind' of /optimizer".
    func described(layer: Int? = nil) -> String { "attribute '\(name)' of \(path(layer: layer))" }
}

/// A dataset of a checkpoint: its path, type and shape.
struct CheckpointDataset: Sendable {
    let entry: SchemaEntry
    var path: String { entry.object }

    init(_ path: String, _ type: String, _ meaning: String, _ presence: Presence = .always) {
        entry = SchemaEntry(object: path, name: nil, type: type, presence: presence, meaning: meaning)
    }

    /// The path with its placeholders filled in.
    func path(_ fills: [String: String]) -> String {
        fills.reduce(path) { $0.replacingOccurrences(of: "<\($1.key)>", with: $1.value) }
    }
}

/// The declarations, in the order of the file.
enum CheckpointSchema {
    // MARK: / (read first)
    static let format = CheckpointAttribute<String>("/", "format", "\"backprop-checkpoint\"")
    static let formatVersion = CheckpointAttribute<Int64>("/", "format_version", "2")
    static let programVersion = CheckpointAttribute<String>("/", "program_version", "the Backprop that wrote it")
    static let created = CheckpointAttribute<String>("/", "created", "ISO 8601 time of writing")

    // MARK: /model
    static let loss = CheckpointAttribute<String>("/model", "loss", "\"cross-entropy\" or \"sum-of-squares\"")
    static let sizes = CheckpointAttribute<String>("/model", "sizes", "the layer widths, \"784,256,128,10\"")
    static let parameterFingerprint = CheckpointAttribute<String>("/model", "parameter_fingerprint",
                                                                  "16 hex digits over every parameter's bits, checked on read", .since("0.4"))
    static let activation = CheckpointAttribute<String>("/model/layers/<i>", "activation", "h of layer i (the last: softmax or the output activation)")
    static let weight = CheckpointDataset("/model/layers/<i>/weight", "float32 [out, in]", "row j holds w_j·")
    static let bias = CheckpointDataset("/model/layers/<i>/bias", "float32 [out]", "b")

    // MARK: /training, /data
    static let configuration = CheckpointAttribute<String>("/training", "configuration", "the full training configuration as JSON")
    static let averageCount = CheckpointAttribute<Int64>("/training", "average_count",
                                                         "the parameters averaged into /model so far: steps (--ema) or epoch ends (--swa-start)",
                                                         .when("with --ema or --swa-start, since 0.11"))
    static let trainedParameters = CheckpointDataset("/training/parameters/layers/<i>/weight|bias", "float32, as /model",
                                                     "the parameters the optimizer updates, where /model holds their average",
                                                     .when("with --ema, or --swa-start once averaging has begun, since 0.11"))
    static let dataPath = CheckpointAttribute<String>("/data", "path", "the dataset file trained on")
    static let dataFingerprint = CheckpointAttribute<String>("/data", "fingerprint",
                                                             "the training data's shape and hash (\"60000x784 scale 0.003921569 fnv1a64 …\"), checked on resume")
    static let metric = CheckpointAttribute<String>("/data", "metric", "\"accuracy\" or \"rmse\": what the model is judged by", .since("0.3"))
    static let classNames = CheckpointAttribute<String>("/data", "class_names", "the classes' names, a JSON list",
                                                        .when("when the dataset names its classes"))
    static let teacherPath = CheckpointAttribute<String>("/data", "teacher", "the teacher's probabilities distilled from (`backprop ensemble`'s file)",
                                                         .when("with --distill-alpha, since 0.11"))

    // MARK: /optimizer, /schedule, /rng
    static let optimizerKind = CheckpointAttribute<String>("/optimizer", "kind", "the configuration's optimizer, repeated for h5py readers")
    static let optimizerStep = CheckpointAttribute<Int64>("/optimizer", "step", "optimizer steps taken (Adam's t)")
    static let learningRate = CheckpointAttribute<Double>("/optimizer", "learning_rate", "η of the next step")
    static let optimizerBuffer = CheckpointDataset("/optimizer/<buffer>/layers/<i>/weight|bias", "float32, as /model",
                                                   "velocity (momentum, nesterov); m, v (adam, adamw); square_avg, momentum_buffer, grad_avg (rmsprop); sum (adagrad)",
                                                   .when("per buffer of the kind"))
    static let scheduleKind = CheckpointAttribute<String>("/schedule", "kind", "constant, step, cosine or plateau")
    static let scheduleStep = CheckpointAttribute<Int64>("/schedule", "step", "the step η is a function of")
    static let reductions = CheckpointAttribute<Int64>("/schedule", "reductions", "a plateau schedule's reductions of η so far", .since("0.8"))
    static let lastReduction = CheckpointAttribute<Int64>("/schedule", "last_reduction_epoch", "the epoch of the last (−1: none)", .since("0.8"))
    static let seed = CheckpointAttribute<UInt64>("/rng", "seed", "--seed")
    static let initializationStream = CheckpointAttribute<UInt64>("/rng", "initialization_stream", "xoshiro256** stream of the initial weights (0)")
    static let shuffleStream = CheckpointAttribute<UInt64>("/rng", "shuffle_stream", "the current epoch's shuffle stream (2^32 + epoch)")

    // MARK: /progress
    static let epoch = CheckpointAttribute<Int64>("/progress", "epoch", "epochs finished")
    static let batch = CheckpointAttribute<Int64>("/progress", "batch", "the next batch of the epoch")
    static let step = CheckpointAttribute<Int64>("/progress", "step", "optimizer steps taken")
    static let order = CheckpointDataset("/progress/order", "int32 [N]", "the current epoch's visiting order ([] for a block shuffle: the seed gives it)")

    // MARK: /metrics
    static let wallTime = CheckpointAttribute<Double>("/metrics", "wall_time", "seconds trained, across resumes")
    static let stepLossDigest = CheckpointAttribute<UInt64>("/metrics", "step_loss_digest",
                                                            "FNV-1a over the bits of every step's loss, in order", .since("0.8"))
    static let epochStride = CheckpointAttribute<Int64>("/metrics", "epoch_stride", "a power of two: the epochs kept in /metrics/epochs", .since("0.8"))
    static let bestEpoch = CheckpointAttribute<Int64>("/metrics", "best_epoch", "best.h5's epoch, chosen on validation", .when("with a validation split"))
    static let bestScore = CheckpointAttribute<Double>("/metrics", "best_score", "its monitored value", .when("with a validation split"))
    static let stepLoss = CheckpointDataset("/metrics/step_loss", "float64 [batch]", "(1/B) Σ_n E^n of each step of the epoch under way")
    static let epochColumn = CheckpointDataset("/metrics/epochs/<column>", "float64 [≤ 400]",
                                               "the epoch log thinned by epoch_stride: epoch, step, train_loss, validation_loss, validation_accuracy "
                                               + "(or _rmse), test_loss, test_accuracy (or _rmse), learning_rate, samples_per_second, wall_time, "
                                               + "and the extras measured (epsilon, grad_norm_p50, noise_scale, …)")

    /// Every object, in the order of the file.
    private static var entries: [SchemaEntry] {
        [format.entry, formatVersion.entry, programVersion.entry, created.entry,
         loss.entry, sizes.entry, parameterFingerprint.entry, activation.entry, weight.entry, bias.entry,
         configuration.entry, averageCount.entry, trainedParameters.entry, dataPath.entry, dataFingerprint.entry, metric.entry, classNames.entry, teacherPath.entry,
         optimizerKind.entry, optimizerStep.entry, learningRate.entry, optimizerBuffer.entry,
         scheduleKind.entry, scheduleStep.entry, reductions.entry, lastReduction.entry,
         seed.entry, initializationStream.entry, shuffleStream.entry,
         epoch.entry, batch.entry, step.entry, order.entry,
         wallTime.entry, stepLossDigest.entry, epochStride.entry, bestEpoch.entry, bestScore.entry, stepLoss.entry, epochColumn.entry]
    }

    /// The Markdown table of docs/file-formats.md.
    static var markdownTable: String {
        var lines = ["| object | attribute | type | holds |", "|---|---|---|---|"]
        for e in entries {
            let cell = { (text: String) in text.replacingOccurrences(of: "|", with: "\\|") }
            lines.append("| `\(cell(e.object))` | \(e.name.map { "`\($0)`" } ?? "(dataset)") | \(cell(e.type)) | \(cell(e.meaning))\(cell(e.presence.words)) |")
        }
        return lines.joined(separator: "\n")
    }
}

extension Checkpoint {
    /// The table of every object of a checkpoint (docs/file-formats.md), from the declarations `save` and `load` use.
    public static var schemaTable: String { CheckpointSchema.markdownTable }
}
