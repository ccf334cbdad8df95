/// The checks of a configuration, and the settings that are views of its
/// stored parts (the schedule's shape, DP-SGD, early stopping), as
/// `TrainingConfiguration.settings` declares them.
extension TrainingConfiguration {
    public typealias Setting = TrainingError.Setting

    /// Distillation as the step computes it; nil without `distillAlpha`.
    public var distillation: Distillation? {
        distillAlpha.map { Distillation(weight: $0, temperature: temperature ?? 1) }
    }

    /// How the steps pick their samples.
    public var samplingMethod: Sampling { sampling ?? .shuffle }

    /// The most worker threads a run may ask for (each has its own scratch).
    public static var workerLimit: Int { 4096 }

    /// Checks ranges a network cannot check itself: first every value against
    /// its setting's domain, then the settings that must go together.
    /// - Throws: `TrainingError.outOfDomain` or `.invalidSetting`, naming the setting.
    public func validate() throws(TrainingError) {
        for setting in Self.settings {
            if let value = setting.outsideDomain(in: self) { throw .outOfDomain(Setting(setting.name), value: value, domain: setting.domain) }
        }
        let rate = schedule.base
        switch schedule.shape {
        case .constant, .stepDecay: break
        case .cosine(let warmup, let total, let minimum):
            try require(total > warmup, Setting("scheduleLength", words: "the cosine schedule's length in steps (epochs × batches per epoch, or the steps)"),
                        total, "it must exceed the warm-up steps (\(warmup))")
            try require(minimum <= rate, "minLr", minimum, "it must not exceed the base learning rate \(rate) (the cosine would anneal upwards)")
        case .plateau(_, _, let minimum):
            // A floor above η would train at the floor from the first step (Keras clamps; we refuse).
            try require(minimum <= rate, "minLr", minimum, "it must not exceed the base learning rate \(rate) (a floor above it would raise η)")
        }
        try require(labelSmoothing == 0 || loss == .crossEntropy, "labelSmoothing", labelSmoothing,
                    "label smoothing applies to cross-entropy, not \(loss.rawValue)")
        try require(classWeights == nil || loss == .crossEntropy, "classWeights", Self.text(of: classWeights ?? []),
                    "class weights weigh cross-entropy, not \(loss.rawValue)")
        try require(classWeights.map { $0.count == sizes.last } ?? true, "classWeights", Self.text(of: classWeights ?? []),
                    "give one weight per class (\(sizes.last ?? 0), the last layer's width)")
        try require(classWeights.map { $0.contains { $0 > 0 } } ?? true, "classWeights", Self.text(of: classWeights ?? []),
                    "at least one class must weigh more than 0 (else nothing is learned)")
        try require(classWeights == nil || distillAlpha == nil, "classWeights", Self.text(of: classWeights ?? []),
                    "distillation's soft term has no class; give class weights or distillation, not both")
        let hiddenLayers = max(sizes.count - 2, 0)
        let rates = dropout.hidden.map { "\($0)" }.joined(separator: ",")
        try require(dropout.hidden.count <= 1 || dropout.hidden.count == hiddenLayers, "dropout", rates,
                    "give one rate for all hidden layers, or one per hidden layer (\(hiddenLayers))")
        try require(!dropout.hidden.contains { $0 > 0 } || hiddenLayers > 0, "dropout", rates, "the network has no hidden layer")
        try require(!dropout.hidden.contains { $0 > 0 } || Dropout.allows(hiddenActivation), "dropout", rates,
                    "hidden dropout needs relu, leaky-relu or identity hidden layers (h' is taken through the masked output), not \(hiddenActivation.rawValue)")
        try require(ema == nil || swaStart == nil, "swaStart", swaStart ?? 0,
                    "the EMA (--ema) already averages the parameters; give one of the two")
        try require(temperature == nil || distillAlpha != nil, "temperature", temperature ?? 1,
                    "the temperature softens distillation's probabilities; give the distillation weight too (distillAlpha)")
        try require(distillAlpha == nil || loss == .crossEntropy, "distillAlpha", distillAlpha ?? 0,
                    "distillation trains on class probabilities, which need cross-entropy, not \(loss.rawValue)")
        try require(augmentation.shift >= 0 && augmentation.shift <= 1 << 20, "augment", augmentation, "the shift must be 0 … 2^20 pixels")
        try require(!blockShuffle.isActive || shuffle, "shuffleBlocks", blockShuffle.rows,
                    "a block shuffle needs the shuffle on (without it the samples are visited in file order)")
        try require(!blockShuffle.isActive || samplingMethod == .shuffle, "shuffleBlocks", blockShuffle.rows,
                    "Poisson sampling draws each sample on its own; it has no blocks")
    }

    private func require(_ ok: Bool, _ setting: Setting, _ value: some CustomStringConvertible,
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
            throw .invalidSetting("swaStart", value: "\(swaStart)",
                                  reason: "the run ends \(ends) epoch\(ends == 1 ? "" : "s") in, so the average would never begin")
        }
    }

    /// The optimizer steps the run plans in all, on `sampleCount` samples:
    /// `steps`, or `epochs` × batches per epoch.
    /// - Throws: `TrainingError.invalidSetting("epochs", …)` when that product
    ///   is more steps than a run can count.
    public func plannedSteps(sampleCount: Int) throws(TrainingError) -> Int {
        if let steps { return steps }
        let batches = Epochs.batches(of: sampleCount, in: max(batchSize, 1))
        let (planned, overflow) = epochs.multipliedReportingOverflow(by: batches)
        guard !overflow else {
            throw .invalidSetting("epochs", value: "\(epochs)",
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

