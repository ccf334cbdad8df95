import BackpropTestSupport
import Foundation
import Testing

/// Issue 54, class 7: what README.md and docs/ say to type is what the
/// program takes. Every `backprop COMMAND …` they show (in code blocks and
/// inline code) names a command that exists, and every `--flag` after it is
/// one of that command's flags (or the command's `--help`). The cases come
/// from the documents: a stale flag anywhere fails here, by file and line.
/// (docs/performance-log.md is left out: a dated log keeps the commands of its day.)
struct DocumentedCommandsTests {
    let directory = temporaryDirectory("documented")
    let executable = backpropExecutable()
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// One command a document shows: where, the command's words, and the flags given to it.
    struct Shown: CustomStringConvertible {
        let place: String
        let command: [String]
        let flags: [String]
        var description: String { "\(place): backprop \(command.joined(separator: " ")) \(flags.joined(separator: " "))" }
    }

    /// Every `backprop …` of README.md and docs/*.md, up to the end of its code span, line, pipe or chained command.
    static func shown() throws -> [Shown] {
        let documents = ["README.md"] + (try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("docs").path))
            .filter { $0.hasSuffix(".md") && $0 != "performance-log.md" }.sorted().map { "docs/" + $0 }
        var found: [Shown] = []
        for document in documents {
            let text = try String(contentsOf: root.appendingPathComponent(document), encoding: .utf8)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                for match in line.matches(of: /(?:^|[\s`\/(])backprop ([a-z][a-z-]*)((?:[^`|;&#)]|\\\|)*)/) {
                    let words = match.2.split(separator: " ").map(String.init)
                    var command = [String(match.1)]
                    if command == ["import"], let kind = words.first, kind.wholeMatch(of: /[a-z][a-z-]*/) != nil { command.append(kind) }
                    let flags = words.compactMap { word -> String? in
                        guard let flag = word.firstMatch(of: /^\[?(--[a-z][a-z0-9-]*)/)?.1 else { return nil }
                        return String(flag)
                    }
                    found.append(Shown(place: "\(document):\(number + 1)", command: command, flags: flags))
                }
            }
        }
        return found
    }

    @Test("every backprop command the documents show exists, with the flags they give it")
    func commandsAndFlags() throws {
        let shown = try Self.shown()
        #expect(shown.count > 50, "\(shown.count) commands found")
        var helps: [[String]: (status: Int32, text: String)] = [:]
        for example in shown {
            if helps[example.command] == nil {
                let result = try run(executable, example.command + ["--help"], in: directory)
                // An unknown subcommand's --help prints the parent's help: require the command's own usage line.
                let own = result.standardOutput.contains("USAGE: backprop \(example.command.joined(separator: " "))")
                helps[example.command] = (own ? result.status : 1, result.standardOutput)
            }
            let help = helps[example.command]!
            #expect(help.status == 0, "\(example): no such command")
            for flag in example.flags where flag != "--help" {
                let inverse = flag.hasPrefix("--no-") ? "--" + flag.dropFirst(5) : flag
                #expect(help.text.contains(flag + " ") || help.text.contains(flag + "\n") || help.text.contains(flag + "/")
                        || help.text.contains("/\(flag)") || help.text.contains(flag + ",") || help.text.contains(inverse + "/"),
                        "\(example): \(flag) is not a flag of backprop \(example.command.joined(separator: " "))")
            }
        }
    }
}
