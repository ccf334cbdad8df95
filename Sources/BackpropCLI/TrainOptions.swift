import ArgumentParser
import BackpropCore
import Foundation

// The option groups of `backprop train` alone; see Options.swift for the
// shared ones and how a group edits a configuration.

// MARK: - Samples

/// Which samples each step sees, and how their gradients are combined.
struct SamplingOptions: ConfigurationOptions {
    @Flag(name: Settings.shuffle.name, inversion: .prefixedNo, help: Settings.shuffle.help)
    var shuffle: Bool?
    @Option(name: Settings.shuffleBlocks.name, help: Settings.shuffleBlocks.help)
    var shuffleBlocks: Int?
    @Option(name: Settings.shuffleWindow.name, help: Settings.shuffleWindow.help)
    var shuffleWindow: Int?
    @Option(name: Settings.seed.name, help: Settings.seed.help)
    var seed: UInt64?
    @Option(name: Settings.reduction.name, help: Settings.reduction.help)
    var reduction: Reduction?
    @Option(name: Settings.sampling.name, help: Settings.sampling.help)
    var sampling: Sampling?

    func edits(into edits: inout SettingEdits) {
        edits.add(Settings.shuffle, shuffle) { $0.shuffle = $1 }
        edits.add(Settings.shuffleBlocks, shuffleBlocks) { $0.blockShuffle.rows = $1 }
        edits.add(Settings.shuffleWindow, shuffleWindow) { $0.blockShuffle.window = $1 }
        edits.add(Settings.seed, seed) { $0.seed = $1 }
        edits.add(Settings.reduction, reduction) { $0.reduction = $1 }
        edits.add(Settings.sampling, sampling) { $0.sampling = $1 }
    }
}

// MARK: - DP-SGD

/// DP-SGD: per-sample clipping, noise, and the (ε, δ) reported.
struct PrivacyOptions: ConfigurationOptions {
    @Option(name: Settings.dpClip.name, help: Settings.dpClip.help)
    var dpClip: Double?
    @Option(name: Settings.dpNoise.name, help: Settings.dpNoise.help)
    var dpNoise: Double?
    @Option(name: Settings.dpEpsilon.name, help: Settings.dpEpsilon.help)
    var dpEpsilon: Double?
    @Option(name: Settings.dpDelta.name, help: Settings.dpDelta.help)
    var dpDelta: Double?

    func validate() throws {
        try refuseOutOfDomain(in: self)
        if dpNoise != nil && dpEpsilon != nil { throw ValidationError("--dp-noise and --dp-epsilon both set σ; give one.") }
        if let dpEpsilon { try requireDomain(Settings.dpEpsilon.flag, dpEpsilon, .positive) }
    }

    /// The DP-SGD flags given, with their values, in the order of the help.
    var given: [(flag: String, value: Double)] {
        [(Settings.dpClip, dpClip), (Settings.dpNoise, dpNoise), (Settings.dpEpsilon, dpEpsilon), (Settings.dpDelta, dpDelta)]
            .compactMap { setting, value in value.map { (setting.flag, $0) } }
    }

    /// Refuses a flag that sets a part of DP-SGD for a run without it: DP-SGD
    /// is on when --dp-clip is given, or in `base`, the run resumed from `resumed`.
    func checkNeedsClip(base: TrainingConfiguration, resumed: String?) throws {
        guard dpClip == nil, base.privacy == nil, let (flag, value) = given.first else { return }
        if let resumed {
            throw ValidationError("\(flag) \(value): the run saved in \(resumed) was trained without DP-SGD (no \(Settings.dpClip.flag)), "
                                  + "and a resume cannot turn it on (start a new run instead).")
        }
        throw ValidationError("\(flag) needs \(Settings.dpClip.flag) (the clipping bound C turns DP-SGD on).")
    }

    func edits(into edits: inout SettingEdits) {
        // NaN marks what `resolve` fills in (σ from --dp-epsilon, the default δ).
        edits.add(Settings.dpClip, dpClip) { c, clip in
            c.privacy = DifferentialPrivacy(clip: clip, noise: c.privacy?.noise ?? .nan, delta: c.privacy?.delta ?? .nan)
        }
        edits.add(Settings.dpNoise, dpNoise) { $0.privacy?.noise = $1 }
        edits.add(Settings.dpDelta, dpDelta) { $0.privacy?.delta = $1 }
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

// MARK: - Length and learning rate

/// How long and how fast: the epochs or steps and the learning-rate schedule.
/// These may change on resume with --override.
struct ScheduleOptions: ConfigurationOptions {
    @Option(name: Settings.learningRate.name, help: Settings.learningRate.help)
    var learningRate: Double?
    @Option(name: Settings.lrSchedule.name, help: Settings.lrSchedule.help)
    var lrSchedule: ScheduleKind?
    @Option(name: Settings.lrStepSize.name, help: Settings.lrStepSize.help)
    var lrStepSize: Int?
    @Option(name: Settings.lrGamma.name, help: Settings.lrGamma.help)
    var lrGamma: Double?
    @Option(name: Settings.warmupSteps.name, help: Settings.warmupSteps.help)
    var warmupSteps: Int?
    @Option(name: Settings.minLr.name, help: Settings.minLr.help)
    var minLr: Double?
    @Option(name: Settings.plateauFactor.name, help: Settings.plateauFactor.help)
    var plateauFactor: Double?
    @Option(name: Settings.plateauPatience.name, help: Settings.plateauPatience.help)
    var plateauPatience: Int?
    @Option(name: Settings.epochs.name, help: Settings.epochs.help)
    var epochs: Int?
    @Option(name: Settings[\.steps].name, help: Settings[\.steps].help)
    var steps: Int?

    func validate() throws {
        try refuseOutOfDomain(in: self)
        if epochs == 0, let steps {
            throw ValidationError("--steps \(steps) cannot be reached with --epochs 0; drop one of them.")
        }
    }

    func edits(into edits: inout SettingEdits) {
        edits.add(Settings.learningRate, learningRate) { $0.schedule.base = $1 }
        edits.add(Settings.epochs, epochs) { $0.epochs = $1 }
    }

    /// Whether any --lr-* flag was given.
    var givesSchedule: Bool {
        lrSchedule != nil || lrStepSize != nil || lrGamma != nil || warmupSteps != nil || minLr != nil || plateauFactor != nil
            || plateauPatience != nil
    }

    /// The --lr-* flags given, in the order of the help.
    var givenScheduleFlags: [String] {
        [(Settings.lrSchedule, lrSchedule as Any?), (Settings.lrStepSize, lrStepSize), (Settings.lrGamma, lrGamma), (Settings.warmupSteps, warmupSteps),
         (Settings.minLr, minLr), (Settings.plateauFactor, plateauFactor), (Settings.plateauPatience, plateauPatience)]
            .compactMap { setting, value in value.map { _ in setting.flag } }
    }

    /// Refuses --lr-* flags that the schedule `kind` does not take: the one
    /// given, or that of the run resumed from `resumed`.
    func checkFlags(of kind: ScheduleKind, resumed: String? = nil) throws {
        // Each flag and the schedules that take it.
        let flags: [(Setting, Any?, [ScheduleKind])] = [
            (Settings.lrStepSize, lrStepSize, [.step]), (Settings.lrGamma, lrGamma, [.step]),
            (Settings.warmupSteps, warmupSteps, [.cosine]), (Settings.minLr, minLr, [.cosine, .plateau]),
            (Settings.plateauFactor, plateauFactor, [.plateau]), (Settings.plateauPatience, plateauPatience, [.plateau]),
        ]
        for (setting, value, kinds) in flags where value != nil && !kinds.contains(kind) {
            let needed = "\(Settings.lrSchedule.flag) \(kinds.map(\.rawValue).joined(separator: " or "))"
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
        let kind = lrSchedule ?? ScheduleKind(current)
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

/// The learning-rate schedules by name, for --lr-schedule.
enum ScheduleKind: String, CaseIterable, ExpressibleByArgument {
    case constant, step, cosine, plateau

    init(_ shape: LearningRateSchedule.Shape) {
        switch shape {
        case .constant: self = .constant
        case .stepDecay: self = .step
        case .cosine: self = .cosine
        case .plateau: self = .plateau
        }
    }
}

extension LearningRateSchedule.Shape {
    /// The shape as its flags would give it ("step (--lr-step-size 4, --lr-gamma 0.1)"), for messages.
    var summary: String {
        switch self {
        case .constant:
            return ScheduleKind.constant.rawValue
        case .stepDecay(let stepSize, let gamma):
            return "step (\(Settings.lrStepSize.flag) \(stepSize), \(Settings.lrGamma.flag) \(gamma))"
        case .cosine(let warmup, let total, let minimum):
            return "cosine (\(Settings.warmupSteps.flag) \(warmup), \(Settings.minLr.flag) \(minimum), over \(total) steps)"
        case .plateau(let factor, let patience, let minimum):
            return "plateau (\(Settings.plateauFactor.flag) \(factor), \(Settings.plateauPatience.flag) \(patience), \(Settings.minLr.flag) \(minimum))"
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
