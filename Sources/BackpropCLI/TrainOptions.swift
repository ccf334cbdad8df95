import ArgumentParser
import BackpropCore
import Foundation

// The option groups of `backprop train` alone; see Options.swift for the
// shared ones and how a group edits a configuration.

// MARK: - Samples

/// Which samples each step sees, and how their gradients are combined.
struct SamplingOptions: ConfigurationOptions {
    @Flag(inversion: .prefixedNo, help: "Visit the samples in a seeded shuffle each epoch, or in file order. (default: --\(fresh.shuffle ? "" : "no-")shuffle)")
    var shuffle: Bool?
    @Option(help: "Seed for initialisation, shuffling and DP-SGD's noise. (default: \(fresh.seed))")
    var seed: UInt64?
    @Option(help: "mean: step along the batch-mean gradient; sum: along the summed gradient. (default: \(fresh.reduction.rawValue))")
    var reduction: Reduction?
    @Option(help: "How steps pick samples: shuffle (batches of an epoch's shuffle) or poisson (each sample with probability batch/N). (default: poisson with DP-SGD, else \(fresh.samplingMethod.rawValue))")
    var sampling: Sampling?

    func edits(into edits: inout SettingEdits) {
        edits.add("--shuffle", shuffle, .fixed) { $0.shuffle = $1 }
        edits.add("--seed", seed, .fixed) { $0.seed = $1 }
        edits.add("--reduction", reduction, .fixed) { $0.reduction = $1 }
        edits.add("--sampling", sampling, .fixed) { $0.sampling = $1 }
    }
}

// MARK: - DP-SGD

/// DP-SGD: per-sample clipping, noise, and the (ε, δ) reported.
struct PrivacyOptions: ConfigurationOptions {
    @Option(help: "DP-SGD: clip each per-sample gradient to this L2 norm C (turns DP-SGD on).")
    var dpClip: Double?
    @Option(help: "DP-SGD: the noise multiplier σ (noise N(0, σ²C²) on each summed gradient element).")
    var dpNoise: Double?
    @Option(help: "DP-SGD: pick σ so that the planned steps spend this ε (instead of --dp-noise).")
    var dpEpsilon: Double?
    @Option(help: "DP-SGD: the δ of the (ε, δ) reported. (default: 1/N rounded down to a power of ten)")
    var dpDelta: Double?

    func validate() throws {
        if dpClip == nil, let flag = [("--dp-noise", dpNoise), ("--dp-epsilon", dpEpsilon), ("--dp-delta", dpDelta)].first(where: { $0.1 != nil })?.0 {
            throw ValidationError("\(flag) needs --dp-clip (the clipping bound C turns DP-SGD on).")
        }
        if dpNoise != nil && dpEpsilon != nil { throw ValidationError("--dp-noise and --dp-epsilon both set σ; give one.") }
        if let dpEpsilon, !(dpEpsilon.isFinite && dpEpsilon > 0) {
            throw ValidationError("--dp-epsilon \(dpEpsilon) is invalid: it must be a finite number > 0.")
        }
    }

    func edits(into edits: inout SettingEdits) {
        // NaN marks what `resolve` fills in (σ from --dp-epsilon, the default δ).
        edits.add("--dp-clip", dpClip, .fixed) { c, clip in
            c.privacy = DifferentialPrivacy(clip: clip, noise: c.privacy?.noise ?? .nan, delta: c.privacy?.delta ?? .nan)
        }
        edits.add("--dp-noise", dpNoise, .fixed) { $0.privacy?.noise = $1 }
        edits.add("--dp-delta", dpDelta, .fixed) { $0.privacy?.delta = $1 }
    }

    /// `configuration`'s privacy with δ and σ filled in for a run on
    /// `sampleCount` samples: δ is 1/N rounded down to a power of ten; σ as
    /// given, or the smallest that spends --dp-epsilon over the planned steps.
    func resolve(_ configuration: inout TrainingConfiguration, sampleCount: Int) throws {
        guard var privacy = configuration.privacy else { return }
        if privacy.delta.isNaN { privacy.delta = pow(10, (log10(1 / Double(max(sampleCount, 2)))).rounded(.down)) }
        if let dpEpsilon {
            let q = Double(min(configuration.batchSize, sampleCount)) / Double(sampleCount)
            let steps = configuration.steps ?? configuration.epochs * Epochs.batches(of: sampleCount, in: configuration.batchSize)
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
    @Option(help: "Learning rate η (the schedule's base rate). (default: \(fresh.optimizer.learningRate.shown))")
    var learningRate: Double?
    @Option(help: "Learning-rate schedule. (default: \(ScheduleKind(fresh.schedule).rawValue))")
    var lrSchedule: ScheduleKind?
    @Option(help: "step: multiply η by --lr-gamma every this many steps. (default: one epoch)")
    var lrStepSize: Int?
    @Option(help: "step: the decay factor γ. (default: \(LearningRateSchedule.defaultGamma.shown))")
    var lrGamma: Double?
    @Option(help: "cosine: steps of linear warm-up from 0 to η. (default: 0)")
    var warmupSteps: Int?
    @Option(help: "cosine: the rate η_min reached at the last step. (default: 0)")
    var minLr: Double?
    @Option(help: "Epochs to train in all (0 writes the freshly initialised model). (default: \(fresh.epochs))")
    var epochs: Int?
    @Option(help: "Stop after this many optimizer steps in all.")
    var steps: Int?

    func validate() throws {
        if epochs == 0, let steps {
            throw ValidationError("--steps \(steps) cannot be reached with --epochs 0; drop one of them.")
        }
    }

    func edits(into edits: inout SettingEdits) {
        edits.add("--learning-rate", learningRate, .overridable) { $0.optimizer.learningRate = $1 }
        edits.add("--epochs", epochs, .overridable) { $0.epochs = $1 }
        edits.add("--steps", steps, .overridable) { $0.steps = $1 }
    }

    /// Whether any --lr-* flag was given.
    var givesSchedule: Bool { lrSchedule != nil || lrStepSize != nil || lrGamma != nil || warmupSteps != nil || minLr != nil }

    /// Refuses --lr-* flags that the schedule `kind` does not take.
    func checkFlags(of kind: ScheduleKind) throws {
        switch kind {
        case .constant:
            for (flag, value) in [("--lr-step-size", lrStepSize as Any?), ("--lr-gamma", lrGamma), ("--warmup-steps", warmupSteps), ("--min-lr", minLr)]
            where value != nil {
                throw ValidationError("\(flag) needs --lr-schedule step or cosine.")
            }
        case .step:
            if warmupSteps != nil || minLr != nil { throw ValidationError("--warmup-steps and --min-lr need --lr-schedule cosine.") }
        case .cosine:
            if lrStepSize != nil || lrGamma != nil { throw ValidationError("--lr-step-size and --lr-gamma need --lr-schedule step.") }
        }
    }

    /// The schedule the --lr-* flags describe, starting from `configuration`'s,
    /// for a run of `batchesPerEpoch` steps an epoch.
    func schedule(of configuration: TrainingConfiguration, batchesPerEpoch: Int) throws -> LearningRateSchedule {
        let current = configuration.schedule
        let kind = lrSchedule ?? ScheduleKind(current)
        try checkFlags(of: kind)
        switch kind {
        case .constant:
            return .constant
        case .step:
            var (stepSize, gamma) = (batchesPerEpoch, LearningRateSchedule.defaultGamma)
            if case .stepDecay(let s, let g) = current { (stepSize, gamma) = (s, g) }
            return .stepDecay(stepSize: lrStepSize ?? stepSize, gamma: lrGamma ?? gamma)
        case .cosine:
            var (warmup, minimum) = (0, 0.0)
            if case .cosine(let w, _, let m) = current { (warmup, minimum) = (w, m) }
            // The cosine reaches η_min at the run's last step.
            let total = configuration.steps ?? configuration.epochs * batchesPerEpoch
            return .cosine(warmupSteps: warmupSteps ?? warmup, totalSteps: total, minimum: minLr ?? minimum)
        }
    }
}

/// The learning-rate schedules by name, for --lr-schedule.
enum ScheduleKind: String, CaseIterable, ExpressibleByArgument {
    case constant, step, cosine

    init(_ schedule: LearningRateSchedule) {
        switch schedule {
        case .constant: self = .constant
        case .stepDecay: self = .step
        case .cosine: self = .cosine
        }
    }
}
