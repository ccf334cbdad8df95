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
        // The settings stored by their names (`Declared.storedKey`), each left at its default where a checkpoint predates it.
        let named = try decoder.container(keyedBy: SettingKey.self)
        for setting in Self.settings {
            guard let key = setting.storedKey.map(SettingKey.init(stringValue:)), let type = setting.valueType as? any Decodable.Type else { continue }
            func decode<Value: Decodable>(_: Value.Type) throws -> Value? { try named.decodeIfPresent(Value.self, forKey: key) }
            if let value = try decode(type) { setting.set(value, in: &self) }
        }
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
        var named = encoder.container(keyedBy: SettingKey.self)
        for setting in Self.settings {
            guard let key = setting.storedKey.map(SettingKey.init(stringValue:)), let value = setting.value(in: self) as? any Encodable else { continue }
            try named.encode(value, forKey: key)
        }
    }
}

/// A checkpoint key that is a setting's name (`Declared.storedKey`).
public struct SettingKey: CodingKey {
    public let stringValue: String
    public var intValue: Int? { nil }
    public init(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}
