/// One setting, declared once: its name, where `Root` keeps it (any key path,
/// nested ones included: `\.optimizer.momentum`), its domain, what it may do on
/// resume, when it applies, and its help. Everything else is derived from the
/// declaration: `TrainingConfiguration.validate()`'s check of its domain and the
/// error that names it, and, on the command line, the flag (its name in kebab
/// case, or `flag` where that rule cannot spell it), the option's help and
/// default, the type a settings file must give, config.json and
/// `--print-config`, the settings table, what a resume allows, and the tests
/// generated for every declaration.
///
/// A new setting is its property, its declaration in `TrainingConfiguration.settings`
/// and its option on the command line.
public struct Declared<Root>: Sendable {
    /// Its name: in kebab case, its flag ("clipNorm", --clip-norm) and its key in settings files.
    public let name: String
    /// Its flag without the dashes, where the name in kebab case does not spell it; nil: that rule's.
    public let flag: String?
    /// The setting in words, for messages that name no flag.
    public let words: String
    /// What it does, for help and the settings table.
    public let summary: String
    /// The title of the settings table's section it belongs to.
    public let section: String
    public let rule: ResumeRule
    /// The numbers it takes (each of a list's); a value that is not a number takes `.any`.
    public let domain: SettingDomain
    /// The default as help shows it, where the default value does not say it ("one epoch"); nil: the value's.
    public let shownDefault: String?
    /// What it needs to act: another setting with one of some values (`--momentum` needs a momentum rule).
    public let requirement: Requirement?
    /// The Swift type of its value (the wrapped type of an optional one).
    public var valueType: Any.Type { type() }

    private let type: @Sendable () -> Any.Type
    private let read: @Sendable (Root) -> (any Sendable)?
    private let write: (@Sendable (inout Root, Any) -> Bool)?
    private let shown: (@Sendable (Root) -> (any Sendable)?)?
    /// Its key in a stored `Root` (a checkpoint's configuration), where it is stored by itself; nil: within another's.
    public let storedKey: String?

    /// A setting stored at `path` as `Value`.
    /// - Parameters:
    ///   - name: its name; in kebab case, its flag.
    ///   - path: where `Root` keeps it; a writable one is set by its flag, a read-only one is set by logic of its own.
    ///   - flag: its flag where the name in kebab case cannot spell it.
    ///   - words: the setting in words, for messages.
    ///   - domain: the numbers it may take (checked by `validate()`).
    ///   - rule: what it may do on resume.
    ///   - requirement: what it needs to act (and to be recorded).
    ///   - shownDefault: the default in words, where its value does not say it.
    ///   - recorded: what a record of a run holds for it (nil: nothing), where that is not its value.
    ///   - stored: whether a stored `Root` keeps it under its name (a property of `Root` itself), else within another.
    ///   - section: the settings table's section.
    ///   - summary: what it does.
    public init<Value: Sendable>(_ name: String, _ path: KeyPath<Root, Value> & Sendable, flag: String? = nil, words: String,
                       domain: SettingDomain = .any, rule: ResumeRule = .fixed, requirement: Requirement? = nil,
                       shownDefault: String? = nil, recorded: (@Sendable (Value) -> (any Sendable)?)? = nil,
                       stored: Bool = false, section: String, summary: String) {
        let writable = path is WritableKeyPath<Root, Value>
        let read: @Sendable (Root) -> (any Sendable)? = { $0[keyPath: path] }
        var shown: (@Sendable (Root) -> (any Sendable)?)? = nil
        if let recorded { shown = { recorded($0[keyPath: path]) } }
        let write: @Sendable (inout Root, Any) -> Bool = { root, value in
            guard let path = path as? WritableKeyPath<Root, Value>, let value = value as? Value else { return false }
            root[keyPath: path] = value
            return true
        }
        self.init(name, flag, words, domain, rule, requirement, shownDefault, stored, section, summary, type: { Value.self },
                  read: read, shown: shown, write: writable ? write : nil)
    }

    /// A setting stored at `path` as `Value?`: nil is unset (off, or its default).
    public init<Value: Sendable>(_ name: String, _ path: KeyPath<Root, Value?> & Sendable, flag: String? = nil, words: String,
                       domain: SettingDomain = .any, rule: ResumeRule = .fixed, requirement: Requirement? = nil,
                       shownDefault: String? = nil, recorded: (@Sendable (Value?) -> (any Sendable)?)? = nil,
                       stored: Bool = false, section: String, summary: String) {
        let writable = path is WritableKeyPath<Root, Value?>
        let read: @Sendable (Root) -> (any Sendable)? = { $0[keyPath: path] }
        var shown: (@Sendable (Root) -> (any Sendable)?)? = nil
        if let recorded { shown = { recorded($0[keyPath: path]) } }
        let write: @Sendable (inout Root, Any) -> Bool = { root, value in
            guard let path = path as? WritableKeyPath<Root, Value?> else { return false }
            if let value = value as? Value {
                root[keyPath: path] = value
            } else if case Optional<Any>.none = value {
                root[keyPath: path] = nil
            } else {
                return false
            }
            return true
        }
        self.init(name, flag, words, domain, rule, requirement, shownDefault, stored, section, summary, type: { Value.self },
                  read: read, shown: shown, write: writable ? write : nil)
    }

    private init(_ name: String, _ flag: String?, _ words: String, _ domain: SettingDomain, _ rule: ResumeRule, _ requirement: Requirement?,
                 _ shownDefault: String?, _ stored: Bool, _ section: String, _ summary: String, type: @escaping @Sendable () -> Any.Type,
                 read: @escaping @Sendable (Root) -> (any Sendable)?, shown: (@Sendable (Root) -> (any Sendable)?)?,
                 write: (@Sendable (inout Root, Any) -> Bool)?) {
        (self.name, self.flag, self.words, self.domain, self.rule) = (name, flag, words, domain, rule)
        (self.requirement, self.shownDefault, self.section, self.summary) = (requirement, shownDefault, section, summary)
        storedKey = stored ? name : nil
        (self.type, self.read, self.shown, self.write) = (type, read, shown, write)
    }

    /// Its value in `root`; nil when it is unset (an optional setting that is off).
    public func value(in root: Root) -> (any Sendable)? { read(root) }

    /// What a record of a run in `root` holds for it: its value where it applies; nil for nothing.
    public func recorded(in root: Root) -> (any Sendable)? {
        guard requirement?.holds(in: root) ?? true else { return nil }
        return shown.map { $0(root) } ?? read(root)
    }

    /// Whether its flag sets it (its path is writable); a read-only one is set by logic of its own.
    public var isWritable: Bool { write != nil }

    /// Sets it to `value` (of its type; an optional one also to nil, which unsets it).
    /// - Returns: false when `value` is not of its type or it is read-only.
    @discardableResult
    public func set(_ value: Any?, in root: inout Root) -> Bool {
        write?(&root, value as Any) ?? false
    }

    /// The numbers of its value in `root` that lie outside its domain: the first, as written; nil when all lie in it.
    public func outsideDomain(in root: Root) -> String? {
        guard let value = read(root) else { return nil }
        let values: [Any] = (value as? [Any]) ?? [value]
        return values.first { !domain.contains($0) }.map { "\($0)" }
    }
}

/// What a setting needs to act: another setting with one of some values
/// (`--momentum` needs the optimizer momentum, nesterov or rmsprop).
public struct Requirement: Sendable {
    /// The name of the setting it needs.
    public let setting: String
    /// Its values that let the setting act, as their names ("momentum").
    public let values: [String]
    private let test: @Sendable (Any) -> Bool

    /// - Parameters:
    ///   - setting: the name of the setting needed.
    ///   - values: its values that let the setting act, in words.
    ///   - test: whether the root (a `TrainingConfiguration`, say) has one of them.
    public init<Root>(_ setting: String, _ values: [String], _ test: @escaping @Sendable (Root) -> Bool) {
        (self.setting, self.values) = (setting, values)
        self.test = { ($0 as? Root).map(test) ?? true }
    }

    /// Whether `root` meets it.
    public func holds(in root: Any) -> Bool { test(root) }
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

extension Declared where Root == TrainingConfiguration {
    /// The default as help shows it: `shownDefault`, else a fresh configuration's value; nil for none.
    public var defaultShown: String? {
        shownDefault ?? TrainingConfiguration().value(of: self).map(TrainingConfiguration.text(of:))
    }
}
