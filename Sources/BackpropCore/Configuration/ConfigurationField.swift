/// A setting of `TrainingConfiguration` declared once (`TrainingConfiguration.fields`):
/// its name, where it is stored, its domain, what it may do on resume and its
/// help. Everything else is derived from the declaration: the checkpoint's
/// JSON key (its name) and reading of checkpoints that predate it (its
/// default), `validate()`'s check and error, and — on the command line —
/// the flag (the name in kebab case), the option's help, config.json, the
/// settings table and what a resume allows.
///
/// Settings declared before this existed (the model, the optimizer, the
/// schedule, …) still have hand-written parts; new ones are declared here.
public protocol DeclaredSetting: Sendable {
    /// The setting's name: its key in checkpoints and, in kebab case, its flag ("clipNorm", `--clip-norm`).
    var name: String { get }
    /// The setting in words, for messages that name no flag.
    var words: String { get }
    /// What it does, for help and the settings table.
    var summary: String { get }
    /// The title of the settings table's section it belongs to.
    var section: String { get }
    var rule: ResumeRule { get }
    var domain: SettingDomain { get }
    /// Where it is stored, to find a declaration from its key path.
    var keyPath: AnyKeyPath { get }
    /// Its value in `configuration`; nil when unset (an optional setting that is off).
    func value(in configuration: TrainingConfiguration) -> (any Sendable)?
    /// Sets it to `value` (of its type, or nil to unset).
    /// - Returns: false when `value` is not of its type.
    func set(_ value: Any?, in configuration: inout TrainingConfiguration) -> Bool
    /// Reads it from a checkpoint's container, leaving the default where the checkpoint has none.
    func decode(from container: KeyedDecodingContainer<SettingKey>, into configuration: inout TrainingConfiguration) throws
    /// Writes it (nothing when unset).
    func encode(_ configuration: TrainingConfiguration, to container: inout KeyedEncodingContainer<SettingKey>) throws
}

/// What a setting may do when a stopped run is resumed.
public enum ResumeRule: Sendable, Equatable {
    /// It defines the run (model, data, optimizer): it never changes.
    case fixed
    /// It says how long or how fast: it changes only when asked to explicitly.
    case overridable
    /// It does not change the results (threads, logging, outputs).
    case free
}

/// A checkpoint key that is a declared setting's name.
public struct SettingKey: CodingKey {
    public let stringValue: String
    public var intValue: Int? { nil }
    public init(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}

/// A declared setting stored at `keyPath` as `Value?`: nil is off (the default).
public struct OptionalSetting<Value: Codable & Sendable & Equatable>: DeclaredSetting {
    public let name: String
    public let words: String
    public let summary: String
    public let section: String
    public let rule: ResumeRule
    public let domain: SettingDomain
    let path: WritableKeyPath<TrainingConfiguration, Value?> & Sendable

    /// - Parameters:
    ///   - name: its key in checkpoints; in kebab case, its flag.
    ///   - path: where `TrainingConfiguration` stores it.
    ///   - words: the setting in words, for messages.
    ///   - domain: the values it may take (checked by `validate()`).
    ///   - rule: what it may do on resume.
    ///   - section: the settings table's section.
    ///   - summary: what it does.
    public init(_ name: String, _ path: WritableKeyPath<TrainingConfiguration, Value?> & Sendable, words: String,
                domain: SettingDomain = .any, rule: ResumeRule = .fixed, section: String, summary: String) {
        self.name = name
        self.path = path
        self.words = words
        self.domain = domain
        self.rule = rule
        self.section = section
        self.summary = summary
    }

    public var keyPath: AnyKeyPath { path }

    public func value(in configuration: TrainingConfiguration) -> (any Sendable)? { configuration[keyPath: path] }

    public func set(_ value: Any?, in configuration: inout TrainingConfiguration) -> Bool {
        guard let value else {
            configuration[keyPath: path] = nil
            return true
        }
        guard let typed = value as? Value else { return false }
        configuration[keyPath: path] = typed
        return true
    }

    public func decode(from container: KeyedDecodingContainer<SettingKey>, into configuration: inout TrainingConfiguration) throws {
        if let value = try container.decodeIfPresent(Value.self, forKey: SettingKey(stringValue: name)) {
            configuration[keyPath: path] = value
        }
    }

    public func encode(_ configuration: TrainingConfiguration, to container: inout KeyedEncodingContainer<SettingKey>) throws {
        try container.encodeIfPresent(configuration[keyPath: path], forKey: SettingKey(stringValue: name))
    }
}

extension TrainingConfiguration {
    /// The declared setting named `name`, if any.
    public static func field(named name: String) -> (any DeclaredSetting)? {
        fields.first { $0.name == name }
    }

    /// Checks every declared setting against its domain.
    /// - Throws: `TrainingError.invalidSetting(.declared(name), …)` for the first outside it.
    func validateDeclared() throws(TrainingError) {
        for field in Self.fields {
            guard let value = field.value(in: self), !field.domain.contains(value) else { continue }
            throw .outOfDomain(.declared(field.name), value: "\(value)", domain: field.domain)
        }
    }
}
