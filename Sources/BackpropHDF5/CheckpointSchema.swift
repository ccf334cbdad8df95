import BackpropCore
import BackpropIO

// The layout of a checkpoint (format version 2), declared once (FileSchema.swift):
// `Checkpoint.save` writes through these declarations, `Checkpoint.load`
// reads through them, and docs/file-formats.md's table is
// `Checkpoint.schemaTable` (a test compares the two).

/// The declarations, in the order of the file.
enum CheckpointSchema {
    // MARK: / (read first)
    static let format = FileAttribute<String>("/", "format", "\"backprop-checkpoint\"")
    static let formatVersion = FileAttribute<Int64>("/", "format_version", "2")
    static let programVersion = FileAttribute<String>("/", "program_version", "the Backprop that wrote it")
    static let created = FileAttribute<String>("/", "created", "ISO 8601 time of writing")

    // MARK: /model
    static let loss = FileAttribute<String>("/model", "loss", "\"cross-entropy\" or \"sum-of-squares\"")
    static let sizes = FileAttribute<String>("/model", "sizes", "the layer widths, \"784,256,128,10\"")
    static let parameterFingerprint = FileAttribute<String>("/model", "parameter_fingerprint",
                                                                  "16 hex digits over every parameter's bits, checked on read", .since("0.4"))
    static let activation = FileAttribute<String>("/model/layers/<i>", "activation", "h of layer i (the last: softmax or the output activation)")
    static let weight = FileDataset("/model/layers/<i>/weight", "float32 [out, in]", "row j holds w_j·")
    static let bias = FileDataset("/model/layers/<i>/bias", "float32 [out]", "b")

    // MARK: /training, /data
    static let configuration = FileAttribute<String>("/training", "configuration", "the full training configuration as JSON")
    static let averageCount = FileAttribute<Int64>("/training", "average_count",
                                                         "the parameters averaged into /model so far: steps (--ema) or epoch ends (--swa-start)",
                                                         .when("with --ema or --swa-start, since 0.11"))
    static let trainedParameters = FileDataset("/training/parameters/layers/<i>/weight|bias", "float32, as /model",
                                                     "the parameters the optimizer updates, where /model holds their average",
                                                     .when("with --ema, or --swa-start once averaging has begun, since 0.11"))
    static let trainedFingerprint = FileAttribute<String>("/training/parameters", "parameter_fingerprint",
                                                          "16 hex digits over every trained parameter's bits, checked on read, as /model's",
                                                          .when("with /training/parameters, since 0.11"))
    static let dataPath = FileAttribute<String>("/data", "path", "the dataset file trained on")
    static let dataFingerprint = FileAttribute<String>("/data", "fingerprint",
                                                             "the training data's shape and hash (\"60000x784 scale 0.003921569 fnv1a64 …\"), checked on resume; "
                                                             + "empty in a model saved alone (`Checkpoint(model:…)`), which no resume takes")
    static let metric = FileAttribute<String>("/data", "metric", "\"accuracy\" or \"rmse\": what the model is judged by", .since("0.3"))
    static let classNames = FileAttribute<String>("/data", "class_names", "the classes' names, a JSON list",
                                                        .when("when the dataset names its classes"))
    static let teacherPath = FileAttribute<String>("/data", "teacher", "the teacher's probabilities distilled from (`backprop ensemble`'s file)",
                                                         .when("with --distill-alpha, since 0.11"))
    static let teacherFingerprint = FileAttribute<String>("/data", "teacher_fingerprint",
                                                          "the teacher's column alone (`TeacherColumn.fingerprint`): on resume, what tells a changed teacher from changed data",
                                                          .when("with --distill-alpha, since 0.11"))

    // MARK: /optimizer, /schedule, /rng
    static let optimizerKind = FileAttribute<String>("/optimizer", "kind", "the configuration's optimizer, repeated for h5py readers")
    static let optimizerStep = FileAttribute<Int64>("/optimizer", "step", "optimizer steps taken (Adam's t)")
    static let learningRate = FileAttribute<Double>("/optimizer", "learning_rate", "η of the next step")
    static let optimizerBuffer = FileDataset("/optimizer/<buffer>/layers/<i>/weight|bias", "float32, as /model",
                                                   "velocity (momentum, nesterov); m, v (adam, adamw); square_avg, momentum_buffer, grad_avg (rmsprop); sum (adagrad)",
                                                   .when("per buffer of the kind"))
    static let scheduleKind = FileAttribute<String>("/schedule", "kind", "constant, step, cosine or plateau")
    static let scheduleStep = FileAttribute<Int64>("/schedule", "step", "the step η is a function of")
    static let reductions = FileAttribute<Int64>("/schedule", "reductions", "a plateau schedule's reductions of η so far", .since("0.8"))
    static let lastReduction = FileAttribute<Int64>("/schedule", "last_reduction_epoch", "the epoch of the last (−1: none)", .since("0.8"))
    static let seed = FileAttribute<UInt64>("/rng", "seed", "--seed")
    static let initializationStream = FileAttribute<UInt64>("/rng", "initialization_stream", "xoshiro256** stream of the initial weights (0)")
    static let shuffleStream = FileAttribute<UInt64>("/rng", "shuffle_stream", "the current epoch's shuffle stream (2^32 + epoch)")

    // MARK: /progress
    static let epoch = FileAttribute<Int64>("/progress", "epoch", "epochs finished")
    static let batch = FileAttribute<Int64>("/progress", "batch", "the next batch of the epoch")
    static let step = FileAttribute<Int64>("/progress", "step", "optimizer steps taken")
    static let order = FileDataset("/progress/order", "int32 [N]", "the current epoch's visiting order ([] for a block shuffle: the seed gives it)")

    // MARK: /metrics
    static let wallTime = FileAttribute<Double>("/metrics", "wall_time", "seconds trained, across resumes")
    static let stepLossDigest = FileAttribute<UInt64>("/metrics", "step_loss_digest",
                                                            "FNV-1a over the bits of every step's loss, in order", .since("0.8"))
    static let epochStride = FileAttribute<Int64>("/metrics", "epoch_stride", "a power of two: the epochs kept in /metrics/epochs", .since("0.8"))
    static let bestEpoch = FileAttribute<Int64>("/metrics", "best_epoch", "best.h5's epoch, chosen on validation", .when("with a validation split"))
    static let bestScore = FileAttribute<Double>("/metrics", "best_score", "its monitored value", .when("with a validation split"))
    static let stepLoss = FileDataset("/metrics/step_loss", "float64 [batch]", "(1/B) Σ_n E^n of each step of the epoch under way")
    static let epochColumn = FileDataset("/metrics/epochs/<column>", "float64 [≤ 400]",
                                               "the epoch log thinned by epoch_stride: epoch, step, train_loss, validation_loss, validation_accuracy "
                                               + "(or _rmse), test_loss, test_accuracy (or _rmse), learning_rate, samples_per_second, wall_time, "
                                               + "and the extras measured (epsilon, grad_norm_p50, noise_scale, …)")

    /// Every object, in the order of the file.
    private static var entries: [SchemaEntry] {
        [format.entry, formatVersion.entry, programVersion.entry, created.entry,
         loss.entry, sizes.entry, parameterFingerprint.entry, activation.entry, weight.entry, bias.entry,
         configuration.entry, averageCount.entry, trainedParameters.entry, trainedFingerprint.entry, dataPath.entry, dataFingerprint.entry, metric.entry, classNames.entry, teacherPath.entry, teacherFingerprint.entry,
         optimizerKind.entry, optimizerStep.entry, learningRate.entry, optimizerBuffer.entry,
         scheduleKind.entry, scheduleStep.entry, reductions.entry, lastReduction.entry,
         seed.entry, initializationStream.entry, shuffleStream.entry,
         epoch.entry, batch.entry, step.entry, order.entry,
         wallTime.entry, stepLossDigest.entry, epochStride.entry, bestEpoch.entry, bestScore.entry, stepLoss.entry, epochColumn.entry]
    }

    /// The Markdown table of docs/file-formats.md.
    static var markdownTable: String { BackpropHDF5.markdownTable(entries) }
}

extension Checkpoint {
    /// The table of every object of a checkpoint (docs/file-formats.md), from the declarations `save` and `load` use.
    public static var schemaTable: String { CheckpointSchema.markdownTable }
}
