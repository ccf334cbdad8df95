import BackpropTestSupport
import Foundation
import Testing

/// Issue 54, class 7: what README.md and docs/ show a command printing is
/// what it prints (as trycmd does for Rust's command-line tools). Every
/// ```console block is run: each `$ backprop …` line in a fresh directory that
/// holds the repository's datasets/ (the block's commands in order, sharing
/// it), and each line shown after it must appear in what the command printed,
/// in order. `…` stands for anything (a line of it alone for lines left out);
/// what a clock or the machine decides — samples/s, seconds, the worker
/// count, a run directory's date — is compared as a placeholder.
///
/// A block marked ```console slow trains the reference model (seconds in
/// release, minutes in a debug build): it runs when BACKPROP_DOC_BINARY names
/// a release binary, as `.ci/run` does.
struct DocumentedOutputTests {
    static let root = DocumentedCommandsTests.root

    /// One command of a console block, and the lines shown after it.
    struct Example: CustomStringConvertible {
        let place: String
        let command: String
        let shown: [String]
        var description: String { "\(place): $ \(command)" }
    }

    /// The console blocks of README.md and docs/*.md (the dated log aside), each as its commands.
    static func blocks() throws -> [(slow: Bool, examples: [Example])] {
        let documents = ["README.md"] + (try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("docs").path))
            .filter { $0.hasSuffix(".md") && $0 != "performance-log.md" }.sorted().map { "docs/" + $0 }
        var blocks: [(slow: Bool, examples: [Example])] = []
        for document in documents {
            let lines = try String(contentsOf: root.appendingPathComponent(document), encoding: .utf8)
                .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            var block: (slow: Bool, examples: [Example])?
            for (number, line) in lines.enumerated() {
                if block == nil {
                    if line.hasPrefix("```console") { block = (line.contains("slow"), []) }
                } else if line.hasPrefix("```") {
                    blocks.append(block!)
                    block = nil
                } else if line.hasPrefix("$ ") {
                    block!.examples.append(Example(place: "\(document):\(number + 1)", command: String(line.dropFirst(2)), shown: []))
                } else if let last = block!.examples.popLast() {
                    block!.examples.append(Example(place: last.place, command: last.command, shown: last.shown + [line]))
                }
            }
        }
        return blocks
    }

    /// A line with what a clock or the machine decides replaced by placeholders.
    static func steady(_ line: String) -> String {
        line.replacing(/[0-9][0-9,]*(\.[0-9]+)? samples\/s/, with: "# samples/s")
            .replacing(/\b[0-9]+\.[0-9]+ s\b/, with: "# s")
            .replacing(/\b[0-9]+ workers?\b/, with: "# workers")
            .replacing(/runs\/[0-9]{8}-[0-9]{6}\//, with: "runs/…/")
    }

    /// Whether `actual` shows `shown`, where `…` stands for anything.
    static func matches(_ actual: String, _ shown: String) -> Bool {
        let parts = steady(shown).components(separatedBy: "…").map(NSRegularExpression.escapedPattern(for:))
        guard let pattern = try? Regex("^" + parts.joined(separator: ".*") + "$") else { return false }
        return steady(actual).wholeMatch(of: pattern) != nil
    }

    @Test("every console block of the documents prints the lines it shows")
    func consoleBlocks() throws {
        let release = ProcessInfo.processInfo.environment["BACKPROP_DOC_BINARY"]
        let binary = release ?? backpropExecutable()
        let blocks = try Self.blocks()
        #expect(blocks.count >= 4 && blocks.contains { $0.slow }, "\(blocks.count) console blocks")
        let bin = temporaryDirectory("documented-bin")
        try? FileManager.default.createSymbolicLink(atPath: "\(bin)/backprop", withDestinationPath: binary)
        let path = bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        for block in blocks where !block.slow || release != nil {
            let directory = temporaryDirectory("documented-output")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            // The repository's datasets, each linked (a command may write beside them).
            let datasets = Self.root.appendingPathComponent("datasets").path
            try FileManager.default.createDirectory(atPath: "\(directory)/datasets", withIntermediateDirectories: true)
            for name in try FileManager.default.contentsOfDirectory(atPath: datasets) {
                try FileManager.default.createSymbolicLink(atPath: "\(directory)/datasets/\(name)", withDestinationPath: "\(datasets)/\(name)")
            }
            for example in block.examples {
                let result = try run("/bin/sh", ["-c", example.command + " 2>&1"], in: directory, environment: ["PATH": path])
                #expect(result.status == 0, "\(example) exited \(result.status): \(result.standardOutput)")
                let printed = result.standardOutput.split(separator: "\n").map(String.init)
                var next = 0
                for line in example.shown where !line.isEmpty && line != "…" {
                    guard let found = printed[next...].firstIndex(where: { Self.matches($0, line) }) else {
                        Issue.record("\(example) does not print, in this order, '\(line)'; it printed:\n\(result.standardOutput)")
                        break
                    }
                    next = found + 1
                }
            }
        }
    }

    @Test("the comparison holds a line to what it shows, the clock's numbers aside")
    func comparison() {
        #expect(Self.matches("epoch 10/10  train loss 0.2687  98,102 samples/s  0.61 s", "epoch 10/10  train loss 0.2687  122,405 samples/s  0.49 s"))
        #expect(!Self.matches("epoch 10/10  train loss 0.2688  98,102 samples/s  0.61 s", "epoch 10/10  train loss 0.2687  122,405 samples/s  0.49 s"))
        #expect(Self.matches("model written to runs/20261207-215506/model.h5", "model written to runs/…/model.h5"))
        #expect(Self.matches("40 batches of 32 per epoch, 16 workers; checkpoints", "40 batches of 32 per epoch, 2 workers; checkpoints"))
        #expect(!Self.matches("parameters 0c20a43980f06018", "parameters 0c20a43980f06017"))
    }
}
