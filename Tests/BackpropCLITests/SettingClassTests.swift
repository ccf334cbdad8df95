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
        let `default`: String?
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

extension SettingClassTests {
    /// A run with every optional part of train on (DP-SGD, a step schedule,
    /// early stopping, a validation split, RMSprop's own flags, …), and one with the defaults.
    static let runs: [(name: String, flags: [String])] = [
        ("off", []),
        ("on", ["--epochs", "2", "--steps", "3", "--optimizer", "rmsprop", "--momentum", "0.5", "--centered", "--weight-decay", "0.001",
                "--label-smoothing", "0.1", "--dropout", "0.2", "--input-dropout", "0.1", "--augment", "shift=1", "--validation-fraction", "0.2",
                "--monitor", "validation-loss", "--min-delta", "0.01", "--early-stopping", "3", "--batch-size", "128", "--shard-size", "64",
                "--seed", "7", "--dp-clip", "1", "--dp-noise", "1", "--dp-delta", "0.001", "--sampling", "shuffle", "--shuffle-blocks", "64",
                "--shuffle-window", "2", "--lr-schedule", "step", "--lr-step-size", "2", "--lr-gamma", "0.5", "--clip-norm", "5",
                "--reduction", "sum", "--init", "he", "--activation", "leaky-relu", "--ema", "0.5"]),
    ]

    /// A value config.json records, as text ("true", "0.5", "784,16,10").
    struct Recorded: Decodable {
        let text: String

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let on = try? container.decode(Bool.self) { text = "\(on)" }
            else if let number = try? container.decode(Double.self) { text = "\(number)" }
            else if let string = try? container.decode(String.self) { text = string }
            else if let list = try? container.decode([Recorded].self) { text = list.map(\.text).joined(separator: ",") }
            else { text = "" }
        }
    }

    /// Whether `x` lies in the domain `backprop settings --json` words as `domain` (nil: any).
    static func inside(_ x: Double, _ domain: String?) -> Bool {
        guard let domain, let outside = outside(domain) else { return true }
        switch domain {
        case "a finite number > 0": return x > 0
        case "a finite number ≥ 0": return x >= 0
        case "a number in [0, 1)": return x >= 0 && x < 1
        case "a number in (0, 1)": return x > 0 && x < 1
        case "a number in (0, 1]": return x > 0 && x <= 1
        default: return x.rounded() == x && x > Double(outside[0])! && (outside.count < 2 || x < Double(outside[1])!)
        }
    }

    /// A value of `row`'s type, inside its domain, that is not `recorded` (the run's, as config.json holds it); nil where there is none.
    static func changed(_ row: Row, from recorded: Any?) -> [String]? {
        let was = (recorded as? Recorded)?.text
        // Where the run records nothing, it has the default: a candidate the default names would repeat it.
        let defaults = was == nil ? Set((row.default ?? "").split(whereSeparator: { " ,".contains($0) }).map(String.init)) : []
        func first(_ candidates: [String]) -> [String]? {
            candidates.first { candidate in
                guard candidate != was, !defaults.contains(candidate) else { return false }
                if let x = Double(candidate) { return inside(x, row.domain) && (Double(was ?? "") != x) }
                return true
            }.map { ["--\(row.key)", $0] }
        }
        switch row.value ?? "" {
        case "true or false": return (recorded as? Recorded)?.text == "true" ? nil : ["--\(row.key)"]
        case "a number", "a number or a list of numbers": return first(["0.25", "0.5", "2", "3"])
        case "a whole number": return first(["3", "5", "2", "7"])
        case let type where type.hasPrefix("one of "): return first(type.dropFirst("one of ".count).components(separatedBy: ", "))
        case let type where type.hasPrefix("a list of whole numbers"): return first(["784,8,10", "784,12,10"])
        case let type where type.hasPrefix("a string ("): return first(["flip", "shift=2"])
        default: return nil
        }
    }

    @Test("every setting's resume rule, on a run that has it on and on one that has it off: a changed fixed setting is refused and an overridable one asks for --override, each naming the flag and the run's checkpoint, before the run starts")
    func resumeRules() throws {
        var checked = 0
        for (name, flags) in Self.runs {
            let first = try backprop(["train", "--data", CLITests.sample, "--layers", "784,16,10", "--epochs", "1", "--run-dir", name, "--quiet"] + flags)
            try #require(first.status == 0, "\(name): \(first.standardError)")
            let config = try JSONDecoder().decode([String: Recorded].self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/\(name)/config.json")))
            let checkpoints = try FileManager.default.contentsOfDirectory(atPath: directory + "/\(name)").filter { $0.hasPrefix("checkpoint-") }
            for row in try settings() where row.resume != "free" && row.key != "data" {
                guard let arguments = Self.changed(row, from: config[row.key]) else { continue }
                let result = try backprop(["train", "--resume", name] + arguments)
                let line = result.standardError
                #expect(result.status == 64 && line.split(separator: "\n").count == 1 && line.contains("--\(row.key)")
                        && line.contains("\(name)/checkpoint-") && line.contains(row.resume == "fixed" ? "cannot" : "--override"),
                        "\(name) \(arguments): \(result.status) \(line)")
                // Nothing was written: the run's checkpoints are as they were.
                #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/\(name)").filter { $0.hasPrefix("checkpoint-") } == checkpoints)
                checked += 1
            }
        }
        #expect(checked > 60)
    }
}

/// Issue 54, class 3: the sweep file's space, over every key of train: a value of a kind the
/// setting does not take, or a number outside its domain, is refused like a settings file's.
extension SettingClassTests {
    @Test("a sweep file's space refuses, for every key of train, a value of a wrong kind and a number outside its domain: one line naming the file and the key, exit 64, nothing written")
    func sweepSpace() throws {
        let sample = DocumentedCommandsTests.root.appendingPathComponent("datasets/fashion-mnist-sample.h5").path
        var checked = 0
        for row in try settings() {
            let type = try #require(row.value)
            let admitted = try #require(Self.admitted(by: type))
            let wrong = Self.kinds.filter { ["string", "mapping"].contains($0.name) && !admitted.contains($0.name) }.map(\.yaml)
            for value in wrong + (row.domain.flatMap(Self.outside) ?? []) {
                let file = "space-\(row.key).yaml"
                try "base: {data: \(sample), epochs: 1, validation-fraction: 0.2}\nsearch: grid\nspace:\n  \(row.key): [\(value)]\n"
                    .write(toFile: directory + "/" + file, atomically: true, encoding: .utf8)
                let result = try backprop(["sweep", "--config", file, "--run-dir", "out"])
                let lines = result.standardError.split(separator: "\n")
                #expect(result.status == 64 && lines.count == 1 && lines[0].contains(file) && lines[0].contains(row.key),
                        "\(row.key): \(value): \(result.status) \(result.standardError)")
                #expect(!FileManager.default.fileExists(atPath: directory + "/out"), "\(row.key): \(value) wrote out/")
                checked += 1
            }
        }
        #expect(checked > 60)
    }
}
