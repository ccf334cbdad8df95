import ArgumentParser
import BackpropCore
import Foundation

// The option groups of `backprop train` alone; see Options.swift for the
// shared ones and how a group edits a configuration.

// MARK: - Samples

/// Which samples each step sees, and how their gradients are combined.
struct SamplingOptions: ConfigurationOptions {
    @Flag(name: Settings["shuffle"].name, inversion: .prefixedNo, help: Settings["shuffle"].help)
    var shuffle: Bool?
    @Option(name: Settings["shuffleBlocks"].name, help: Settings["shuffleBlocks"].help)
    var shuffleBlocks: Int?
    @Option(name: Settings["shuffleWindow"].name, help: Settings["shuffleWindow"].help)
    var shuffleWindow: Int?
    @Option(name: Settings["seed"].name, help: Settings["seed"].help)
    var seed: UInt64?
    @Option(name: Settings["reduction"].name, help: Settings["reduction"].help)
    var reduction: Reduction?
    @Option(name: Settings["sampling"].name, help: Settings["sampling"].help)
    var sampling: Sampling?

}

// MARK: - DP-SGD

/// DP-SGD: per-sample clipping, noise, and the (ε, δ) reported.
struct PrivacyOptions: ConfigurationOptions {
    @Option(name: Settings["dpClip"].name, help: Settings["dpClip"].help)
    var dpClip: Double?
    @Option(name: Settings["dpNoise"].name, help: Settings["dpNoise"].help)
    var dpNoise: Double?
    @Option(name: Settings.dpEpsilon.name, help: Settings.dpEpsilon.help)
    var dpEpsilon: Double?
    @Option(name: Settings["dpDelta"].name, help: Settings["dpDelta"].help)
    var dpDelta: Double?

    func validate() throws {
        try refuseOutOfDomain(in: self)
        if dpNoise != nil && dpEpsilon != nil { throw ValidationError("--dp-noise and --dp-epsilon both set σ; give one.") }
    }

    /// The DP-SGD flags given, with their values, in the order of the help.
    var given: [(flag: String, value: Double)] {
        [(Settings["dpClip"], dpClip), (Settings["dpNoise"], dpNoise), (Settings.dpEpsilon, dpEpsilon), (Settings["dpDelta"], dpDelta)]
            .compactMap { setting, value in value.map { (setting.flag, $0) } }
    }

    /// Refuses a flag that sets a part of DP-SGD for a run without it: DP-SGD
    /// is on when --dp-clip is given, or in `base`, the run resumed from `resumed`.
    func checkNeedsClip(base: TrainingConfiguration, resumed: String?) throws {
        guard dpClip == nil, base.privacy == nil, let (flag, value) = given.first else { return }
        if let resumed {
            throw ValidationError("\(flag) \(value): the run saved in \(resumed) was trained without DP-SGD (no \(Settings["dpClip"].flag)), "
                                  + "and a resume cannot turn it on (start a new run instead).")
        }
        throw ValidationError("\(flag) needs \(Settings["dpClip"].flag) (the clipping bound C turns DP-SGD on).")
    }


    /// `configuration`'s privacy with δ and σ filled in for a run on
    /// `sampleCount` samples: δ is 1/N rounded down to a power of ten; σ as
    /// given, or the smallest that spends --dp-epsilon over the planned steps.
    func resolve(_ configuration: inout TrainingConfiguration, sampleCount: Int) throws {
        guard var privacy = configuration.privacy else { return }
        if privacy.delta.isNaN { privacy.delta = pow(10, (log10(1 / Double(max(sampleCount, 2)))).rounded(.down)) }
        if let dpEpsilon {
            let q = Double(min(configuration.batchSize, sampleCount)) / Double(sampleCount)
            let steps = try configuration.plannedSteps(sampleCount: sampleCount)
            guard let σ = PrivacyAccountant.noise(forEpsilon: dpEpsilon, samplingRate: q, steps: max(steps, 1), delta: privacy.delta) else {
                throw ValidationError("--dp-epsilon \(dpEpsilon): no noise multiplier up to 1,000 spends so little in \(steps) steps at q = \(q).")
            }
            privacy.noise = σ
        }
        if privacy.noise.isNaN { throw ValidationError("--dp-clip needs --dp-noise σ or --dp-epsilon ε.") }
        configuration.privacy = privacy
        if configuration.sampling == nil { configuration.sampling = .poisson }
    }
}

extension PrivacyOptions: OptionDomains {
    static let domains: [String: SettingDomain] = ["dpEpsilon": .positive]
}

// MARK: - Length and learning rate

/// How long and how fast: the epochs or steps and the learning-rate schedule.
/// These may change on resume with --override.
struct ScheduleOptions: ConfigurationOptions {
    @Option(name: Settings["learningRate"].name, help: Settings["learningRate"].help)
    var learningRate: Double?
    @Option(name: Settings["lrSchedule"].name, help: Settings["lrSchedule"].help)
    var lrSchedule: LearningRateSchedule.Kind?
    @Option(name: Settings["lrStepSize"].name, help: Settings["lrStepSize"].help)
    var lrStepSize: Int?
    @Option(name: Settings["lrGamma"].name, help: Settings["lrGamma"].help)
    var lrGamma: Double?
    @Option(name: Settings["warmupSteps"].name, help: Settings["warmupSteps"].help)
    var warmupSteps: Int?
    @Option(name: Settings["minLr"].name, help: Settings["minLr"].help)
    var minLr: Double?
    @Option(name: Settings["plateauFactor"].name, help: Settings["plateauFactor"].help)
    var plateauFactor: Double?
    @Option(name: Settings["plateauPatience"].name, help: Settings["plateauPatience"].help)
    var plateauPatience: Int?
    @Option(name: Settings["epochs"].name, help: Settings["epochs"].help)
    var epochs: Int?
    @Option(name: Settings["steps"].name, help: Settings["steps"].help)
    var steps: Int?

    func validate() throws {
        try refuseOutOfDomain(in: self)
        if epochs == 0, let steps {
            throw ValidationError("--steps \(steps) cannot be reached with --epochs 0; drop one of them.")
        }
    }


    /// The --lr-* flags given (those of the schedule's settings, which its resolution against the data sets), in the order of the help.
    var givenSchedule: [(setting: Setting, value: Any)] {
        let values: [String: Any?] = ["lrSchedule": lrSchedule, "lrStepSize": lrStepSize, "lrGamma": lrGamma, "warmupSteps": warmupSteps,
                                      "minLr": minLr, "plateauFactor": plateauFactor, "plateauPatience": plateauPatience]
        return Settings.declared.compactMap { setting in
            guard let name = setting.declaration?.name, let value = values[name] ?? nil else { return nil }
            return (setting, value)
        }
    }

    /// Whether any --lr-* flag was given.
    var givesSchedule: Bool { !givenSchedule.isEmpty }

    /// The --lr-* flags given, in the order of the help.
    var givenScheduleFlags: [String] { givenSchedule.map(\.setting.flag) }

    /// Refuses --lr-* flags that the schedule `kind` does not take (their
    /// declarations' requirement): the one given, or that of the run resumed from `resumed`.
    func checkFlags(of kind: LearningRateSchedule.Kind, resumed: String? = nil) throws {
        var probe = fresh
        probe.schedule.shape = switch kind {
        case .constant: .constant
        case .step: .stepDecay(stepSize: 1, gamma: 1)
        case .cosine: .cosine(warmupSteps: 0, totalSteps: 1, minimum: 0)
        case .plateau: .plateau(factor: 0.5, patience: 1, minimum: 0)
        }
        for (setting, _) in givenSchedule {
            guard let requirement = setting.declaration?.requirement, !requirement.holds(in: probe) else { continue }
            let needed = "\(Settings["lrSchedule"].flag) \(requirement.values.joined(separator: " or "))"
            if let resumed, lrSchedule == nil {
                throw ValidationError("\(setting.flag) applies to \(needed); the run saved in \(resumed) has a \(kind.rawValue) schedule "
                                      + "(change it with \(needed) and --override).")
            }
            throw ValidationError("\(setting.flag) needs \(needed).")
        }
    }

    /// The schedule's shape the --lr-* flags describe, starting from
    /// `configuration`'s, for a run on `sampleCount` samples.
    func shape(of configuration: TrainingConfiguration, sampleCount: Int, resumed: String? = nil) throws -> LearningRateSchedule.Shape {
        let batchesPerEpoch = Epochs.batches(of: sampleCount, in: max(configuration.batchSize, 1))
        let current = configuration.schedule.shape
        let kind = lrSchedule ?? LearningRateSchedule.Kind(current)
        try checkFlags(of: kind, resumed: resumed)
        switch kind {
        case .constant:
            return .constant
        case .step:
            var (stepSize, gamma) = (batchesPerEpoch, LearningRateSchedule.defaultGamma)
            if case .stepDecay(let s, let g) = current { (stepSize, gamma) = (s, g) }
            return .stepDecay(stepSize: lrStepSize ?? stepSize, gamma: lrGamma ?? gamma)
        case .cosine:
            var (warmup, minimum) = (LearningRateSchedule.defaultWarmupSteps, LearningRateSchedule.defaultMinimum)
            if case .cosine(let w, _, let m) = current { (warmup, minimum) = (w, m) }
            // The cosine reaches η_min at the run's last step.
            let total = try configuration.plannedSteps(sampleCount: sampleCount)
            return .cosine(warmupSteps: warmupSteps ?? warmup, totalSteps: total, minimum: minLr ?? minimum)
        case .plateau:
            var (factor, patience, minimum) = (LearningRateSchedule.defaultPlateauFactor, LearningRateSchedule.defaultPlateauPatience,
                                               LearningRateSchedule.defaultMinimum)
            if case .plateau(let f, let p, let m) = current { (factor, patience, minimum) = (f, p, m) }
            return .plateau(factor: plateauFactor ?? factor, patience: plateauPatience ?? patience, minimum: minLr ?? minimum)
        }
    }
}

extension LearningRateSchedule.Kind: ExpressibleByArgument {}

extension LearningRateSchedule.Shape {
    /// The shape as its flags would give it ("step (--lr-step-size 4, --lr-gamma 0.1)"), for messages.
    var summary: String {
        switch self {
        case .constant:
            return LearningRateSchedule.Kind.constant.rawValue
        case .stepDecay(let stepSize, let gamma):
            return "step (\(Settings["lrStepSize"].flag) \(stepSize), \(Settings["lrGamma"].flag) \(gamma))"
        case .cosine(let warmup, let total, let minimum):
            return "cosine (\(Settings["warmupSteps"].flag) \(warmup), \(Settings["minLr"].flag) \(minimum), over \(total) steps)"
        case .plateau(let factor, let patience, let minimum):
            return "plateau (\(Settings["plateauFactor"].flag) \(factor), \(Settings["plateauPatience"].flag) \(patience), \(Settings["minLr"].flag) \(minimum))"
        }
    }
}

/// A wall-clock interval such as "90s", "10m", "1h" or plain seconds. Any
/// number parses; `validate` refuses one that is not a positive duration, by flag.
struct WallInterval: ExpressibleByArgument {
    let seconds: Double
    /// As given.
    let text: String

    init?(argument: String) {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
        var number = argument.trimmingCharacters(in: .whitespaces)
        var unit = 1.0
        if let last = number.last, let factor = units[last] {
            unit = factor
            number.removeLast()
        }
        guard let value = Double(number) else { return nil }
        (seconds, text) = (value * unit, argument)
    }

    /// Whether it is a duration a policy can wait: finite and positive.
    var isDuration: Bool { seconds.isFinite && seconds > 0 }
}
