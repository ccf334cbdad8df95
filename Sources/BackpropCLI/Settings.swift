import ArgumentParser
import BackpropCore
import BackpropHDF5
import BackpropIO
import Foundation

// Every setting of `backprop train`, described once: its flag (which is also
// its key in a --config file and in a run's config.json), its help and the
// default the help shows (read from `TrainingConfiguration()`), what it may
// do on --resume, the Core setting whose errors name it, and what config.json
// records for it. The option groups declare each flag with
// `name: .customLong(setting.key), help: setting.help`; the flag names in
// errors, config.json and `backprop settings` (the table in docs/options.md)
// are read from here. Adding a setting: a descriptor here, its field in
// `TrainingConfiguration` (with its range in `validate()`), and the option
// and edit in its group.

/// A fresh run's settings: the one source of every default the help shows.
let fresh = TrainingConfiguration()

/// What a flag may do to a resumed run.
enum Mutability: String {
    /// It defines the run (model, data, optimizer): never changes on resume.
    case fixed
    /// It says how long and how fast: changes on resume only with --override.
    case overridable = "with --override"
    /// It does not change the results (threads, logging, outputs): free on resume.
    case free
}

/// What config.json records of a run: its settings, its checkpoint policy,
/// and the free settings it was given (streaming, logging, the kernel: they
/// never change a result), keyed by flag.
struct RecordedRun: Sendable {
    let configuration: TrainingConfiguration
    let dataPath: String
    let policy: CheckpointPolicy
    /// The teacher file distilled from, if any.
    var teacherPath: String? = nil
    var free: [String: any Sendable] = [:]
}

/// One setting of a run, as the command line names it.
struct Setting: Sendable {
    /// The flag without its dashes, and the key in settings files.
    let key: String
    /// What it does, in a sentence or two.
    let summary: String
    /// The default the help shows, if any.
    var defaultValue: String? = nil
    let rule: Mutability
    /// The Core setting whose errors this flag sets right.
    var names: TrainingError.Setting? = nil
    /// What config.json records of a run for it (nil: nothing).
    var record: @Sendable (RecordedRun) -> (any Sendable)? = { _ in nil }
    /// Core's declaration, for a setting declared there (`TrainingConfiguration.fields`).
    var declaration: (any DeclaredSetting)? = nil
    /// The settings table's section of a declared setting (the others are placed by `Settings.sections`).
    var section: String? { declaration?.section }

    var flag: String { "--" + key }

    /// The numbers it takes, as Core declares them for the setting it sets; nil for none.
    var domain: SettingDomain? { names.flatMap(TrainingConfiguration.domain(of:)) }

    /// The option's help: the summary and the default.
    var help: ArgumentHelp { ArgumentHelp(summary + (defaultValue.map { " (default: \($0))" } ?? "")) }

    /// `--flag` as an option name for swift-argument-parser.
    var name: NameSpecification { .customLong(key) }
}

extension Setting {
    /// The descriptor of a setting Core declares: its flag is its name in kebab case
    /// ("clipNorm", --clip-norm); its default, Core error name and config.json record follow from the declaration.
    init(declared field: any DeclaredSetting) {
        key = field.name.reduce(into: "") { key, character in
            if character.isUppercase { key += "-" + character.lowercased() } else { key.append(character) }
        }
        summary = field.summary
        defaultValue = field.value(in: fresh).map { "\($0)" }
        switch field.rule {
        case .fixed: rule = .fixed
        case .overridable: rule = .overridable
        case .free: rule = .free
        }
        names = .declared(field.name)
        record = { field.value(in: $0.configuration) }
        declaration = field
    }
}

/// The settings of `backprop train`, in the order of its help.
enum Settings {
    static let data = Setting(key: "data", summary: "The HDF5 dataset (see `backprop import`); `train --resume` defaults to the run's.",
                              defaultValue: DataOptions.defaultPath, rule: .fixed, record: { $0.dataPath })

    static let teacher = Setting(key: "teacher",
                                 summary: "Distil from this teacher: the class probabilities over /train that `backprop ensemble` writes, made by models trained on the same rows as this run (never on its validation split); with --distill-alpha. A teacher with views (/predictions/views) teaches each augmented sample the image it is shown. `train --resume` defaults to the run's.",
                                 rule: .fixed, record: { $0.teacherPath })

    static let stream = Setting(key: "stream",
                                summary: "Read the features from the file a block of rows at a time as they are needed, not whole (train: /train on a reader thread, with --shuffle-blocks or --no-shuffle; evaluate, predict: the split); the same bits as in memory.",
                                rule: .free)
    static let dataMemory = Setting(key: "data-memory",
                                    summary: "Stream a split whose features take more than this: a whole number of bytes, or a number with K, M, G or T (powers of 1024), e.g. 512M, 8G, 1.5G.",
                                    defaultValue: "half of physical memory", rule: .free)

    // MARK: Model
    static let layers = Setting(key: "layers", summary: "Layer widths from input to output.",
                                defaultValue: fresh.sizes.map(String.init).joined(separator: ","), rule: .fixed, names: .layers,
                                record: { $0.configuration.sizes })
    static let activation = Setting(key: "activation", summary: "Hidden activation: relu, leaky-relu (slope 0.01), tanh, sigmoid, identity.",
                                    defaultValue: fresh.hiddenActivation.rawValue, rule: .fixed,
                                    record: { $0.configuration.hiddenActivation.rawValue })
    static let outputActivation = Setting(key: "output-activation", summary: "Output activation.",
                                          defaultValue: "softmax for cross-entropy, identity for sum-of-squares", rule: .fixed,
                                          record: { $0.configuration.outputActivation?.rawValue })
    static let loss = Setting(key: "loss", summary: "Loss: cross-entropy, or sum-of-squares (E^n = ½ Σ_k (y_k − t_k)², needed by regression targets).",
                              defaultValue: fresh.loss.rawValue, rule: .fixed, names: .loss, record: { $0.configuration.loss.rawValue })
    static let initialization = Setting(key: "init", summary: "Initialisation.", defaultValue: fresh.initialization.rawValue,
                                        rule: .fixed, record: { $0.configuration.initialization.rawValue })

    // MARK: Optimizer
    private static let rmsprop = OptimizerSettings.defaults(for: .rmsprop)
    private static let adagrad = OptimizerSettings.defaults(for: .adagrad)
    static let optimizer = Setting(key: "optimizer", summary: "Optimizer: torch.optim's rules and defaults.",
                                   defaultValue: fresh.optimizer.kind.rawValue, rule: .fixed,
                                   record: { $0.configuration.optimizer.kind.rawValue })
    static let momentum = Setting(key: "momentum",
                                  summary: "Momentum μ (momentum, nesterov; rmsprop, where it defaults to \(rmsprop.momentum.shown)).",
                                  defaultValue: fresh.optimizer.momentum.shown, rule: .fixed, names: .momentum, record: {
        [.momentum, .nesterov, .rmsprop].contains($0.configuration.optimizer.kind) ? $0.configuration.optimizer.momentum : nil
    })
    static let weightDecay = Setting(key: "weight-decay",
                                     summary: "Weight decay λ (L2 for sgd/momentum/nesterov/adam/rmsprop/adagrad, decoupled for adamw).",
                                     defaultValue: fresh.optimizer.weightDecay.shown, rule: .fixed, names: .weightDecay,
                                     record: { $0.configuration.optimizer.weightDecay })
    static let rmspropAlpha = Setting(key: "rmsprop-alpha", summary: "RMSprop: α, the smoothing constant of the squared gradients.",
                                      defaultValue: rmsprop.smoothing.shown, rule: .fixed, names: .rmspropAlpha,
                                      record: { $0.configuration.optimizer.kind == .rmsprop ? $0.configuration.optimizer.alpha : nil })
    static let centered = Setting(key: "centered", summary: "RMSprop: centre the second moment by the mean gradient.", rule: .fixed,
                                  record: { $0.configuration.optimizer.kind == .rmsprop && $0.configuration.optimizer.isCentered ? true : nil })
    static let lrDecay = Setting(key: "lr-decay", summary: "Adagrad: the learning-rate decay, η_t = η/(1 + (t − 1)·decay).",
                                 defaultValue: adagrad.decay.shown, rule: .fixed, names: .learningRateDecay, record: {
        $0.configuration.optimizer.kind == .adagrad ? $0.configuration.optimizer.learningRateDecay : nil
    })
    static let initialAccumulator = Setting(key: "initial-accumulator", summary: "Adagrad: the accumulator's starting value.",
                                            defaultValue: adagrad.accumulatorStart.shown, rule: .fixed, names: .initialAccumulator, record: {
        $0.configuration.optimizer.kind == .adagrad ? $0.configuration.optimizer.initialAccumulator : nil
    })

    // MARK: Regularisation
    static let labelSmoothing = Setting(key: "label-smoothing",
                                        summary: "Cross-entropy: train on the targets (1 − ε) t + ε/K instead of one-hot t (test losses stay plain).",
                                        defaultValue: fresh.labelSmoothing.shown, rule: .fixed, names: .labelSmoothing,
                                        record: { $0.configuration.labelSmoothing })
    static let dropout = Setting(key: "dropout",
                                 summary: "Inverted dropout on the hidden layers' outputs in training: one rate p for all, or p1,p2,… one per hidden layer (relu, leaky-relu or identity).",
                                 defaultValue: "0", rule: .fixed, names: .dropout, record: {
        let rates = $0.configuration.dropout.hidden
        return rates.isEmpty ? nil : rates.count == 1 ? rates[0] as any Sendable : rates
    })
    static let inputDropout = Setting(key: "input-dropout", summary: "Inverted dropout on the input features in training.",
                                      defaultValue: fresh.dropout.input.shown, rule: .fixed, names: .inputDropout,
                                      record: { $0.configuration.dropout.input })
    static let augment = Setting(key: "augment",
                                 summary: "Image augmentation in training, drawn per (seed, epoch, sample): shift=S translates by up to ±S pixels (zero fill), flip mirrors left-right half the time; needs a dataset with an image shape.",
                                 defaultValue: fresh.augmentation.description, rule: .fixed, names: .augmentation,
                                 record: { $0.configuration.augmentation.description })

    // MARK: Validation
    static let validationFraction = Setting(key: "validation-fraction",
                                            summary: "Hold out this share of /train (stratified by class, keyed by --seed) as the validation split, which chooses best.h5; 0: the dataset's own /validation, if it has one.",
                                            defaultValue: fresh.validationFraction.shown, rule: .fixed, names: .validationFraction,
                                            record: { $0.configuration.validationFraction })
    static let reportTest = Setting(key: "report-test",
                                    summary: "When the test split is read: at the end of the run (end), after every epoch too (every-epoch), or never (none); it never chooses anything.",
                                    defaultValue: TestReport.end.rawValue, rule: .free)
    static let monitor = Setting(key: "monitor",
                                 summary: "What chooses best.h5 and early stopping's epoch: validation-score (accuracy or RMSE) or validation-loss.",
                                 defaultValue: fresh.monitor.rawValue, rule: .fixed, record: { $0.configuration.monitor.rawValue })
    static let minDelta = Setting(key: "min-delta", summary: "The least change of the monitor that counts as an improvement.",
                                  defaultValue: fresh.minDelta.shown, rule: .fixed, names: .minDelta,
                                  record: { $0.configuration.minDelta })
    static let earlyStopping = Setting(key: "early-stopping",
                                       summary: "Stop after N epochs without an improvement of the monitor; model.h5 then holds the best epoch's weights (needs a validation split).",
                                       rule: .overridable, names: .patience, record: { $0.configuration.earlyStopping?.patience })

    // MARK: Batches
    static let batchSize = Setting(key: "batch-size", summary: "Samples per mini-batch.", defaultValue: "\(fresh.batchSize)",
                                   rule: .fixed, names: .batchSize, record: { $0.configuration.batchSize })
    static let shardSize = Setting(key: "shard-size",
                                   summary: "Samples per shard; fixes the summation order, so results do not depend on --workers.",
                                   defaultValue: "\(fresh.shardSize)", rule: .fixed, names: .shardSize, record: { $0.configuration.shardSize })

    // MARK: Samples
    static let shuffle = Setting(key: "shuffle", summary: "Visit the samples in a seeded shuffle each epoch (--no-shuffle: in file order).",
                                 defaultValue: fresh.shuffle ? "--shuffle" : "--no-shuffle", rule: .fixed,
                                 record: { $0.configuration.shuffle })
    static let shuffleBlocks = Setting(key: "shuffle-blocks",
                                       summary: "Shuffle blocks of this many consecutive rows, then the samples within each --shuffle-window of blocks: an order that streams from disk (0: a global shuffle).",
                                       defaultValue: "\(fresh.blockShuffle.rows)", rule: .fixed, names: .blockRows,
                                       record: { $0.configuration.blockShuffle.isActive ? $0.configuration.blockShuffle.rows : nil })
    static let shuffleWindow = Setting(key: "shuffle-window",
                                       summary: "With --shuffle-blocks: the blocks whose samples are shuffled together (what a streamed epoch holds at once).",
                                       defaultValue: "\(fresh.blockShuffle.window)", rule: .fixed, names: .shuffleWindow,
                                       record: { $0.configuration.blockShuffle.isActive ? $0.configuration.blockShuffle.window : nil })
    static let seed = Setting(key: "seed", summary: "Seed for initialisation, shuffling and DP-SGD's noise.", defaultValue: "\(fresh.seed)",
                              rule: .fixed, record: { $0.configuration.seed })
    static let reduction = Setting(key: "reduction", summary: "mean: step along the batch-mean gradient; sum: along the summed gradient.",
                                   defaultValue: fresh.reduction.rawValue, rule: .fixed, record: { $0.configuration.reduction.rawValue })
    static let sampling = Setting(key: "sampling",
                                  summary: "How steps pick samples: shuffle (batches of an epoch's shuffle) or poisson (each sample with probability batch/N).",
                                  defaultValue: "poisson with DP-SGD, else \(fresh.samplingMethod.rawValue)", rule: .fixed,
                                  record: { $0.configuration.sampling?.rawValue })

    // MARK: DP-SGD
    static let dpClip = Setting(key: "dp-clip", summary: "DP-SGD: clip each per-sample gradient to this L2 norm C (turns DP-SGD on).",
                                rule: .fixed, names: .clip, record: { $0.configuration.privacy?.clip })
    static let dpNoise = Setting(key: "dp-noise", summary: "DP-SGD: the noise multiplier σ (noise N(0, σ²C²) on each summed gradient element).",
                                 rule: .fixed, names: .noise, record: { $0.configuration.privacy?.noise })
    static let dpEpsilon = Setting(key: "dp-epsilon", summary: "DP-SGD: pick σ so that the planned steps spend this ε (instead of --dp-noise).",
                                   rule: .fixed)
    static let dpDelta = Setting(key: "dp-delta", summary: "DP-SGD: the δ of the (ε, δ) reported.",
                                 defaultValue: "1/N rounded down to a power of ten", rule: .fixed, names: .delta,
                                 record: { $0.configuration.privacy?.delta })

    // MARK: Length and learning rate
    static let learningRate = Setting(key: "learning-rate", summary: "Learning rate η (the schedule's base rate).",
                                      defaultValue: fresh.schedule.base.shown, rule: .overridable, names: .learningRate,
                                      record: { $0.configuration.schedule.base })
    static let lrSchedule = Setting(key: "lr-schedule", summary: "Learning-rate schedule: constant, step, cosine, or plateau (lower η when the validation --monitor stops improving).",
                                    defaultValue: ScheduleKind(fresh.schedule.shape).rawValue, rule: .overridable, names: .scheduleShape,
                                    record: { ScheduleKind($0.configuration.schedule.shape).rawValue })
    static let lrStepSize = Setting(key: "lr-step-size", summary: "step: multiply η by --lr-gamma every this many steps.",
                                    defaultValue: "one epoch", rule: .overridable, names: .scheduleStepSize, record: {
        if case .stepDecay(let size, _) = $0.configuration.schedule.shape { return size } else { return nil }
    })
    static let lrGamma = Setting(key: "lr-gamma", summary: "step: the decay factor γ.", defaultValue: LearningRateSchedule.defaultGamma.shown,
                                 rule: .overridable, names: .scheduleGamma, record: {
        if case .stepDecay(_, let gamma) = $0.configuration.schedule.shape { return gamma } else { return nil }
    })
    static let warmupSteps = Setting(key: "warmup-steps", summary: "cosine: steps of linear warm-up from 0 to η.",
                                     defaultValue: "\(LearningRateSchedule.defaultWarmupSteps)",
                                     rule: .overridable, names: .warmupSteps, record: {
        if case .cosine(let warmup, _, _) = $0.configuration.schedule.shape { return warmup } else { return nil }
    })
    static let minLr = Setting(key: "min-lr", summary: "cosine: the rate η_min reached at the last step; plateau: the floor of the reductions.",
                               defaultValue: LearningRateSchedule.defaultMinimum.shown,
                               rule: .overridable, names: .minimumLearningRate, record: {
        switch $0.configuration.schedule.shape {
        case .cosine(_, _, let minimum), .plateau(_, _, let minimum): return minimum
        default: return nil
        }
    })
    static let plateauFactor = Setting(key: "plateau-factor", summary: "plateau: multiply η by this factor at each reduction.",
                                       defaultValue: LearningRateSchedule.defaultPlateauFactor.shown, rule: .overridable,
                                       names: .plateauFactor, record: {
        if case .plateau(let factor, _, _) = $0.configuration.schedule.shape { return factor } else { return nil }
    })
    static let plateauPatience = Setting(key: "plateau-patience", summary: "plateau: epochs without a better --monitor before η is reduced.",
                                         defaultValue: "\(LearningRateSchedule.defaultPlateauPatience)", rule: .overridable,
                                         names: .plateauPatience, record: {
        if case .plateau(_, let patience, _) = $0.configuration.schedule.shape { return patience } else { return nil }
    })
    static let epochs = Setting(key: "epochs", summary: "Epochs to train in all (0 writes the freshly initialised model).",
                                defaultValue: "\(fresh.epochs)", rule: .overridable, names: .epochs, record: { $0.configuration.epochs })

    // MARK: Threads and kernel
    static let workers = Setting(key: "workers", summary: "Worker threads; they never change a result.", defaultValue: "the active cores",
                                 rule: .free, names: .workers, record: { $0.configuration.workers })
    static let kernel = Setting(key: "kernel", summary: "Matrix kernel path; all give the same bits (auto: BACKPROP_KERNEL, else the fastest this CPU runs).",
                                defaultValue: KernelChoice.auto.rawValue, rule: .free)

    // MARK: Run directory and checkpoints
    static let runDir = Setting(key: "run-dir", summary: "The run directory for checkpoints.", defaultValue: "runs/<date-time>, or the resumed run's",
                                rule: .free)
    static let output = Setting(key: "output", summary: "Where to write the final model.", defaultValue: "<run-dir>/model.h5", rule: .free)
    static let checkpointEvery = Setting(key: "checkpoint-every", summary: "Also write a checkpoint every N optimizer steps (0: off).",
                                         defaultValue: "\(CheckpointPolicy().everySteps)", rule: .free, record: { $0.policy.everySteps })
    static let checkpointEveryEpoch = Setting(key: "checkpoint-every-epoch", summary: "Write a checkpoint after every epoch (--no-checkpoint-every-epoch: not).",
                                              defaultValue: CheckpointPolicy().everyEpoch ? "--checkpoint-every-epoch" : "--no-checkpoint-every-epoch", rule: .free, record: { $0.policy.everyEpoch })
    static let checkpointInterval = Setting(key: "checkpoint-interval",
                                            summary: "Also write a checkpoint when this much wall time has passed since the last (e.g. 90s, 10m, 1h).",
                                            rule: .free, record: { $0.policy.interval })
    static let keep = Setting(key: "keep", summary: "Step checkpoints to keep (best.h5 and last.h5 are kept besides).",
                              defaultValue: "\(CheckpointPolicy().keep)",
                              rule: .free, record: { $0.policy.keep })

    // MARK: Starting and resuming
    static let config = Setting(key: "config",
                                summary: "A JSON or YAML file of settings keyed like the flags (\"learning-rate\": 0.05), such as a run's config.json; flags given here win.",
                                rule: .free)
    static let resume = Setting(key: "resume", summary: "Resume from a run directory (its newest valid checkpoint) or a checkpoint file.",
                                rule: .free)
    static let override = Setting(key: "override", summary: "On --resume, allow changing the epochs, steps and learning-rate schedule.",
                                  rule: .free)

    // MARK: Output
    static let verbose = Setting(key: "verbose", summary: "Print the kernel path and the start-up time.", rule: .free)
    static let quiet = Setting(key: "quiet", summary: "Print only the final line (and errors).", rule: .free)
    static let logEvery = Setting(key: "log-every", summary: "Also log every N steps: a line when output is not a terminal, and the step's loss in the TensorBoard events (0: per epoch only).",
                                  defaultValue: "\(ProgressReporter.defaultLogEvery)", rule: .free)
    static let logGradNorms = Setting(key: "log-grad-norms",
                                      summary: "Log the quantiles of the per-sample gradient norms each epoch (to choose --dp-clip).", rule: .free)
    static let printConfig = Setting(key: "print-config",
                                     summary: "Print the fully resolved settings, keyed by flag (a valid --config), and exit without training.",
                                     rule: .free)
    static let configFormat = Setting(key: "format", summary: "--print-config's format: yaml or json.", defaultValue: "yaml", rule: .free)
    static let tensorboard = Setting(key: "tensorboard",
                                     summary: "Write TensorBoard event files to <run-dir>/tensorboard: each epoch's metrics, and step losses every --log-every steps.",
                                     defaultValue: "--tensorboard", rule: .free)
    static let logNoiseScale = Setting(key: "log-noise-scale",
                                       summary: "Log the gradient noise scale B_simple each epoch (the batch size beyond which larger batches stop paying).",
                                       rule: .free)

    /// Every setting of `backprop train` by section, in the order of its help:
    /// each section's own, then those Core declares for it (`TrainingConfiguration.fields`).
    static let sections: [(title: String, settings: [Setting])] = written.map { section in
        (section.title, section.settings + declared.filter { $0.section == section.title })
    }

    /// The descriptors of the settings Core declares, in its order.
    static let declared = TrainingConfiguration.fields.map(Setting.init(declared:))

    /// The descriptor of the declared setting stored at `keyPath`, for its option's name and help.
    static subscript(_ keyPath: PartialKeyPath<TrainingConfiguration>) -> Setting {
        guard let setting = declared.first(where: { $0.declaration?.keyPath == keyPath }) else {
            preconditionFailure("\(keyPath) is not in TrainingConfiguration.fields")
        }
        return setting
    }

    /// The settings written out here, by section.
    private static let written: [(title: String, settings: [Setting])] = [
        ("Data", [data, stream, dataMemory]),
        ("Model", [layers, activation, outputActivation, loss, initialization]),
        ("Optimizer", [optimizer, momentum, weightDecay, rmspropAlpha, centered, lrDecay, initialAccumulator]),
        ("Regularisation", [labelSmoothing, dropout, inputDropout, augment]),
        ("Distillation", [teacher]),
        ("Validation", [validationFraction, reportTest, monitor, minDelta, earlyStopping]),
        ("Batches", [batchSize, shardSize]),
        ("Samples", [shuffle, shuffleBlocks, shuffleWindow, seed, reduction, sampling]),
        ("DP-SGD", [dpClip, dpNoise, dpEpsilon, dpDelta]),
        ("Length and learning rate", [learningRate, lrSchedule, lrStepSize, lrGamma, warmupSteps, minLr, plateauFactor, plateauPatience,
                                      epochs]),
        ("Threads and kernel", [workers, kernel]),
        ("Run directory and checkpoints", [runDir, output, checkpointEvery, checkpointEveryEpoch, checkpointInterval, keep]),
        ("Starting and resuming", [config, resume, override, printConfig, configFormat]),
        ("Output", [verbose, quiet, logEvery, tensorboard, logGradNorms, logNoiseScale]),
    ]

    static var all: [Setting] { sections.flatMap(\.settings) }

    /// The flag that sets Core's `setting`, or what to call it where no flag does.
    static func flag(_ setting: TrainingError.Setting) -> String {
        if let named = all.first(where: { $0.names == setting }) { return named.flag }
        switch setting {
        case .scheduleLength: return "the cosine schedule's length in steps (--epochs × batches per epoch, or --steps)"
        // Adam's β and ε have no flags (PyTorch's defaults): a checkpoint alone can hold others.
        default: return setting.words
        }
    }

    /// Runs `body`, turning Core's errors into `ValidationError`s that name the flags (`flag(_:)`).
    @discardableResult
    static func namingFlags<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as TrainingError {
            throw ValidationError(error.description(naming: flag))
        }
    }

    /// The flag (with its value) that a storage error's advice names.
    static func flag(_ setting: StorageError.Setting) -> String {
        switch setting {
        case .resume: return resume.flag
        case .runDirectory: return runDir.flag
        case .regressionTask: return "--task regression"
        case .automaticFeatures: return "--features auto"
        case .floatFeatures: return "--features float"
        }
    }

    /// A run as the flags that give it, keyed without the dashes: what
    /// config.json holds, so that `--config` reproduces the run.
    static func recorded(_ run: RecordedRun) -> [String: Any] {
        var settings: [String: Any] = [:]
        for setting in all { if let value = setting.record(run) ?? run.free[setting.key] { settings[setting.key] = value } }
        return settings
    }

    /// A value config.json records, as a flag writes it ("784,256,128,10", "0.05").
    static func shown(_ value: Any) -> String {
        switch value {
        case let list as [Any]: return list.map(shown).joined(separator: ",")
        case let on as Bool: return on ? "on" : "off"
        default: return "\(value)"
        }
    }

    /// The keys of the settings that never change a result (`Mutability.free`),
    /// which a printed settings file sets apart.
    static var freeKeys: Set<String> { Set(all.filter { $0.rule == .free }.map(\.key)) }

    /// The table of docs/options.md (`backprop settings`): flag, default, on resume, meaning.
    static var markdownTable: String {
        var lines = ["| option | default | on `--resume` | meaning |", "|---|---|---|---|"]
        for section in sections {
            lines.append("| **\(section.title)** | | | |")
            for s in section.settings {
                let cell = { (text: String) in text.replacingOccurrences(of: "|", with: "\\|") }
                let shown = s.defaultValue.map { cell("`" + $0 + "`") } ?? ""
                lines.append("| `\(s.flag)` | \(shown) | \(s.rule.rawValue) | \(cell(s.summary)) |")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// `backprop settings`: the table of train's settings that docs/options.md holds.
struct SettingsTable: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settings",
        abstract: "Print the table of train's settings (flag, default, what it may do on --resume, meaning) as Markdown.")

    @Flag(help: "Print it as JSON instead, one object per setting: key (the flag without dashes, and the key in --config files), value (what a --config file must give it), domain (the numbers it takes), default, resume, section, summary.")
    var json = false

    func run() throws {
        guard json else { return print(Settings.markdownTable) }
        let types = OptionTable.rows(of: Train.self)
        let rows: [[String: Any]] = Settings.sections.flatMap { section in
            section.settings.map { setting in
                var row: [String: Any] = ["key": setting.key, "resume": setting.rule.rawValue, "section": section.title, "summary": setting.summary]
                row["value"] = types.first { $0.key == setting.key }?.type?.description
                row["default"] = setting.defaultValue
                row["domain"] = setting.domain?.description
                return row
            }
        }
        let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .withoutEscapingSlashes])
        print(String(decoding: data, as: UTF8.self))
    }
}
