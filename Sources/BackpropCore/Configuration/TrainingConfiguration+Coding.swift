// MARK: - Stored form

/// The configuration as checkpoints hold it (JSON in /training): each
/// property under its name, declared once in `storedForm` with what a
/// checkpoint that lacks it means. Checkpoints before 0.7 stored the base
/// rate as the optimizer's `learningRate` and the schedule's shape alone;
/// they still read.
extension TrainingConfiguration {
    /// One property of the stored form: its key, how it is written, and how
    /// it is read (a checkpoint without it is refused, or reads its default or nil).
    struct StoredProperty: Sendable {
        let key: String
        let encode: @Sendable (TrainingConfiguration, inout KeyedEncodingContainer<SettingKey>) throws -> Void
        let decode: @Sendable (KeyedDecodingContainer<SettingKey>, inout TrainingConfiguration) throws -> Void

        /// In every checkpoint: one without it is refused.
        static func always<Value: Codable & Sendable>(_ key: String, _ path: WritableKeyPath<TrainingConfiguration, Value> & Sendable) -> Self {
            let name = SettingKey(stringValue: key)
            return Self(key: key, encode: { try $1.encode($0[keyPath: path], forKey: name) },
                        decode: { $1[keyPath: path] = try $0.decode(Value.self, forKey: name) })
        }

        /// Stored since a later version: a checkpoint that predates it reads the default.
        static func added<Value: Codable & Sendable>(_ key: String, _ path: WritableKeyPath<TrainingConfiguration, Value> & Sendable) -> Self {
            let name = SettingKey(stringValue: key)
            return Self(key: key, encode: { try $1.encode($0[keyPath: path], forKey: name) },
                        decode: { if let value = try $0.decodeIfPresent(Value.self, forKey: name) { $1[keyPath: path] = value } })
        }

        /// Optional: nil is not written, and a checkpoint without it reads nil.
        static func optional<Value: Codable & Sendable>(_ key: String, _ path: WritableKeyPath<TrainingConfiguration, Value?> & Sendable) -> Self {
            let name = SettingKey(stringValue: key)
            return Self(key: key, encode: { try $1.encodeIfPresent($0[keyPath: path], forKey: name) },
                        decode: { $1[keyPath: path] = try $0.decodeIfPresent(Value.self, forKey: name) })
        }
    }

    /// The properties stored as wholes, in the order they are written; the
    /// settings stored by their own names (`Declared.storedKey`) follow.
    static let storedForm: [StoredProperty] = [
        .always("sizes", \.sizes), .always("hiddenActivation", \.hiddenActivation), .optional("outputActivation", \.outputActivation),
        .always("loss", \.loss), .always("initialization", \.initialization), .always("optimizer", \.optimizer), schedule,
        .always("batchSize", \.batchSize), .always("epochs", \.epochs), .always("shuffle", \.shuffle), .always("workers", \.workers),
        .always("seed", \.seed), .always("reduction", \.reduction), .always("shardSize", \.shardSize),
        .optional("sampling", \.sampling), .optional("privacy", \.privacy),
        .added("labelSmoothing", \.labelSmoothing),  // 0.7
        .added("validationFraction", \.validationFraction), .added("monitor", \.monitor), .added("minDelta", \.minDelta),  // 0.8
        .optional("earlyStopping", \.earlyStopping),
        .added("dropout", \.dropout), .added("augmentation", \.augmentation),  // 0.9
        .added("blockShuffle", \.blockShuffle),  // 0.10
    ]

    /// The schedule, or before 0.7 its shape alone with the base rate in the optimizer.
    private static let schedule = StoredProperty(
        key: "schedule", encode: { try $1.encode($0.schedule, forKey: SettingKey(stringValue: "schedule")) },
        decode: { c, configuration in
            let key = SettingKey(stringValue: "schedule")
            if let schedule = try? c.decode(LearningRateSchedule.self, forKey: key) {
                configuration.schedule = schedule
            } else {
                let legacy = try c.nestedContainer(keyedBy: SettingKey.self, forKey: SettingKey(stringValue: "optimizer"))
                configuration.schedule = LearningRateSchedule(base: try legacy.decode(Double.self, forKey: SettingKey(stringValue: "learningRate")),
                                                              try c.decode(LearningRateSchedule.Shape.self, forKey: key))
            }
        })

    public init(from decoder: any Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: SettingKey.self)
        for property in Self.storedForm { try property.decode(c, &self) }
        // The settings stored by their names, each left at its default where a checkpoint predates it.
        for setting in Self.settings {
            guard let key = setting.storedKey.map(SettingKey.init(stringValue:)), let type = setting.valueType as? any Decodable.Type else { continue }
            func decode<Value: Decodable>(_: Value.Type) throws -> Value? { try c.decodeIfPresent(Value.self, forKey: key) }
            if let value = try decode(type) { setting.set(value, in: &self) }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: SettingKey.self)
        for property in Self.storedForm { try property.encode(self, &c) }
        for setting in Self.settings {
            guard let key = setting.storedKey.map(SettingKey.init(stringValue:)), let value = setting.value(in: self) as? any Encodable else { continue }
            try c.encode(value, forKey: key)
        }
    }
}

/// A checkpoint key: a stored property's or a setting's name (`Declared.storedKey`).
public struct SettingKey: CodingKey {
    public let stringValue: String
    public var intValue: Int? { nil }
    public init(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}
