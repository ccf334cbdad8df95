/// Everything that can go wrong in BackpropCore because of what a user asked
/// for (a configuration, a dataset that does not fit the model, a run that
/// diverges). Broken internal invariants are preconditions instead.
public enum TrainingError: Error, Equatable, CustomStringConvertible {
    /// The layer list has fewer than two sizes or a size below 1.
    case invalidLayers([Int])
    /// The layers would have more parameters than `Network.parameterLimit`
    /// (or more than an Int counts).
    case tooManyParameters(sizes: [Int], limit: Int)
    /// The output activation does not go with the loss.
    case outputActivationMismatch(loss: Loss, activation: Activation)
    /// Softmax was asked for between layers.
    case softmaxHiddenActivation
    /// The dataset's feature count is not the network's input width.
    case inputWidthMismatch(dataset: String, features: Int, networkInputs: Int)
    /// A label is at or above the number of outputs.
    case labelOutOfRange(dataset: String, index: Int, label: Int, outputCount: Int)
    /// The dataset's target rows are not as wide as the network's output.
    case targetWidthMismatch(dataset: String, targets: Int, networkOutputs: Int)
    /// Real-valued targets with a loss other than sum-of-squares.
    case regressionNeedsSumOfSquares(dataset: String)
    /// A size, rate or count in the configuration lies outside its domain
    /// (`Declared.domain`).
    case outOfDomain(Setting, value: String, domain: SettingDomain)
    /// A setting that does not go with the others, or with the data, and why.
    case invalidSetting(Setting, value: String, reason: String)
    /// The loss became NaN or infinite. The trainer knows no files: whoever
    /// writes checkpoints fills in the last one.
    case diverged(step: Int, loss: Double, lastCheckpoint: String?)
    /// A step with a finite loss left a parameter that is not finite (its
    /// gradient overflowed, e.g. on inputs of huge magnitude), found at `step`.
    case nonFiniteParameters(step: Int, lastCheckpoint: String?)
    /// A streamed dataset's rows `rows` could not be read, for `reason` (the storage's own message).
    case dataUnreadable(dataset: String, rows: Range<Int>, reason: String)

    /// The error with `path` as the last checkpoint written, where it names
    /// none (the trainer and the loop know no files; whoever writes them does).
    public func naming(lastCheckpoint path: String?) -> TrainingError {
        switch self {
        case .diverged(let step, let loss, nil): return .diverged(step: step, loss: loss, lastCheckpoint: path)
        case .nonFiniteParameters(let step, nil): return .nonFiniteParameters(step: step, lastCheckpoint: path)
        default: return self
        }
    }

    /// A setting an error names: a declared one by its name
    /// (`TrainingConfiguration.settings`), or a quantity derived from them, in
    /// words. Core names none by a flag: the command line passes its own names
    /// to `description(naming:)`.
    public struct Setting: Sendable, Hashable, ExpressibleByStringLiteral {
        /// The declared setting's name ("batchSize").
        public let name: String
        private let derived: String?

        /// The declared setting `name`.
        public init(_ name: String) { (self.name, derived) = (name, nil) }
        public init(stringLiteral name: String) { self.init(name) }
        /// A quantity derived from declared settings, which no flag sets, in `words`.
        public init(_ name: String, words: String) { (self.name, derived) = (name, words) }

        /// The setting in words, for messages that name no flag.
        public var words: String { derived ?? TrainingConfiguration.setting(named: name)?.words ?? name }
    }

    /// The message in words, naming no flag.
    public var description: String { description(naming: { _ in nil }) }

    /// The message, with the flag (or other name) `name` gives each setting its advice mentions.
    public func description(naming name: (Setting) -> String?) -> String {
        func named(_ setting: Setting, _ example: String = "") -> String {
            name(setting).map { " (\($0)\(example.isEmpty ? "" : " " + example))" } ?? ""
        }
        switch self {
        case .invalidLayers(let sizes):
            let list = sizes.map(String.init).joined(separator: ",")
            return "layer list '\(list)' is invalid: give at least an input and an output width, each at least 1\(named("layers", "784,256,128,10"))."
        case .tooManyParameters(let sizes, let limit):
            let list = sizes.map(String.init).joined(separator: ",")
            return "layer list '\(list)' has more than \(limit) parameters, the most a model may have (a checkpoint holds no more); make the layers narrower."
        case .outputActivationMismatch(let loss, let activation):
            return "output activation '\(activation.rawValue)' does not go with loss '\(loss.rawValue)': cross-entropy needs softmax, sum-of-squares any element-wise activation (identity by default)."
        case .softmaxHiddenActivation:
            return "softmax cannot be a hidden activation; use relu, leaky-relu, tanh, sigmoid or identity."
        case .inputWidthMismatch(let dataset, let features, let inputs):
            return "dataset \(dataset) has \(features) features per sample but the network's first layer takes \(inputs); make the first layer width \(features)\(named("layers"))."
        case .labelOutOfRange(let dataset, let index, let label, let outputs):
            return "dataset \(dataset) has label \(label) at sample \(index), but the network has only \(outputs) outputs; make the last layer width at least \(label + 1)\(named("layers"))."
        case .targetWidthMismatch(let dataset, let targets, let outputs):
            return "dataset \(dataset) has \(targets) target values per sample but the network has \(outputs) outputs; make the last layer width \(targets)\(named("layers"))."
        case .regressionNeedsSumOfSquares(let dataset):
            return "dataset \(dataset) has real-valued (regression) targets; train it with the sum-of-squares loss\(named("loss", "sum-of-squares")) (cross-entropy needs class labels)."
        case .outOfDomain(let setting, let value, let domain):
            // "--momentum: 1.5 is not a number in [0, 1)", or in words where no flag names it.
            return "\(name(setting) ?? setting.words): \(value) is not \(domain.description)\(domain.float32Note(value))."
        case .invalidSetting(let setting, let value, let reason):
            // Named by the caller (a flag, "--batch-size 0 is invalid"), or in words ("batch size = 0 is invalid").
            let named = name(setting).map { "\($0) \(value)" } ?? "\(setting.words) = \(value)"
            return "\(named) is invalid: \(reason)."
        case .diverged(let step, let loss, let checkpoint):
            let last = checkpoint.map { " The last checkpoint written is \($0)." } ?? " No checkpoint was written before it."
            return "training diverged at step \(step): the loss is \(loss).\(last) Try a smaller learning rate\(named("learningRate"))."
        case .nonFiniteParameters(let step, let checkpoint):
            let last = checkpoint.map { " The last checkpoint written is \($0)." } ?? " No checkpoint was written before it."
            return "training diverged by step \(step): a parameter is no longer finite (a gradient overflowed; are the inputs "
                + "of a sensible size?).\(last) Try a smaller learning rate\(named("learningRate"))."
        case .dataUnreadable(let dataset, let rows, let reason):
            return "dataset \(dataset): rows \(rows.lowerBound) … \(rows.upperBound - 1) could not be read while streaming: \(reason)"
        }
    }
}
