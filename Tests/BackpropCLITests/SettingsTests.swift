import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// The settings' declarations (TrainingConfiguration.settings, and the command
/// line's own in Sources/BackpropCLI/Settings.swift) are the one table of train's flags: what `--help` declares, what docs/options.md shows,
/// and what a run's config.json records.
struct SettingsTests {
    let directory = temporaryDirectory("settings")
    let executable = backpropExecutable()
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The flags of `backprop settings`' table, in order.
    func tableFlags() throws -> [String] {
        let table = try run(executable, ["settings"], in: directory).standardOutput
        return table.split(separator: "\n").compactMap { line in
            line.hasPrefix("| `--") ? String(line.dropFirst(3).prefix { $0 != "`" }) : nil
        }
    }

    /// The subcommands `backprop COMMAND… --help` lists.
    func subcommands(_ command: [String]) throws -> [String] {
        let help = try run(executable, command + ["--help"], in: directory).standardOutput
        guard let section = help.components(separatedBy: "SUBCOMMANDS:").dropFirst().first else { return [] }
        return section.split(separator: "\n").compactMap { line in
            line.hasPrefix("  ") && !line.hasPrefix("   ") ? line.split(separator: " ").first.map(String.init) : nil
        }
    }

    @Test("no command's help shows an option's default twice (ours in the help text, and the parser's for a property with a value)")
    func defaultsOnce() throws {
        let commands = try subcommands([]).flatMap { name in [[name]] + (try subcommands([name])).map { [name, $0] } }
        #expect(commands.count > 15, "\(commands)")
        for command in commands {
            let help = try run(executable, command + ["--help"], in: directory)
            #expect(help.status == 0, "\(command): \(help.standardError)")
            let text = help.standardOutput.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(text.firstMatch(of: /\(default: [^)]*\) \(default:/) == nil, "\(command) --help: \(text)")
        }
    }

    @Test("docs/options.md holds the table `backprop settings` prints")
    func documentedTable() throws {
        let table = try run(executable, ["settings"], in: directory)
        #expect(table.status == 0)
        let document = try String(contentsOf: Self.root.appendingPathComponent("docs/options.md"), encoding: .utf8)
        #expect(document.contains(table.standardOutput.trimmingCharacters(in: .newlines)),
                "docs/options.md is stale: regenerate its table with `backprop settings`")
    }

    @Test("every flag train's --help declares has a descriptor, and every descriptor is a flag train declares")
    func descriptorsAreTheFlags() throws {
        let help = try run(executable, ["train", "--help"], in: directory).standardOutput
        // Option lines start with the flag (Bool flags of both senses read "--x/--no-x"); a
        // line of prose that happens to start with one has punctuation after it.
        let declared = Set(help.split(separator: "\n").compactMap { line -> String? in
            let text = line.trimmingCharacters(in: .whitespaces)
            guard text.hasPrefix("--") else { return nil }
            let flag = String(text.prefix { $0 != " " && $0 != "/" && $0 != "=" })
            return flag.dropFirst(2).allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" }) ? flag : nil
        }).subtracting(["--help", "--version"])
        let described = try tableFlags()
        #expect(Set(described) == declared, "only described: \(Set(described).subtracting(declared)); only declared: \(declared.subtracting(described))")
        #expect(described.count == Set(described).count, "a flag described twice")
    }

    @Test("a run's config.json is keyed by descriptors' flags only")
    func configKeys() throws {
        let result = try run(executable, ["train", "--data", CLITests.sample, "--layers", "784,8,10", "--epochs", "1", "--quiet",
                                          "--lr-schedule", "cosine", "--warmup-steps", "2", "--run-dir", "r"], in: directory)
        #expect(result.status == 0, "\(result.standardError)")
        let data = try Data(contentsOf: URL(fileURLWithPath: directory).appendingPathComponent("r/config.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let flags = Set(try tableFlags().map { String($0.dropFirst(2)) })
        let keys = Set(object.keys).subtracting(["recorded"])
        #expect(keys.isSubset(of: flags), "\(keys.subtracting(flags))")
        #expect(object["learning-rate"] as? Double == TrainingConfiguration().schedule.base)
        #expect(object["warmup-steps"] as? Int == 2 && object["lr-schedule"] as? String == "cosine")
    }
}

extension SettingsTests {
    @Test("the README's table of the flags most runs need shows each flag's default as its descriptor does")
    func readmeDefaults() throws {
        let table = try run(executable, ["settings"], in: directory).standardOutput
        var defaults: [String: String] = [:]  // flag → default, from `backprop settings`
        for line in table.split(separator: "\n") where line.hasPrefix("| `--") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            defaults[cells[1].trimmingCharacters(in: CharacterSet(charactersIn: "`"))] = cells[2].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
        }
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "## The flags most runs need").dropFirst().first)
        var checked = 0
        for line in section.split(separator: "\n").prefix(while: { !$0.hasPrefix("## ") }) where line.hasPrefix("| `--") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            let flags = cells[1].components(separatedBy: "`, `").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "`")) }
            let shown = cells[2].components(separatedBy: "`, `").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "`")) }
            for (flag, value) in zip(flags, shown) where !value.isEmpty {
                let name = String(flag.prefix { $0 != " " })
                let expected = try #require(defaults[name], "\(name) has no descriptor")
                // The README may shorten a default's words ("active cores" for "the active cores").
                #expect(expected == value || expected.hasPrefix(value) || expected.hasSuffix(value), "\(name): README \(value), descriptor \(expected)")
                checked += 1
            }
        }
        #expect(checked >= 8)
    }
}
