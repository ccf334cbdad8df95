import Yams

/// A value as a settings file writes it: YAML's and JSON's scalar kinds
/// (a quoted scalar is always a string), a list, a mapping or null.
public indirect enum SettingValue: Equatable, Sendable {
    case boolean(Bool)
    /// A whole number, as written.
    case integer(String)
    /// A number with a fraction or an exponent (or YAML's .inf and .nan), as written.
    case real(String)
    case string(String)
    case list([SettingValue])
    case mapping
    case null

    /// The value as read from a composed YAML (or JSON) node, its kind
    /// from the node's resolved tag.
    init(_ node: Node) {
        switch node {
        case .scalar(let scalar):
            switch Resolver.default.resolveTag(of: node) {
            case .bool: self = .boolean(Bool.construct(from: scalar) ?? false)
            case .int: self = .integer(scalar.string)
            case .float: self = .real(scalar.string)
            case .null: self = .null
            default: self = .string(scalar.string)
            }
        case .sequence(let sequence): self = .list(sequence.map(SettingValue.init))
        case .mapping: self = .mapping
        case .alias: self = .null  // refused before values are read
        }
    }

    /// What the file holds, for an error: `a string "ten"`, `a number 5`, `a list [1, 2]`.
    public var found: String {
        switch self {
        case .boolean(let on): return "a boolean (\(on))"
        case .integer(let text), .real(let text): return "a number \(text)"
        case .string(let text): return "a string \"\(text.count > 40 ? text.prefix(40) + "…" : text)\""
        case .list(let values): return "a list of \(values.count)"
        case .mapping: return "a mapping"
        case .null: return "null"
        }
    }

    /// The text of a scalar, or of a list's scalars joined by commas, as a flag's value; nil for anything else.
    public var text: String? {
        switch self {
        case .integer(let text), .real(let text), .string(let text): return text
        case .list(let values):
            let texts = values.compactMap(\.text)
            return texts.count == values.count && values.allSatisfy({ if case .list = $0 { false } else { true } })
                ? texts.joined(separator: ",") : nil
        case .boolean, .mapping, .null: return nil
        }
    }
}

/// The values a setting takes in a settings file, and how an error says so
/// ("expected a number"). The command line derives each flag's type from the
/// Swift type of its option (see the CLI's `OptionTable`).
public struct SettingType: Sendable, CustomStringConvertible {
    /// What the error says is expected: "a number", "true or false".
    public let description: String
    let accepts: @Sendable (SettingValue) -> Bool

    public init(_ description: String, accepts: @escaping @Sendable (SettingValue) -> Bool) {
        self.description = description
        self.accepts = accepts
    }

    /// Whether `value` is of this type.
    public func admits(_ value: SettingValue) -> Bool { accepts(value) }

    /// An on/off flag: true or false.
    public static let boolean = SettingType("true or false") { if case .boolean = $0 { true } else { false } }
    /// A whole number.
    public static let wholeNumber = SettingType("a whole number") { if case .integer = $0 { true } else { false } }
    /// A number, whole or not.
    public static let number = SettingType("a number") {
        switch $0 { case .integer, .real: true; default: false }
    }
    /// A string (a path, a duration like 90s, a spec like shift=2).
    public static func string(_ what: String = "a string") -> SettingType {
        SettingType(what) { if case .string = $0 { true } else { false } }
    }
    /// One of `choices`, as a string.
    public static func choice(_ choices: [String]) -> SettingType {
        SettingType("one of " + choices.joined(separator: ", ")) { if case .string(let s) = $0 { choices.contains(s) } else { false } }
    }
    /// A list of `element`s, or the same as one comma-separated string.
    public static func list(of element: SettingType, _ what: String) -> SettingType {
        SettingType(what) { value in
            switch value {
            case .list(let values): return !values.isEmpty && values.allSatisfy(element.accepts)
            case .string: return true
            default: return false
            }
        }
    }
    /// A value of either type, worded `what`.
    public static func either(_ first: SettingType, _ second: SettingType, _ what: String) -> SettingType {
        SettingType(what) { first.accepts($0) || second.accepts($0) }
    }
}
