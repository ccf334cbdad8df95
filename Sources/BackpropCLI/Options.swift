import ArgumentParser
import BackpropCore
import Foundation

// The option groups the commands share. Each flag is declared once, here;
// its default comes from `TrainingConfiguration()` (shown in its help from
// the same value), and a flag that is not given leaves the configuration as
// it is, so that `train --resume` can tell given flags from defaults.

/// A fresh run's settings: the one source of every default the help shows.
let fresh = TrainingConfiguration()

/// What a flag may do to a resumed run.
enum Mutability {
    /// It defines the run (model, data, optimizer): never changes on resume.
    case fixed
    /// It says how long and how fast: changes on resume only with --override.
    case overridable
    /// It does not change the results (threads): free on resume.
    case free
}

/// One flag that was given, and how it changes a configuration.
struct SettingEdit {
    let flag: String
    let mutability: Mutability
    let apply: (inout TrainingConfiguration) -> Void
}

/// The given flags of some option groups, as edits of a configuration, in order.
struct SettingEdits {
    private(set) var all: [SettingEdit] = []

    /// Records `flag`'s edit if it was given (`value` is not nil).
    mutating func add<Value>(_ flag: String, _ value: Value?, _ mutability: Mutability,
                             _ apply: @escaping (inout TrainingConfiguration, Value) -> Void) {
        if let value { all.append(SettingEdit(flag: flag, mutability: mutability) { apply(&$0, value) }) }
    }

    /// `configuration` with every edit applied.
    func applied(to configuration: TrainingConfiguration) -> TrainingConfiguration {
        var configuration = configuration
        for edit in all { edit.apply(&configuration) }
        return configuration
    }
}

/// An option group whose flags edit a `TrainingConfiguration`.
protocol ConfigurationOptions: ParsableArguments {
    /// Appends the edits of the flags that were given.
    func edits(into edits: inout SettingEdits)
}

// MARK: - Model

/// The network: its layers, activations, loss and initialisation (train, bench).
struct ModelOptions: ConfigurationOptions {
    @Option(help: "Layer widths from input to output. (default: \(fresh.sizes.map(String.init).joined(separator: ",")))")
    var layers: LayerSizes?
    @Option(help: "Hidden activation (not softmax). (default: \(fresh.hiddenActivation.rawValue))")
    var activation: Activation?
    @Option(help: "Output activation. (default: softmax for cross-entropy, identity for sum-of-squares)")
    var outputActivation: Activation?
    @Option(help: "Loss. (default: \(fresh.loss.rawValue))")
    var loss: Loss?
    @Option(name: .customLong("init"), help: "Initialisation. (default: \(fresh.initialization.rawValue))")
    var initialization: Initialization?

    func edits(into edits: inout SettingEdits) {
        edits.add("--layers", layers, .fixed) { $0.sizes = $1.sizes }
        edits.add("--activation", activation, .fixed) { $0.hiddenActivation = $1 }
        edits.add("--output-activation", outputActivation, .fixed) { $0.outputActivation = $1 }
        edits.add("--loss", loss, .fixed) { $0.loss = $1 }
        edits.add("--init", initialization, .fixed) { $0.initialization = $1 }
    }
}

// MARK: - Optimizer

/// The update rule and its hyper-parameters (train, bench).
struct OptimizerOptions: ConfigurationOptions {
    private static let rmsprop = OptimizerSettings.defaults(for: .rmsprop, learningRate: 0)
    private static let adagrad = OptimizerSettings.defaults(for: .adagrad, learningRate: 0)

    @Option(help: "Optimizer. (default: \(fresh.optimizer.kind.rawValue))")
    var optimizer: OptimizerKind?
    @Option(help: "Momentum μ (momentum, nesterov; rmsprop, where it defaults to \(rmsprop.momentum.shown)). (default: \(fresh.optimizer.momentum.shown))")
    var momentum: Double?
    @Option(help: "Weight decay λ (L2 for sgd/momentum/nesterov/adam/rmsprop/adagrad, decoupled for adamw). (default: \(fresh.optimizer.weightDecay.shown))")
    var weightDecay: Double?
    @Option(help: "RMSprop: α, the smoothing constant of the squared gradients. (default: \(rmsprop.smoothing.shown))")
    var rmspropAlpha: Double?
    @Flag(help: "RMSprop: centre the second moment by the mean gradient.")
    var centered = false
    @Option(help: "Adagrad: the learning-rate decay, η_t = η/(1 + (t − 1)·decay). (default: \(adagrad.decay.shown))")
    var lrDecay: Double?
    @Option(help: "Adagrad: the accumulator's starting value. (default: \(adagrad.accumulatorStart.shown))")
    var initialAccumulator: Double?

    func validate() throws {
        if momentum != nil, let optimizer, ![.momentum, .nesterov, .rmsprop].contains(optimizer) {
            throw ValidationError("--momentum applies only to --optimizer momentum, nesterov or rmsprop, not \(optimizer.rawValue).")
        }
        if let optimizer { try checkOwners(of: optimizer) }
    }

    /// Refuses a flag of one rule given with another.
    func checkOwners(of kind: OptimizerKind) throws {
        for (flag, given, owner) in [("--rmsprop-alpha", rmspropAlpha != nil, OptimizerKind.rmsprop), ("--centered", centered, .rmsprop),
                                     ("--lr-decay", lrDecay != nil, .adagrad), ("--initial-accumulator", initialAccumulator != nil, .adagrad)]
        where given && kind != owner {
            throw ValidationError("\(flag) applies only to --optimizer \(owner.rawValue), not \(kind.rawValue).")
        }
    }

    func edits(into edits: inout SettingEdits) {
        // Another rule starts from PyTorch's defaults for it (the learning rate and weight decay carried over).
        edits.add("--optimizer", optimizer, .fixed) { c, kind in
            guard c.optimizer.kind != kind else { return }
            var settings = OptimizerSettings.defaults(for: kind, learningRate: c.optimizer.learningRate)
            settings.weightDecay = c.optimizer.weightDecay
            c.optimizer = settings
        }
        edits.add("--momentum", momentum, .fixed) { $0.optimizer.momentum = $1 }
        edits.add("--weight-decay", weightDecay, .fixed) { $0.optimizer.weightDecay = $1 }
        edits.add("--rmsprop-alpha", rmspropAlpha, .fixed) { $0.optimizer.alpha = $1 }
        edits.add("--centered", centered ? true : nil, .fixed) { $0.optimizer.centered = $1 }
        edits.add("--lr-decay", lrDecay, .fixed) { $0.optimizer.learningRateDecay = $1 }
        edits.add("--initial-accumulator", initialAccumulator, .fixed) { $0.optimizer.initialAccumulator = $1 }
    }
}

// MARK: - Batches

/// How a step's samples are split: the batch and its shards (train, bench).
struct BatchOptions: ConfigurationOptions {
    @Option(help: "Samples per mini-batch. (default: \(fresh.batchSize))")
    var batchSize: Int?
    @Option(help: "Samples per shard; fixes the summation order, so results do not depend on --workers. (default: \(fresh.shardSize))")
    var shardSize: Int?

    func edits(into edits: inout SettingEdits) {
        edits.add("--batch-size", batchSize, .fixed) { $0.batchSize = $1 }
        edits.add("--shard-size", shardSize, .fixed) { $0.shardSize = $1 }
    }
}

// MARK: - Threads

/// Worker threads (train, evaluate): they never change a result.
struct WorkerOptions: ConfigurationOptions {
    @Option(help: "Worker threads. (default: the active cores)")
    var workers: Int?

    /// The workers of a process when --workers is not given: one per active core.
    static var defaultCount: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// The workers to run: the flag's, else the default.
    var count: Int { workers ?? Self.defaultCount }

    func validate() throws {
        if let workers, !(1...TrainingConfiguration.workerLimit).contains(workers) {
            throw ValidationError("--workers \(workers) is invalid: it must be at least 1 and at most \(TrainingConfiguration.workerLimit).")
        }
    }

    func edits(into edits: inout SettingEdits) {
        edits.add("--workers", workers, .free) { $0.workers = $1 }
    }
}

/// The matrix kernel's path (train, bench): every path gives the same bits.
struct KernelOptions: ParsableArguments {
    @Option(help: KernelChoice.help)
    var kernel: KernelChoice = .auto

    func validate() throws { _ = try resolved() }

    /// The path to run (`KernelChoice.resolved`).
    func resolved() throws -> Kernel { try kernel.resolved() }
}

// MARK: - Data

/// The HDF5 dataset (train, evaluate).
struct DataOptions: ParsableArguments {
    /// Where `backprop import fashion-mnist` writes, and what train and evaluate read by default.
    static let defaultPath = "datasets/fashion-mnist.h5"

    @Option(help: "The HDF5 dataset (see `backprop import`); `train --resume` defaults to the run's. (default: \(defaultPath))")
    var data: String?

    /// The dataset to read: the flag's, else the default.
    var path: String { data ?? Self.defaultPath }
}

/// Which split of a dataset file to read (evaluate, predict).
struct SplitOptions: ParsableArguments {
    @Option(help: "Which split of the dataset: test or train.")
    var split: DatasetSplit = .test

    /// The split's group name in a dataset file ("test", "train").
    var name: String { split.rawValue }
}

extension TrainingConfiguration {
    /// "784-256-128-10, relu, cross-entropy, momentum (μ 0.9), learning rate 0.05, batch 256".
    var summary: String {
        let μ = [.momentum, .nesterov, .rmsprop].contains(optimizer.kind) ? " (μ \(optimizer.momentum.shown))" : ""
        return "\(sizes.map(String.init).joined(separator: "-")), \(hiddenActivation.rawValue), \(loss.rawValue), "
            + "\(optimizer.kind.rawValue)\(μ), learning rate \(optimizer.learningRate.shown), batch \(batchSize)"
    }
}

extension Double {
    /// The number as a help text shows it: 0, 0.9, 1e-08.
    var shown: String { String(format: "%g", self) }
}

/// The flag that sets each setting of a configuration: where Core's words
/// for a setting become the command line's.
extension Backprop {
    static func flag(_ setting: TrainingError.Setting) -> String {
        switch setting {
        case .layers: return "--layers"
        case .loss: return "--loss"
        case .learningRate: return "--learning-rate"
        case .batchSize: return "--batch-size"
        case .epochs: return "--epochs"
        case .steps: return "--steps"
        case .workers: return "--workers"
        case .shardSize: return "--shard-size"
        case .momentum: return "--momentum"
        case .weightDecay: return "--weight-decay"
        case .rmspropAlpha: return "--rmsprop-alpha"
        case .learningRateDecay: return "--lr-decay"
        case .initialAccumulator: return "--initial-accumulator"
        // Adam's β and ε have no flags (PyTorch's defaults): a checkpoint alone can hold others.
        case .beta1, .beta2, .epsilon: return setting.words
        case .scheduleStepSize: return "--lr-step-size"
        case .scheduleGamma: return "--lr-gamma"
        case .warmupSteps: return "--warmup-steps"
        case .scheduleLength: return "the cosine schedule's length in steps (--epochs × batches per epoch, or --steps)"
        case .minimumLearningRate: return "--min-lr"
        case .clip: return "--dp-clip"
        case .noise: return "--dp-noise"
        case .delta: return "--dp-delta"
        }
    }
}
