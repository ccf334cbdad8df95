import BackpropTestSupport
import Foundation
import Testing

/// The classes of issue 39, each tested over every setting `train` has (the
/// rows of `backprop settings --json`, which come from the options'
/// declarations), not over a list of cases: a new setting is covered as it is declared.
struct SettingClassTests {
    let directory = temporaryDirectory("setting-classes")
    let executable = backpropExecutable()

    func backprop(_ arguments: [String]) throws -> ProcessResult {
        try run(executable, arguments, in: directory)
    }

    /// One row of `backprop settings --json`.
    struct Row: Decodable {
        let key: String
        let value: String?
        let domain: String?
        let resume: String
        let section: String
    }

    func settings() throws -> [Row] {
        let result = try backprop(["settings", "--json"])
        try #require(result.status == 0, "\(result.standardError)")
        return try JSONDecoder().decode([Row].self, from: Data(result.standardOutput.utf8))
    }

    /// The kinds of value a settings file holds, each as JSON and as YAML writes it.
    static let kinds: [(name: String, json: String, yaml: String)] = [
        ("string", #""abc""#, #""abc""#), ("whole number", "7", "7"), ("number", "2.5", "2.5"), ("boolean", "true", "true"),
        ("list", "[1, 2]", "[1, 2]"), ("mapping", #"{"a": 1}"#, "{a: 1}"), ("null", "null", "null"),
    ]

    /// The kinds a value type admits, by how `backprop settings --json` words it; nil for a wording this table does not know.
    static func admitted(by type: String) -> Set<String>? {
        switch type {
        case "true or false": return ["boolean"]
        case "a whole number": return ["whole number"]
        case "a number": return ["whole number", "number"]
        case "a string": return ["string"]
        case _ where type.hasPrefix("one of "): return []  // a string, but "abc" is none of the choices
        case _ where type.hasPrefix("a string ("): return ["string"]
        case _ where type.hasPrefix("a list of whole numbers"): return ["list", "string"]
        case "a number or a list of numbers": return ["whole number", "number", "list", "string"]
        case _ where type.hasPrefix("a size"): return ["whole number", "string"]
        case _ where type.hasPrefix("a duration"): return ["whole number", "number", "string"]
        default: return nil
        }
    }

    @Test("every setting says what value a settings file must give it")
    func everySettingIsTyped() throws {
        let rows = try settings()
        #expect(rows.count > 60)
        for row in rows {
            let type = try #require(row.value, "\(row.key) has no value type")
            #expect(Self.admitted(by: type) != nil, "\(row.key): '\(type)' is a wording this test does not know")
        }
    }

    @Test("a settings file's value of a wrong type, for every key of train and as JSON and YAML, names the file, the key, what was expected and what was found: one line, exit 64",
          arguments: kinds.map(\.name))
    func wrongTypeInSettingsFile(_ kind: String) throws {
        let (_, json, yaml) = try #require(Self.kinds.first { $0.name == kind })
        var refused = 0
        for row in try settings() {
            let type = try #require(row.value)
            guard let admitted = Self.admitted(by: type), !admitted.contains(kind) else { continue }
            for (file, text) in [("\(row.key)-\(kind).json", "{\"\(row.key)\": \(json)}\n"), ("\(row.key)-\(kind).yaml", "\(row.key): \(yaml)\n")] {
                let file = file.replacingOccurrences(of: " ", with: "-")
                try text.write(toFile: directory + "/" + file, atomically: true, encoding: .utf8)
                let result = try backprop(["train", "--config", file])
                let lines = result.standardError.split(separator: "\n")
                #expect(result.status == 64 && lines.count == 1
                        && lines[0].hasPrefix("error: \(file): key \"\(row.key)\": expected \(type), found "),
                        "\(file): \(result.status) \(result.standardError)")
                refused += 1
            }
        }
        #expect(refused > 0)
    }
}

extension SettingClassTests {
    /// Values just outside a domain, by how `backprop settings --json` words it.
    static func outside(_ domain: String) -> [String]? {
        switch domain {
        case "a finite number > 0": return ["0", "-1", "inf"]
        case "a finite number ≥ 0": return ["-1", "-inf"]
        case "a number in [0, 1)": return ["1", "-0.5"]
        case "a number in (0, 1)": return ["0", "1"]
        case "a number in (0, 1]": return ["0", "1.5"]
        default:
            if let match = domain.wholeMatch(of: /a whole number ≥ (-?[0-9]+)/) { return ["\(Int(match.1)! - 1)"] }
            if let match = domain.wholeMatch(of: /a whole number in (-?[0-9]+) … ([0-9]+)/) { return ["\(Int(match.1)! - 1)", "\(Int(match.2)! + 1)"] }
            return nil
        }
    }

    @Test("every numeric setting of train refuses values outside its declared domain, and NaN, by name in one form: `--flag: VALUE is not DOMAIN.`, exit 64, before anything is read")
    func outOfDomain() throws {
        var checked = 0
        for row in try settings() {
            guard let domain = row.domain else { continue }
            let values = try #require(Self.outside(domain), "\(row.key): '\(domain)' is a domain this test does not know")
            for value in values + (row.value == "a number" ? ["nan"] : []) {
                // A value beside the flag, as users type it, and joined to it.
                for arguments in [["--\(row.key)", value], ["--\(row.key)=\(value)"]] {
                    let result = try backprop(["train", "--data", "no-such.h5"] + arguments)
                    let lines = result.standardError.split(separator: "\n")
                    #expect(result.status == 64 && lines.count == 1 && lines[0].hasPrefix("error: --\(row.key): ")
                            && lines[0].hasSuffix(" is not \(domain)."), "\(arguments): \(result.standardError)")
                    checked += 1
                }
            }
        }
        #expect(checked > 50)
    }
}
