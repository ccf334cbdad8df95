import ArgumentParser
import Foundation
import Yams

/// `--config FILE`: a JSON or YAML (.yaml, .yml) mapping whose keys are flag
/// names without the dashes ("learning-rate": 0.05, "layers": "784,256,128,10"
/// or [784, 256, 128, 10], "shuffle": false). The file's settings become flags
/// placed before the command line's own, so flags given there win.
enum ConfigFile {
    /// `arguments` with each `--config FILE` replaced by the file's flags,
    /// moved to just after the subcommand.
    static func expand(_ arguments: [String]) throws -> [String] {
        let isConfig = { (argument: String) in argument == "--config" || argument.hasPrefix("--config=") }
        guard let index = arguments.firstIndex(where: isConfig) else { return arguments }
        guard arguments.filter(isConfig).count == 1 else {
            throw ValidationError("--config is given more than once; give one file (flags on the command line override it).")
        }
        var rest = arguments
        let path: String
        if arguments[index].hasPrefix("--config=") {
            path = String(arguments[index].dropFirst("--config=".count))
            rest.remove(at: index)
        } else {
            guard index + 1 < arguments.count else { throw ValidationError("--config needs a file.") }
            path = arguments[index + 1]
            rest.removeSubrange(index...(index + 1))
        }
        let flags = try self.flags(from: path)
        // After the subcommand name (the first argument that is not a flag).
        let position = rest.firstIndex { !$0.hasPrefix("-") }.map { $0 + 1 } ?? 0
        rest.insert(contentsOf: flags, at: position)
        return rest
    }

    /// The flags a configuration file stands for, in key order.
    static func flags(from path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("\(path): cannot read the configuration file.")
        }
        let yaml = path.hasSuffix(".yaml") || path.hasSuffix(".yml")
        // Read as YAML (JSON is a subset) to refuse what the decoders let
        // through: keys given twice (JSON keeps the last) and aliases that
        // expand without bound (a few hundred bytes to billions of values).
        if let text = String(validating: [UInt8](data), as: UTF8.self) {
            do {
                if let root = try Yams.compose(yaml: text) {
                    var budget = 10_000
                    try check(root, path: path, depth: 0, budget: &budget)
                }
            } catch YamlError.duplicatedKeysInMapping(let duplicates, _) {
                throw ValidationError("\(path): the key '\(duplicates.joined(separator: "', '"))' is given twice.")
            } catch let error as ValidationError {
                throw error
            } catch {
                // Not YAML: the decoder below says what is wrong.
            }
        }
        let decoded = yaml ? try? YAMLDecoder().decode([String: Value].self, from: data)
                           : try? JSONDecoder().decode([String: Value].self, from: data)
        guard let settings = decoded else {
            throw ValidationError("\(path): is not a \(yaml ? "YAML mapping" : "JSON object") of settings (numbers, strings, booleans, lists), "
                                  + (yaml ? "e.g. 'epochs: 10'." : "e.g. {\"epochs\": 10}."))
        }
        var flags: [String] = []
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) {
            guard key == key.lowercased(), !key.hasPrefix("-"), key != "config" else {
                throw ValidationError("\(path): key '\(key)' is not a flag name (write them as in --help, without the dashes).")
            }
            switch value {
            case .flag(let on): flags.append(on ? "--\(key)" : "--no-\(key)")
            case .text(let text): flags += ["--\(key)", text]
            }
        }
        return flags
    }

    /// Refuses aliases, and more values or deeper nesting than settings
    /// need (`budget` values in all: aliases expanded by the composer
    /// count each time they are used).
    private static func check(_ node: Node, path: String, depth: Int, budget: inout Int) throws {
        budget -= 1
        guard depth < 8, budget >= 0 else {
            throw ValidationError("\(path): holds more values, or nests deeper, than a file of settings does (YAML aliases?).")
        }
        switch node {
        case .alias:
            throw ValidationError("\(path): uses a YAML alias (*name); write the value out instead.")
        case .mapping(let mapping):
            for (_, value) in mapping { try check(value, path: path, depth: depth + 1, budget: &budget) }
        case .sequence(let sequence):
            for element in sequence { try check(element, path: path, depth: depth + 1, budget: &budget) }
        case .scalar:
            break
        }
    }

    /// The settings' keys as flags ("--learning-rate"), for naming the file
    /// in an error about one of them.
    static func configuredFlags(_ arguments: [String]) -> (path: String, flags: Set<String>)? {
        guard let index = arguments.firstIndex(where: { $0 == "--config" || $0.hasPrefix("--config=") }) else { return nil }
        let path = arguments[index].hasPrefix("--config=") ? String(arguments[index].dropFirst("--config=".count))
            : index + 1 < arguments.count ? arguments[index + 1] : ""
        guard let flags = try? flags(from: path) else { return nil }
        return (path, Set(flags.filter { $0.hasPrefix("--") }))
    }

    /// A setting's value: a boolean becomes --key or --no-key; a number, a
    /// string or a list (joined with commas) becomes --key VALUE.
    enum Value: Decodable {
        case flag(Bool)
        case text(String)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let on = try? container.decode(Bool.self) {
                self = .flag(on)
            } else if let list = try? container.decode([Value].self) {
                self = .text(list.map { if case .text(let t) = $0 { t } else { "" } }.joined(separator: ","))
            } else if let integer = try? container.decode(Int.self) {
                self = .text(String(integer))
            } else if let number = try? container.decode(Double.self) {
                self = .text(String(number))
            } else {
                self = .text(try container.decode(String.self))
            }
        }
    }
}
