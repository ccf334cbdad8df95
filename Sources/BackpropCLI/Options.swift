import ArgumentParser
import BackpropCore
import BackpropHDF5
import Foundation

// The option groups the commands share. Each flag is declared once, here,
// from its descriptor in Settings.swift (its name, help and default); a flag
// that is not given leaves the configuration as it is, so that `train
// --resume` can tell given flags from defaults.

/// One flag that was given, and how it changes a configuration.
struct SettingEdit {
    let setting: Setting
    let apply: (inout TrainingConfiguration) -> Void
}

/// The given flags of some option groups, as edits of a configuration, in
/// the order of `TrainingConfiguration.settings` (the optimizer's rule before its parameters).
struct SettingEdits {
    private(set) var all: [SettingEdit] = []

    /// One edit for each given option or flag of `group` whose property bears
    /// the name of a setting Core declares with a writable path, its value
    /// set as declared (a parsed value that stands for another, as
    /// `LayerSizes` does for [Int], gives its `settingValue`).
    mutating func add(_ group: any ParsableArguments) {
        for child in Mirror(reflecting: group).children {
            guard let label = child.label, label.hasPrefix("_"), let option = child.value as? any ParsedOption,
                  let given = option.given,
                  let setting = Settings.declared.first(where: { $0.declaration?.name == String(label.dropFirst()) }),
                  let declaration = setting.declaration, declaration.isWritable else { continue }
            let value = (given as? any SettingArgument)?.settingValue ?? given
            var probe = fresh
            precondition(declaration.set(value, in: &probe), "\(setting.flag) parses \(type(of: value)), not its declared type")
            all.append(SettingEdit(setting: setting) { declaration.set(value, in: &$0) })
        }
        let order = Dictionary(uniqueKeysWithValues: Settings.declared.enumerated().map { ($1.key, $0) })
        all.sort { order[$0.setting.key, default: 0] < order[$1.setting.key, default: 0] }
    }

    /// `configuration` with every edit applied.
    func applied(to configuration: TrainingConfiguration) -> TrainingConfiguration {
        var configuration = configuration
        for edit in all { edit.apply(&configuration) }
        return configuration
    }
}

/// A parsed option value that stands for a setting's value of another type.
protocol SettingArgument {
    var settingValue: Any { get }
}

extension LayerSizes: SettingArgument { var settingValue: Any { sizes } }
extension NumberList: SettingArgument { var settingValue: Any { values } }

/// An option's or flag's value as parsed, whatever its type; nil when it was not given
/// (a flag without an inversion: when it is off).
protocol ParsedOption {
    var given: Any? { get }
}

extension Option: ParsedOption {
    var given: Any? { (wrappedValue as? any OptionalValue)?.wrapped }
}

extension Flag: ParsedOption {
    var given: Any? {
        if let optional = wrappedValue as? any OptionalValue { return optional.wrapped }
        return (wrappedValue as? Bool) == true ? true : nil
    }
}

/// An Optional, seen through `Any`.
protocol OptionalValue {
    var wrapped: Any? { get }
    static var wrappedType: Any.Type { get }
}

extension Optional: OptionalValue {
    var wrapped: Any? { map { $0 } }
    static var wrappedType: Any.Type { Wrapped.self }
}

/// A value made of real numbers (a list of rates).
protocol RealValues {
    var reals: [Double] { get }
}

extension NumberList: RealValues {
    var reals: [Double] { values }
}

/// A numeric option's values as parsed; empty when it was not given or is not numeric.
protocol ParsedNumbers {
    var numbers: [any CustomStringConvertible & Sendable] { get }
}

extension Option: ParsedNumbers {
    var numbers: [any CustomStringConvertible & Sendable] {
        let value: Any? = (wrappedValue as? any OptionalValue).map(\.wrapped) ?? wrappedValue
        switch value {
        case let real as Double: return [real]
        case let whole as Int: return [whole]
        case let whole as UInt64: return [whole]
        case let list as any RealValues: return list.reals
        default: return []
        }
    }
}

/// An option group nested in a command, seen through `Any`.
protocol NestedArguments {
    var arguments: any ParsableArguments { get }
}

extension OptionGroup: NestedArguments {
    var arguments: any ParsableArguments { wrappedValue }
}

/// The numbers a command's (or option group's) own options take, by property
/// name: the domains of the options that are not settings of a run (those
/// are declared with their settings, `Settings`), declared once beside the
/// options and checked by `refuseOutOfDomain`.
protocol OptionDomains {
    static var domains: [String: SettingDomain] { get }
}

/// Refuses, by flag, a value outside its setting's domain given to any
/// numeric option of `command` or of its option groups
/// (`--momentum: 1.5 is not a number in [0, 1).`), and NaN and ±∞ given to
/// any real-valued one, whatever its domain (`--name: nan is not a finite
/// number.`): no setting takes them, and none may stand in for "not given".
/// The domain is the one Core declares for the setting the flag sets
/// (`Declared.domain`). Every command with a numeric
/// option, and every option group whose own checks read one (they are
/// validated before the command), calls it first in its `validate()`, so
/// that no later check reads a value its domain refuses. The flag is the
/// declared setting's of the property's name, else that name in kebab case.
func refuseOutOfDomain(in command: any ParsableArguments) throws {
    for child in Mirror(reflecting: command).children {
        if let group = child.value as? any NestedArguments {
            try refuseOutOfDomain(in: group.arguments)
        } else if let label = child.label, let option = child.value as? any ParsedNumbers {
            let property = String(label.dropFirst())
            let flag = Settings.flag(ofProperty: property)
            let domain = (type(of: command) as? any OptionDomains.Type)?.domains[property] ?? Settings.all.first { $0.flag == flag }?.domain
            for value in option.numbers {
                if let real = value as? Double, !real.isFinite {
                    throw ValidationError("\(flag): \(real) is not \(domain?.description ?? "a finite number").")
                }
                if let domain { try requireDomain(flag, value, domain) }
            }
        }
    }
}

/// Refuses `value` of `flag` outside `domain`, worded as every value outside
/// its domain is (`--keep: 0 is not a whole number ≥ 1.`).
func requireDomain(_ flag: String, _ value: some CustomStringConvertible & Sendable, _ domain: SettingDomain) throws {
    guard domain.contains(value) else { throw ValidationError("\(flag): \(value) is not \(domain.description)\(domain.float32Note("\(value)")).") }
}

/// An option group whose flags edit a `TrainingConfiguration`: each option
/// named as the setting it sets (`SettingEdits`).
protocol ConfigurationOptions: ParsableArguments {}

// MARK: - Model

/// The network: its layers, activations, loss and initialisation (train, bench).
struct ModelOptions: ConfigurationOptions {
    @Option(name: Settings["layers"].name, help: Settings["layers"].help)
    var layers: LayerSizes?
    @Option(name: Settings["activation"].name, help: Settings["activation"].help)
    var activation: Activation?
    @Option(name: Settings["outputActivation"].name, help: Settings["outputActivation"].help)
    var outputActivation: Activation?
    @Option(name: Settings["loss"].name, help: Settings["loss"].help)
    var loss: Loss?
    @Option(name: Settings["initialization"].name, help: Settings["initialization"].help)
    var initialization: Initialization?
    @Option(name: Settings["labelSmoothing"].name, help: Settings["labelSmoothing"].help)
    var labelSmoothing: Double?
    @Option(name: Settings["dropout"].name, help: Settings["dropout"].help)
    var dropout: NumberList?
    @Option(name: Settings["classWeights"].name, help: Settings["classWeights"].help)
    var classWeights: NumberList?
    @Option(name: Settings["inputDropout"].name, help: Settings["inputDropout"].help)
    var inputDropout: Double?
    @Option(name: Settings["augment"].name, help: Settings["augment"].help, transform: Augmentation.parsed)
    var augment: Augmentation?
    @Option(name: Settings["ema"].name, help: Settings["ema"].help)
    var ema: Double?
    @Option(name: Settings["swaStart"].name, help: Settings["swaStart"].help)
    var swaStart: Int?

}

// MARK: - Distillation

/// Training on a teacher's probabilities as well as the labels (train).
struct DistillationOptions: ConfigurationOptions {
    @Option(name: Settings.teacher.name, help: Settings.teacher.help)
    var teacher: String?
    @Option(name: Settings["distillAlpha"].name, help: Settings["distillAlpha"].help)
    var distillAlpha: Double?
    @Option(name: Settings["temperature"].name, help: Settings["temperature"].help)
    var temperature: Double?
}

// MARK: - Optimizer

/// The update rule and its hyper-parameters (train, bench).
struct OptimizerOptions: ConfigurationOptions {
    @Option(name: Settings["optimizer"].name, help: Settings["optimizer"].help)
    var optimizer: OptimizerKind?
    @Option(name: Settings["momentum"].name, help: Settings["momentum"].help)
    var momentum: Double?
    @Option(name: Settings["weightDecay"].name, help: Settings["weightDecay"].help)
    var weightDecay: Double?
    @Option(name: Settings["rmspropAlpha"].name, help: Settings["rmspropAlpha"].help)
    var rmspropAlpha: Double?
    @Flag(name: Settings["centered"].name, help: Settings["centered"].help)
    var centered = false
    @Option(name: Settings["lrDecay"].name, help: Settings["lrDecay"].help)
    var lrDecay: Double?
    @Option(name: Settings["initialAccumulator"].name, help: Settings["initialAccumulator"].help)
    var initialAccumulator: Double?
    @Option(name: Settings["beta1"].name, help: Settings["beta1"].help)
    var beta1: Double?
    @Option(name: Settings["beta2"].name, help: Settings["beta2"].help)
    var beta2: Double?
    @Option(name: Settings["epsilon"].name, help: Settings["epsilon"].help)
    var epsilon: Double?
    @Option(name: Settings["clipNorm"].name, help: Settings["clipNorm"].help)
    var clipNorm: Double?

    func validate() throws {
        try refuseOutOfDomain(in: self)
    }

    /// Refuses a flag of one rule given with another (`--momentum` with adam):
    /// `configuration`, the run's (given, or the resumed run's). The rules each
    /// flag applies to are its declaration's requirement.
    func checkOwners(of configuration: TrainingConfiguration) throws {
        var given = SettingEdits()
        given.add(self)
        for edit in given.all {
            guard let requirement = edit.setting.declaration?.requirement, requirement.setting == "optimizer",
                  !requirement.holds(in: configuration) else { continue }
            let kinds = requirement.values.count == 1 ? requirement.values[0]
                : requirement.values.dropLast().joined(separator: ", ") + " or " + requirement.values.last!
            throw ValidationError("\(edit.setting.flag) applies only to \(Settings["optimizer"].flag) \(kinds), not \(configuration.optimizer.kind.rawValue).")
        }
    }
}

// MARK: - Batches

/// How a step's samples are split: the batch and its shards (train, bench).
struct BatchOptions: ConfigurationOptions {
    @Option(name: Settings["batchSize"].name, help: Settings["batchSize"].help)
    var batchSize: Int?
    @Option(name: Settings["shardSize"].name, help: Settings["shardSize"].help)
    var shardSize: Int?

}

// MARK: - Threads

/// Worker threads (train, evaluate): they never change a result.
struct WorkerOptions: ConfigurationOptions {
    @Option(name: Settings["workers"].name, help: Settings["workers"].help)
    var workers: Int?

    /// The workers of a process when --workers is not given: one per active core.
    static var defaultCount: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// The workers to run: the flag's, else the default.
    var count: Int { workers ?? Self.defaultCount }

    func validate() throws {
        try refuseOutOfDomain(in: self)
    }

}

/// The products' operands (train): fp32, or bf16 accumulated in fp32.
struct PrecisionOptions: ConfigurationOptions {
    @Option(name: Settings["precision"].name, help: Settings["precision"].help)
    var precision: Precision?
}

/// The products' operands of a model's forward passes (evaluate, predict): the
/// exported model's own fp32, or bf16 as `--precision bf16` trains.
struct InferencePrecisionOptions: ParsableArguments {
    @Option(help: "The products' operands: fp32 (the model's own arithmetic) or bf16 (bf16 operands accumulated in fp32, as train --precision bf16 runs them).")
    var precision = Precision.fp32

    var products: Products { Products(precision: precision) }

    /// The line a command prints where its products run at bf16; nil at fp32.
    var note: String? { precision == .fp32 ? nil : "products: \(products.summary), the model's fp32 weights rounded as they are read" }
}

/// The matrix kernel's path (train, bench): every path gives the same bits.
struct KernelOptions: ParsableArguments {
    @Option(name: Settings.kernel.name, help: Settings.kernel.help)
    var kernel: KernelChoice?

    func validate() throws { _ = try resolved() }

    /// The path to run (`KernelChoice.resolved`).
    func resolved() throws -> Kernel { try (kernel ?? .auto).resolved() }
}

// MARK: - Data

/// The HDF5 dataset (train, evaluate).
struct DataOptions: ParsableArguments {
    /// Where `backprop import fashion-mnist` writes, and what train and evaluate read by default.
    static let defaultPath = "datasets/fashion-mnist.h5"

    @Option(name: Settings.data.name, help: Settings.data.help)
    var data: String?

    /// The dataset to read: the flag's, else the default.
    var path: String { data ?? Self.defaultPath }
}

/// Whether /train is streamed from the file rather than read whole.
struct StreamOptions: ParsableArguments {
    @Flag(name: Settings.stream.name, help: Settings.stream.help)
    var stream = false
    @Option(name: Settings.dataMemory.name, help: Settings.dataMemory.help, transform: ByteSize.init(parsing:))
    var dataMemory: ByteSize?

    /// The budget unless told: half of physical memory.
    static var defaultBudget: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory / 2) }

    /// Whether features of `bytes` bytes are streamed.
    func streams(featureBytes bytes: Int) -> Bool { stream || bytes > (dataMemory?.bytes ?? Self.defaultBudget) }
}

/// A size in bytes, in one grammar: a whole number of bytes, or a number
/// (whole or decimal) with a unit K, M, G or T (powers of 1024; KiB, MB, … too),
/// such as 512M, 8G or 1.5G. Anything else (hex, exponents, a fractional byte
/// count, another unit) is refused, with the grammar in the message.
struct ByteSize {
    let bytes: Int

    /// The grammar, as the error says it.
    static let grammar = "give a whole number of bytes, or a number with K, M, G or T (powers of 1024), e.g. 512M, 8G, 1.5G"

    /// The size `text` stands for (an option's `transform`).
    /// - Throws: `ValidationError` naming the value and the grammar.
    init(parsing text: String) throws {
        bytes = try Self.parse(text)
    }

    private static func parse(_ text: String) throws -> Int {
        let units: [String: Double] = ["K": 0x1p10, "M": 0x1p20, "G": 0x1p30, "T": 0x1p40]
        guard let match = text.wholeMatch(of: /([0-9]+)(\.[0-9]+)?\s*(?i:([KMGT])(?:i?B)?)?/) else {
            throw ValidationError("'\(text)' is not a size: \(grammar).")
        }
        let unit = match.3.map { units[$0.uppercased()]! }
        guard match.2 == nil || unit != nil else { throw ValidationError("'\(text)' is a fraction of a byte: \(grammar).") }
        guard let value = Double(match.0.filter { $0.isNumber || $0 == "." }), value * (unit ?? 1) < 0x1p62 else {
            throw ValidationError("'\(text)' is more bytes than a run can count: \(grammar).")
        }
        return Int(value * (unit ?? 1))
    }
}

/// The validation split, and when the test split is read.
struct ValidationOptions: ConfigurationOptions {
    @Option(name: Settings["validationFraction"].name, help: Settings["validationFraction"].help)
    var validationFraction: Double?
    @Option(name: Settings.reportTest.name, help: Settings.reportTest.help)
    var reportTest: TestReport?

    /// When the test split is read: as given, else at the end.
    var testReport: TestReport { reportTest ?? .end }
    @Option(name: Settings["monitor"].name, help: Settings["monitor"].help)
    var monitor: Monitor?
    @Option(name: Settings["minDelta"].name, help: Settings["minDelta"].help)
    var minDelta: Double?
    @Option(name: Settings["earlyStopping"].name, help: Settings["earlyStopping"].help)
    var earlyStopping: Int?

}

/// When a run reads its test split.
enum TestReport: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// Once, for the final model.
    case end
    /// After every epoch as well (shown, logged; still choosing nothing).
    case everyEpoch = "every-epoch"
    /// Never (a sweep's trials: the test split is read once, for the trial chosen).
    case none
}

/// Which split of a dataset file to read (evaluate, predict).
struct SplitOptions: ParsableArguments {
    @Option(help: "Which split of the dataset: test, train (all of /train), or validation (the file's /validation, else the share of /train the model's run held out).")
    var split: DatasetSplit = .test

    /// The split's group name in a dataset file ("test", "train").
    var name: String { split.rawValue }

    /// The split of `file` (at `path`) for a model trained as `configuration`
    /// says: a validation split is the file's own, or the run's held-out share
    /// of /train (`Dataset.split`, with the run's fraction and seed).
    /// With `streaming`, a stored split larger than its budget is streamed (`DatasetFile.streamedSplit`).
    func read(_ file: HDF5File, path: String, trainedAs configuration: TrainingConfiguration, checkpoint: String,
              streaming: StreamOptions? = nil) throws -> any RowSource {
        func stored(_ name: String) throws -> any RowSource {
            if let streaming, streaming.streams(featureBytes: try DatasetFile.featureBytes(of: name, in: file)) {
                return try DatasetFile.streamedSplit(name, of: file)
            }
            return try DatasetFile.split(name, of: file)
        }
        guard split == .validation else { return try stored(name) }
        if try file.exists("/validation") {
            _ = try DatasetFile.validation(of: file)  // checked against /train
            return try stored("validation")
        }
        guard configuration.validationFraction > 0 else {
            throw ValidationError("--split validation: \(path) has no /validation, and \(checkpoint) was trained without "
                                  + "\(Settings["validationFraction"].flag).")
        }
        return try Settings.namingFlags {
            try DatasetFile.split("train", of: file).split(validationFraction: configuration.validationFraction, seed: configuration.seed).validation
        }
    }
}

extension TrainingConfiguration {
    /// "784-256-128-10, relu, cross-entropy, momentum (μ 0.9), learning rate 0.05, batch 256".
    var summary: String {
        let μ = [.momentum, .nesterov, .rmsprop].contains(optimizer.kind) ? " (μ \(optimizer.momentum.shown))" : ""
        return "\(sizes.map(String.init).joined(separator: "-")), \(hiddenActivation.rawValue), \(loss.rawValue), "
            + "\(optimizer.kind.rawValue)\(μ), learning rate \(schedule.base.shown), batch \(batchSize)"
    }
}

extension Double {
    /// The number as a help text shows it: 0, 0.9, 1e-08.
    var shown: String { String(format: "%g", self) }
}
