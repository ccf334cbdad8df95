/// The settings that are views of a configuration's stored parts (the
/// optimizer's rule, early stopping, DP-SGD, the schedule's shape), as
/// `TrainingConfiguration.settings` declares them, and how to look one up.
extension TrainingConfiguration {
    /// The declared setting named `name`, if any.
    public static func setting(named name: String) -> Declared<TrainingConfiguration>? {
        settings.first { $0.name == name }
    }

    /// `setting`'s value here; nil when it is unset.
    public func value(of setting: Declared<TrainingConfiguration>) -> (any Sendable)? { setting.value(in: self) }

    /// A value as the help and messages write it: an enumeration by its name
    /// ("cross-entropy"), a list joined by commas ("784,256,10"), a whole real
    /// number as a whole one, anything else as Swift prints it.
    public static func text(of value: Any) -> String {
        switch value {
        case let named as any RawRepresentable<String>: return named.rawValue
        case let list as [Any]: return list.map(text(of:)).joined(separator: ",")
        // 0 and 2, not 0.0 and 2.0; 0.05 and 1e-08 as Swift prints them.
        case let real as Double where real == real.rounded() && abs(real) < 1e15: return "\(Int(real))"
        default: return "\(value)"
        }
    }

    /// The update rule. Another rule starts from PyTorch's defaults for it, keeping the weight decay.
    public var optimizerKind: OptimizerKind {
        get { optimizer.kind }
        set {
            guard newValue != optimizer.kind else { return }
            var settings = OptimizerSettings.defaults(for: newValue)
            settings.weightDecay = optimizer.weightDecay
            optimizer = settings
        }
    }

    /// Early stopping's patience; nil: the run trains all its epochs.
    public var patience: Int? {
        get { earlyStopping?.patience }
        set { earlyStopping = newValue.map(EarlyStopping.init(patience:)) }
    }

    /// DP-SGD's clipping bound C, which turns it on: σ and δ not yet given are NaN (to be filled in from the data).
    public var dpClip: Double? {
        get { privacy?.clip }
        set { privacy = newValue.map { DifferentialPrivacy(clip: $0, noise: privacy?.noise ?? .nan, delta: privacy?.delta ?? .nan) } }
    }

    /// DP-SGD's noise multiplier σ (set only with DP-SGD on).
    public var dpNoise: Double? {
        get { privacy?.noise }
        set { if let newValue { privacy?.noise = newValue } }
    }

    /// DP-SGD's δ (set only with DP-SGD on).
    public var dpDelta: Double? {
        get { privacy?.delta }
        set { if let newValue { privacy?.delta = newValue } }
    }

    /// The schedule's kind; its parameters are resolved against the data (a step of one epoch, the cosine's length).
    public var scheduleKind: LearningRateSchedule.Kind { LearningRateSchedule.Kind(schedule.shape) }

    /// The step schedule's step size; nil for another schedule.
    public var lrStepSize: Int? { if case .stepDecay(let size, _) = schedule.shape { size } else { nil } }
    /// The step schedule's γ; nil for another schedule.
    public var lrGamma: Double? { if case .stepDecay(_, let gamma) = schedule.shape { gamma } else { nil } }
    /// The cosine's warm-up steps; nil for another schedule.
    public var warmupSteps: Int? { if case .cosine(let warmup, _, _) = schedule.shape { warmup } else { nil } }
    /// The cosine's η_min, or the plateau's floor; nil for another schedule.
    public var minLr: Double? {
        switch schedule.shape {
        case .cosine(_, _, let minimum), .plateau(_, _, let minimum): minimum
        default: nil
        }
    }
    /// The plateau's factor; nil for another schedule.
    public var plateauFactor: Double? { if case .plateau(let factor, _, _) = schedule.shape { factor } else { nil } }
    /// The plateau's patience; nil for another schedule.
    public var plateauPatience: Int? { if case .plateau(_, let patience, _) = schedule.shape { patience } else { nil } }
}

extension LearningRateSchedule {
    /// The schedules by name.
    public enum Kind: String, CaseIterable, Sendable {
        case constant, step, cosine, plateau

        public init(_ shape: Shape) {
            switch shape {
            case .constant: self = .constant
            case .stepDecay: self = .step
            case .cosine: self = .cosine
            case .plateau: self = .plateau
            }
        }
    }
}

extension Requirement {
    /// The optimizer is one of `kinds`.
    static func optimizer(_ kinds: OptimizerKind...) -> Requirement {
        Requirement("optimizer", kinds.map(\.rawValue)) { (c: TrainingConfiguration) in kinds.contains(c.optimizer.kind) }
    }

    /// The schedule is one of `kinds`.
    static func schedule(_ kinds: LearningRateSchedule.Kind...) -> Requirement {
        Requirement("lrSchedule", kinds.map(\.rawValue)) { (c: TrainingConfiguration) in kinds.contains(c.scheduleKind) }
    }

    /// A block shuffle is on (--shuffle-blocks N, N > 0).
    static let blockShuffle = Requirement("shuffleBlocks", ["N > 0"]) { (c: TrainingConfiguration) in c.blockShuffle.isActive }
}
