/// How the summed gradient is turned into the step direction.
public enum Reduction: String, CaseIterable, Sendable, Codable {
    /// Step along (1/B) Σ_n ∂E^n/∂w, as PyTorch and Keras do by default.
    case mean
    /// Step along Σ_n ∂E^n/∂w itself.
    case sum
}

/// DP-SGD (Abadi et al. 2016): each ∂E^n/∂w clipped to norm ≤ C, then
/// N(0, σ²C²) added to each element of their sum, per step.
public struct DifferentialPrivacy: Sendable, Equatable, Codable {
    /// C, the clipping bound on each per-sample gradient's L2 norm.
    public var clip: Double
    /// σ, the noise multiplier: the noise's standard deviation is σC.
    public var noise: Double
    /// δ of the (ε, δ) guarantee reported.
    public var delta: Double

    public init(clip: Double, noise: Double, delta: Double) {
        self.clip = clip
        self.noise = noise
        self.delta = delta
    }
}

/// Everything that defines a training run; saved in checkpoints so that a run
/// can be reproduced and resumed.
public struct TrainingConfiguration: Sendable, Equatable, Codable {
    /// Layer widths from input to output.
    public var sizes: [Int] = [784, 256, 128, 10]
    public var hiddenActivation: Activation = .relu
    /// nil: the loss's default (softmax for cross-entropy, identity for sum-of-squares).
    public var outputActivation: Activation? = nil
    public var loss: Loss = .crossEntropy
    public var initialization: Initialization = .pytorch
    public var optimizer = OptimizerSettings(kind: .momentum, momentum: 0.9)
    /// The learning rate of every step: its base rate η and its shape.
    public var schedule = LearningRateSchedule(base: 0.05)
    public var batchSize = 256
    public var epochs = 10
    /// Stop after this many optimizer steps in all (nil: run all epochs).
    public var steps: Int? = nil
    public var shuffle = true
    /// Shuffle blocks of rows, then samples within windows of blocks, so that
    /// the data can be streamed (`BlockShuffle`); off by default.
    public var blockShuffle = BlockShuffle()
    public var workers = 1
    public var seed: UInt64 = 0
    public var reduction: Reduction = .mean
    /// Samples per shard: fixes the order of additions, so results do not
    /// depend on `workers`.
    public var shardSize = 128
    /// nil: shuffle (checkpoints before 0.5 have none).
    public var sampling: Sampling? = nil
    /// DP-SGD's clipping and noise; nil: plain training.
    public var privacy: DifferentialPrivacy? = nil
    /// ε of label smoothing for cross-entropy: targets (1 − ε) t + ε/K (`Loss.smoothTargets`); 0: none.
    public var labelSmoothing = 0.0
    /// Inverted dropout on the inputs and hidden layers (Dropout.swift); none by default.
    public var dropout = Dropout()
    /// Translations and mirrors of image samples in training; none by default.
    public var augmentation = Augmentation()
    /// The share of the training set held out as the validation split
    /// (`Dataset.split(validationFraction:seed:)`, keyed by `seed`); 0: none held out.
    public var validationFraction = 0.0
    /// What chooses best.h5 and early stopping's epoch, and the least change that counts as an improvement.
    public var monitor = Monitor.validationScore
    public var minDelta = 0.0
    /// nil: the run trains all its epochs.
    public var earlyStopping: EarlyStopping? = nil
    /// C of global gradient-norm clipping: each step's gradient g becomes
    /// g · min(1, C/‖g‖) before the update (`GradientNormClip`); nil: none.
    public var clipNorm: Double? = nil
    /// d of an exponential moving average of the parameters, evaluated and
    /// saved instead of them (`WeightAverage`); nil: none.
    public var ema: Double? = nil
    /// The epoch (from 1) whose end is the first averaged uniformly into the
    /// parameters that are evaluated and saved (SWA, `WeightAverage`); nil: none.
    public var swaStart: Int? = nil
    /// α of distillation from a teacher's probabilities (`Distillation`,
    /// the dataset's `teacher`); nil: the labels alone.
    public var distillAlpha: Double? = nil
    /// T of distillation; nil: 1.
    public var temperature: Double? = nil

    /// Distillation as the step computes it; nil without `distillAlpha`.
    public var distillation: Distillation? {
        distillAlpha.map { Distillation(weight: $0, temperature: temperature ?? 1) }
    }

    /// The settings declared once (`DeclaredSetting`): a new setting is its
    /// property above, a line here, and its option on the command line.
    public static let fields: [any DeclaredSetting] = [
        OptionalSetting("steps", \.steps, words: "steps", domain: .atLeast(1), rule: .overridable, section: "Length and learning rate",
                        summary: "Stop after this many optimizer steps in all."),
        OptionalSetting("clipNorm", \.clipNorm, words: "gradient-norm clip", domain: .positive, section: "Optimizer",
                        summary: "Clip each step's gradient to this global L2 norm C: g ← g · min(1, C/‖g‖) before the update (Keras' clipnorm)."),
        OptionalSetting("ema", \.ema, words: "EMA decay", domain: .openUnit, section: "Regularisation",
                        summary: "Keep an exponential moving average of the parameters, θ̄ ← d·θ̄ + (1 − d)·θ after every step, and evaluate, choose and save it instead of them (timm's ModelEmaV2, Keras' use_ema)."),
        OptionalSetting("swaStart", \.swaStart, words: "SWA start epoch", domain: .atLeast(1), section: "Regularisation",
                        summary: "Average the parameters uniformly over the ends of the epochs from this one (counted from 1) on, and evaluate, choose and save the average (torch.optim.swa_utils)."),
        OptionalSetting("distillAlpha", \.distillAlpha, words: "distillation weight α", domain: .probability, section: "Distillation",
                        summary: "Distil: train on a teacher's class probabilities q (--teacher) as well as the labels, E = α·T²·KL(q_T ‖ softmax(a/T)) + (1 − α)·CE(t, y) (Hinton et al. 2015)."),
        OptionalSetting("temperature", \.temperature, words: "distillation temperature", domain: .positive, section: "Distillation",
                        summary: "T of distillation: the teacher's and the student's probabilities are both softened to softmax(z/T); 1 when not given."),
    ]

    /// How the steps pick their samples.
    public var samplingMethod: Sampling { sampling ?? .shuffle }

    public init() {}

    /// The most worker threads a run may ask for (each has its own scratch).
    public static var workerLimit: Int { 4096 }

    /// The domain of each numeric setting that is not declared in `fields`
    /// (those carry their own): what `validate()` checks first, and what an
    /// error says a value outside it is not. The command line reads its
    /// messages for these flags from here too.
    public static let domains: [TrainingError.Setting: SettingDomain] = [
        .batchSize: .atLeast(1), .epochs: .atLeast(0), .workers: .wholeRange(1, workerLimit), .shardSize: .atLeast(1),
        .learningRate: .nonNegative, .momentum: .fraction, .weightDecay: .nonNegative, .rmspropAlpha: .fraction,
        .learningRateDecay: .nonNegative, .initialAccumulator: .nonNegative, .beta1: .fraction, .beta2: .fraction, .epsilon: .positive,
        .scheduleStepSize: .atLeast(1), .scheduleGamma: .positive, .warmupSteps: .atLeast(0), .minimumLearningRate: .nonNegative,
        .plateauFactor: .openUnit, .plateauPatience: .atLeast(1),
        .labelSmoothing: .fraction, .dropout: .fraction, .inputDropout: .fraction, .validationFraction: .fraction,
        .blockRows: .wholeRange(0, Int(Int32.max)), .shuffleWindow: .wholeRange(1, Int(Int32.max)),
        .minDelta: .nonNegative, .patience: .atLeast(1), .clip: .positive, .noise: .nonNegative, .delta: .openUnit,
    ]

    /// The domain of `setting`: declared with it, or in `domains`.
    public static func domain(of setting: TrainingError.Setting) -> SettingDomain? {
        if case .declared(let name) = setting { return field(named: name)?.domain }
        return domains[setting]
    }

    /// Checks ranges a network cannot check itself: first every value against
    /// its setting's domain, then the settings that must go together.
    /// - Throws: `TrainingError.outOfDomain` or `.invalidSetting`, naming the setting.
    public func validate() throws(TrainingError) {
        try validateDeclared()
        func inDomain(_ setting: TrainingError.Setting, _ values: [some CustomStringConvertible & Sendable]) throws(TrainingError) {
            let domain = Self.domains[setting]!
            if let value = values.first(where: { !domain.contains($0) }) {
                throw .outOfDomain(setting, value: value.description, domain: domain)
            }
        }
        try inDomain(.batchSize, [batchSize])
        try inDomain(.epochs, [epochs])
        try inDomain(.workers, [workers])
        try inDomain(.shardSize, [shardSize])
        try inDomain(.learningRate, [schedule.base])
        try inDomain(.momentum, [optimizer.momentum])
        try inDomain(.weightDecay, [optimizer.weightDecay])
        try inDomain(.rmspropAlpha, [optimizer.smoothing])
        try inDomain(.learningRateDecay, [optimizer.decay])
        try inDomain(.initialAccumulator, [optimizer.accumulatorStart])
        try inDomain(.beta1, [optimizer.beta1])
        try inDomain(.beta2, [optimizer.beta2])
        try inDomain(.epsilon, [optimizer.epsilon])
        try inDomain(.labelSmoothing, [labelSmoothing])
        try inDomain(.inputDropout, [dropout.input])
        try inDomain(.dropout, dropout.hidden)
        try inDomain(.validationFraction, [validationFraction])
        try inDomain(.blockRows, [blockShuffle.rows])
        try inDomain(.shuffleWindow, [blockShuffle.window])
        try inDomain(.minDelta, [minDelta])
        if let earlyStopping { try inDomain(.patience, [earlyStopping.patience]) }
        if let privacy {
            try inDomain(.clip, [privacy.clip])
            try inDomain(.noise, [privacy.noise])
            try inDomain(.delta, [privacy.delta])
        }
        let rate = schedule.base
        switch schedule.shape {
        case .constant: break
        case .stepDecay(let stepSize, let gamma):
            try inDomain(.scheduleStepSize, [stepSize])
            try inDomain(.scheduleGamma, [gamma])
        case .cosine(let warmup, let total, let minimum):
            try inDomain(.warmupSteps, [warmup])
            try inDomain(.minimumLearningRate, [minimum])
            try require(total > warmup, .scheduleLength, total, "it must exceed the warm-up steps (\(warmup))")
            try require(minimum <= rate, .minimumLearningRate, minimum, "it must not exceed the base learning rate \(rate) (the cosine would anneal upwards)")
        case .plateau(let factor, let patience, let minimum):
            try inDomain(.plateauFactor, [factor])
            try inDomain(.plateauPatience, [patience])
            try inDomain(.minimumLearningRate, [minimum])
            // A floor above η would train at the floor from the first step (Keras clamps; we refuse).
            try require(minimum <= rate, .minimumLearningRate, minimum, "it must not exceed the base learning rate \(rate) (a floor above it would raise η)")
        }
        try require(labelSmoothing == 0 || loss == .crossEntropy, .labelSmoothing, labelSmoothing,
                    "label smoothing applies to cross-entropy, not \(loss.rawValue)")
        let hiddenLayers = max(sizes.count - 2, 0)
        let rates = dropout.hidden.map { "\($0)" }.joined(separator: ",")
        try require(dropout.hidden.count <= 1 || dropout.hidden.count == hiddenLayers, .dropout, rates,
                    "give one rate for all hidden layers, or one per hidden layer (\(hiddenLayers))")
        try require(!dropout.hidden.contains { $0 > 0 } || hiddenLayers > 0, .dropout, rates, "the network has no hidden layer")
        try require(!dropout.hidden.contains { $0 > 0 } || Dropout.allows(hiddenActivation), .dropout, rates,
                    "hidden dropout needs relu, leaky-relu or identity hidden layers (h' is taken through the masked output), not \(hiddenActivation.rawValue)")
        try require(ema == nil || swaStart == nil, .declared("swaStart"), swaStart ?? 0,
                    "the EMA (--ema) already averages the parameters; give one of the two")
        try require(temperature == nil || distillAlpha != nil, .declared("temperature"), temperature ?? 1,
                    "the temperature softens distillation's probabilities; give the distillation weight too (distillAlpha)")
        try require(distillAlpha == nil || loss == .crossEntropy, .declared("distillAlpha"), distillAlpha ?? 0,
                    "distillation trains on class probabilities, which need cross-entropy, not \(loss.rawValue)")
        try require(augmentation.shift >= 0 && augmentation.shift <= 1 << 20, .augmentation, augmentation, "the shift must be 0 … 2^20 pixels")
        try require(!blockShuffle.isActive || shuffle, .blockRows, blockShuffle.rows,
                    "a block shuffle needs the shuffle on (without it the samples are visited in file order)")
        try require(!blockShuffle.isActive || samplingMethod == .shuffle, .blockRows, blockShuffle.rows,
                    "Poisson sampling draws each sample on its own; it has no blocks")
    }

    private func require(_ ok: Bool, _ setting: TrainingError.Setting, _ value: some CustomStringConvertible,
                         _ reason: String) throws(TrainingError) {
        if !ok { throw .invalidSetting(setting, value: value.description, reason: reason) }
    }

    /// Refuses a setting that cannot act in a run of `sampleCount` samples
    /// (as a plateau factor without a plateau schedule cannot): an SWA start
    /// after the run's last epoch ends, whose average would never begin. (A
    /// step schedule's step as long as a short run is not refused: its
    /// default is one epoch, which a one-epoch run or a sweep's first rung has.)
    /// - Throws: `TrainingError.invalidSetting` naming the setting.
    public func checkActs(sampleCount: Int) throws(TrainingError) {
        guard let swaStart else { return }
        let batches = Epochs.batches(of: sampleCount, in: max(batchSize, 1))
        // The epochs whose ends the run reaches: all of them, or those its steps complete.
        let ends = steps.map { $0 / max(batches, 1) } ?? epochs
        if swaStart > ends {
            throw .invalidSetting(.declared("swaStart"), value: "\(swaStart)",
                                  reason: "the run ends \(ends) epoch\(ends == 1 ? "" : "s") in, so the average would never begin")
        }
    }

    /// The optimizer steps the run plans in all, on `sampleCount` samples:
    /// `steps`, or `epochs` × batches per epoch.
    /// - Throws: `TrainingError.invalidSetting(.epochs, …)` when that product
    ///   is more steps than a run can count.
    public func plannedSteps(sampleCount: Int) throws(TrainingError) -> Int {
        if let steps { return steps }
        let batches = Epochs.batches(of: sampleCount, in: max(batchSize, 1))
        let (planned, overflow) = epochs.multipliedReportingOverflow(by: batches)
        guard !overflow else {
            throw .invalidSetting(.epochs, value: "\(epochs)",
                                  reason: "at \(batches) batches an epoch that is more steps than a run can count (at most \(Int.max))")
        }
        return planned
    }

    /// A network of this configuration's shape with zero parameters.
    /// - Throws: the network's `TrainingError`s.
    public func makeNetwork<T: NetworkScalar>(_: T.Type = Float.self) throws(TrainingError) -> Network<T> {
        try Network<T>(sizes: sizes, hiddenActivation: hiddenActivation,
                       outputActivation: outputActivation, loss: loss)
    }
}

// MARK: - Stored form

/// The configuration as checkpoints hold it (JSON in /training): the
/// properties by name. Checkpoints before 0.7 stored the base rate as the
/// optimizer's `learningRate` and the schedule's shape alone; they still read.
extension TrainingConfiguration {
    private enum CodingKeys: String, CodingKey {
        case sizes, hiddenActivation, outputActivation, loss, initialization, optimizer, schedule
        case batchSize, epochs, shuffle, workers, seed, reduction, shardSize, sampling, privacy, labelSmoothing, validationFraction
        case monitor, minDelta, earlyStopping, dropout, augmentation, blockShuffle
    }

    private enum LegacyOptimizerKeys: String, CodingKey { case learningRate }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sizes = try c.decode([Int].self, forKey: .sizes)
        hiddenActivation = try c.decode(Activation.self, forKey: .hiddenActivation)
        outputActivation = try c.decodeIfPresent(Activation.self, forKey: .outputActivation)
        loss = try c.decode(Loss.self, forKey: .loss)
        initialization = try c.decode(Initialization.self, forKey: .initialization)
        optimizer = try c.decode(OptimizerSettings.self, forKey: .optimizer)
        if let schedule = try? c.decode(LearningRateSchedule.self, forKey: .schedule) {
            self.schedule = schedule
        } else {
            let legacy = try c.nestedContainer(keyedBy: LegacyOptimizerKeys.self, forKey: .optimizer)
            schedule = LearningRateSchedule(base: try legacy.decode(Double.self, forKey: .learningRate),
                                            try c.decode(LearningRateSchedule.Shape.self, forKey: .schedule))
        }
        batchSize = try c.decode(Int.self, forKey: .batchSize)
        epochs = try c.decode(Int.self, forKey: .epochs)
        shuffle = try c.decode(Bool.self, forKey: .shuffle)
        workers = try c.decode(Int.self, forKey: .workers)
        seed = try c.decode(UInt64.self, forKey: .seed)
        reduction = try c.decode(Reduction.self, forKey: .reduction)
        shardSize = try c.decode(Int.self, forKey: .shardSize)
        sampling = try c.decodeIfPresent(Sampling.self, forKey: .sampling)
        privacy = try c.decodeIfPresent(DifferentialPrivacy.self, forKey: .privacy)
        // Checkpoints before 0.7 have none.
        labelSmoothing = try c.decodeIfPresent(Double.self, forKey: .labelSmoothing) ?? 0
        // Checkpoints before 0.8 have none.
        validationFraction = try c.decodeIfPresent(Double.self, forKey: .validationFraction) ?? 0
        monitor = try c.decodeIfPresent(Monitor.self, forKey: .monitor) ?? .validationScore
        minDelta = try c.decodeIfPresent(Double.self, forKey: .minDelta) ?? 0
        earlyStopping = try c.decodeIfPresent(EarlyStopping.self, forKey: .earlyStopping)
        // Checkpoints before 0.9 have neither.
        dropout = try c.decodeIfPresent(Dropout.self, forKey: .dropout) ?? Dropout()
        augmentation = try c.decodeIfPresent(Augmentation.self, forKey: .augmentation) ?? Augmentation()
        // Checkpoints before 0.10 have none.
        blockShuffle = try c.decodeIfPresent(BlockShuffle.self, forKey: .blockShuffle) ?? BlockShuffle()
        // The declared settings: each by its name, its default where a checkpoint predates it.
        let declared = try decoder.container(keyedBy: SettingKey.self)
        for field in Self.fields { try field.decode(from: declared, into: &self) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(sizes, forKey: .sizes)
        try c.encode(hiddenActivation, forKey: .hiddenActivation)
        try c.encodeIfPresent(outputActivation, forKey: .outputActivation)
        try c.encode(loss, forKey: .loss)
        try c.encode(initialization, forKey: .initialization)
        try c.encode(optimizer, forKey: .optimizer)
        try c.encode(schedule, forKey: .schedule)
        try c.encode(batchSize, forKey: .batchSize)
        try c.encode(epochs, forKey: .epochs)
        try c.encode(shuffle, forKey: .shuffle)
        try c.encode(workers, forKey: .workers)
        try c.encode(seed, forKey: .seed)
        try c.encode(reduction, forKey: .reduction)
        try c.encode(shardSize, forKey: .shardSize)
        try c.encodeIfPresent(sampling, forKey: .sampling)
        try c.encodeIfPresent(privacy, forKey: .privacy)
        try c.encode(labelSmoothing, forKey: .labelSmoothing)
        try c.encode(validationFraction, forKey: .validationFraction)
        try c.encode(monitor, forKey: .monitor)
        try c.encode(minDelta, forKey: .minDelta)
        try c.encodeIfPresent(earlyStopping, forKey: .earlyStopping)
        try c.encode(dropout, forKey: .dropout)
        try c.encode(augmentation, forKey: .augmentation)
        try c.encode(blockShuffle, forKey: .blockShuffle)
        var declared = encoder.container(keyedBy: SettingKey.self)
        for field in Self.fields { try field.encode(self, to: &declared) }
    }
}
