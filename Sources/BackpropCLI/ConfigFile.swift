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
        guard let index = arguments.firstIndex(where: { $0 == "--config" || $0.hasPrefix("--config=") }) else { return arguments }
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
