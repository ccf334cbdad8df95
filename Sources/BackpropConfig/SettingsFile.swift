// Configuration files (`--config FILE`): JSON or YAML mappings of settings,
// read as the flags they stand for. The CLI places those flags before the
// command line's own; this module only reads and checks the file.
import Foundation
import Yams

/// A configuration file that cannot be used, and why; the description names the file.
public struct SettingsFileError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// A JSON or YAML (.yaml, .yml) mapping whose keys are flag names without
/// the dashes ("learning-rate": 0.05, "layers": "784,256,128,10" or
/// [784, 256, 128, 10], "shuffle": false).
public enum SettingsFile {
    /// The most values a file may hold (aliases counted each time they are used).
    public static let valueLimit = 10_000
    /// The deepest nesting a file may have.
    public static let depthLimit = 8
    /// The one key whose value may be a mapping: what a run recorded beside
    /// its settings in config.json (program version, data fingerprint), skipped.
    public static let recordedKey = "recorded"

    /// `settings` (flag names without dashes → JSON values) as a settings
    /// file's text: YAML, or JSON with `json`; keys sorted, so equal settings
    /// give equal text, the keys in `free` after a comment that says they
    /// change no result (YAML only: JSON has no comments). What `flags(parsing:)` reads back.
    /// - Throws: when a value is not a JSON value.
    public static func text(_ settings: [String: Any], json: Bool, free: Set<String> = []) throws -> String {
        if json { return try jsonText(settings, indent: "") + "\n" }
        // One `key: value` line per setting: every value is a scalar or a list
        // of them. Strings are written as JSON strings, which YAML reads as
        // double-quoted scalars; numbers as Swift prints them (0.05, 1e-08).
        func scalar(_ value: Any) throws -> String {
            switch value {
            case let flag as Bool: return flag ? "true" : "false"
            case let list as [Any]: return "[" + (try list.map(scalar)).joined(separator: ", ") + "]"
            case let text as String:
                let encoder = JSONEncoder()
                encoder.outputFormatting = .withoutEscapingSlashes
                return String(decoding: try encoder.encode(text), as: UTF8.self)
            case let number as any BinaryInteger: return "\(number)"
            case let number as Double: return "\(number)"
            default: throw SettingsFileError(path: "-", reason: "\(value) is not a setting's value.")
            }
        }
        func lines(_ keys: [String]) throws -> String { try keys.sorted().map { "\($0): \(try scalar(settings[$0]!))\n" }.joined() }
        let apart = settings.keys.filter(free.contains)
        let text = try lines(settings.keys.filter { !free.contains($0) })
        return apart.isEmpty ? text : text + "# Free: these never change a result (threads, kernel, data reading, logging).\n" + (try lines(apart))
    }

    /// `value` as pretty-printed JSON, a mapping's keys in Swift's order (by
    /// Unicode scalars): JSONSerialization's `.sortedKeys` collates by locale,
    /// which costs a run ICU's collation tables (6 MiB of resident memory).
    private static func jsonText(_ value: Any, indent: String) throws -> String {
        guard let mapping = value as? [String: Any] else {
            guard JSONSerialization.isValidJSONObject([value]) else {
                throw SettingsFileError(path: "-", reason: "\(value) is not a setting's value.")
            }
            let data = try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .withoutEscapingSlashes])
            return String(decoding: data, as: UTF8.self)
        }
        guard !mapping.isEmpty else { return "{}" }
        let inner = indent + "  "
        let members = try mapping.keys.sorted().map { key in
            "\(inner)\(try jsonText(key, indent: inner)) : \(try jsonText(mapping[key]!, indent: inner))"
        }
        return "{\n" + members.joined(separator: ",\n") + "\n\(indent)}"
    }

    /// The flags the file at `path` stands for, in key order, each value
    /// checked against its key's type (`types`; nil: any value the parser takes).
    /// - Throws: `SettingsFileError` naming the file.
    public static func flags(from path: String, types: (String) -> SettingType? = { _ in nil }) throws(SettingsFileError) -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SettingsFileError(path: path, reason: "cannot read the configuration file.")
        }
        return try flags(parsing: data, path: path, types: types)
    }

    /// The flags `data` stands for; YAML when `path` ends in .yaml or .yml,
    /// else JSON. A boolean becomes --key or --no-key; a number, a string or
    /// a list (joined with commas) becomes --key VALUE.
    /// - Throws: `SettingsFileError`: not a mapping of settings, a key given
    ///   twice (JSON and YAML alike), a YAML alias, more values or deeper
    ///   nesting than settings need, a key that is not a flag name, a value
    ///   that is not of its key's type (`key "epochs": expected a whole number, found a string "ten"`).
    public static func flags(parsing data: Data, path: String,
                             types: (String) -> SettingType? = { _ in nil }) throws(SettingsFileError) -> [String] {
        var flags: [String] = []
        for (key, value) in try values(parsing: data, path: path) {
            func refuse(_ reason: String) -> SettingsFileError { SettingsFileError(path: path, reason: "key \"\(key)\": \(reason)") }
            if key == recordedKey, value == .mapping { continue }
            let type = types(key)
            if let type, !type.admits(value) { throw refuse("expected \(type), found \(value.found).") }
            guard key == key.lowercased(), !key.hasPrefix("-"), !key.isEmpty, key != "config" else {
                throw refuse("not a flag name (write them as in --help, without the dashes).")
            }
            switch value {
            case .boolean(let on): flags.append(on ? "--\(key)" : "--no-\(key)")
            case .mapping: throw refuse("expected \(type?.description ?? "a value"), found a mapping (only '\(recordedKey)' may hold one: a run's facts, not settings).")
            case .null: throw refuse("expected \(type?.description ?? "a value"), found null.")
            default:
                guard let text = value.text else { throw refuse("expected \(type?.description ?? "a value"), found \(value.found) of lists.") }
                flags += ["--\(key)", text]
            }
        }
        return flags
    }

    /// The file's settings as written, in key order.
    /// - Throws: `SettingsFileError` for a file that is not a mapping of
    ///   settings, a key given twice, an alias, or too many or too deep values.
    public static func values(parsing data: Data, path: String) throws(SettingsFileError) -> [(key: String, value: SettingValue)] {
        func refuse(_ reason: String) -> SettingsFileError { SettingsFileError(path: path, reason: reason) }
        let yaml = path.hasSuffix(".yaml") || path.hasSuffix(".yml")
        let notSettings = refuse("is not a \(yaml ? "YAML mapping" : "JSON object") of settings (numbers, strings, booleans, lists), "
                                 + (yaml ? "e.g. 'epochs: 10'." : "e.g. {\"epochs\": 10}."))
        // Read as YAML (JSON is a subset) to refuse what the decoders let
        // through: keys given twice (JSON keeps the last) and aliases that
        // expand without bound (a few hundred bytes to billions of values).
        var composed: Node?
        if let text = String(validating: [UInt8](data), as: UTF8.self) {
            do {
                composed = try Yams.compose(yaml: text)
                if let root = composed {
                    var budget = valueLimit
                    if let reason = check(root, depth: 0, budget: &budget) { throw refuse(reason) }
                }
            } catch YamlError.duplicatedKeysInMapping(let duplicates, _) {
                throw refuse("the key '\(duplicates.joined(separator: "', '"))' is given twice.")
            } catch let error as SettingsFileError {
                throw error
            } catch {
                // Not YAML: JSON's decoder below, or the error, says what is wrong.
            }
        }
        if yaml {
            guard let mapping = composed?.mapping else { throw notSettings }
            var settings: [(key: String, value: SettingValue)] = []
            for (key, value) in mapping {
                guard case .scalar(let scalar) = key else { throw refuse("a key is not a flag name (write them as in --help, without the dashes).") }
                settings.append((scalar.string, SettingValue(value)))
            }
            return settings.sorted { $0.key < $1.key }
        }
        guard let object = try? JSONDecoder().decode([String: JSONValue].self, from: data) else { throw notSettings }
        return object.map { ($0.key, $0.value.value) }.sorted { $0.key < $1.key }
    }

    /// Why `node` is refused, or nil: an alias, or more values or deeper
    /// nesting than settings need (`budget` values in all).
    static func check(_ node: Node, depth: Int, budget: inout Int) -> String? {
        budget -= 1
        guard depth < depthLimit, budget >= 0 else {
            return "holds more values, or nests deeper, than a file of settings does (YAML aliases?)."
        }
        switch node {
        case .alias:
            return "uses a YAML alias (*name); write the value out instead."
        case .mapping(let mapping):
            for (_, value) in mapping {
                if let reason = check(value, depth: depth + 1, budget: &budget) { return reason }
            }
        case .sequence(let sequence):
            for element in sequence {
                if let reason = check(element, depth: depth + 1, budget: &budget) { return reason }
            }
        case .scalar:
            break
        }
        return nil
    }

    /// A JSON value, read with its kind: JSON's decoder tells a boolean,
    /// a whole number, a number, a string, a list, an object and null apart.
    struct JSONValue: Decodable {
        let value: SettingValue

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                value = .null
            } else if let on = try? container.decode(Bool.self) {
                value = .boolean(on)
            } else if let integer = try? container.decode(Int.self) {
                value = .integer(String(integer))
            } else if let number = try? container.decode(Double.self) {
                value = .real(String(number))
            } else if let text = try? container.decode(String.self) {
                value = .string(text)
            } else if let list = try? container.decode([JSONValue].self) {
                value = .list(list.map(\.value))
            } else {
                _ = try container.decode([String: JSONValue].self)
                value = .mapping
            }
        }
    }
}
