import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// The option groups train and bench share: one declaration per flag, so one
/// help line (its default read from `TrainingConfiguration()`) and one
/// refusal for each bad value, whichever command is given it.
struct OptionsTests {
    let directory = temporaryDirectory("options")
    let executable = backpropExecutable()

    /// The line of `command --help` that describes `flag`, with its wrapped continuation.
    func helpText(_ command: String, _ flag: String) throws -> String {
        let help = try run(executable, [command, "--help"], in: directory).standardOutput
        let lines = help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(flag + " ") }) else { return "" }
        let rest = lines[(start + 1)...].prefix { $0.hasPrefix("                 ") }
        return ([lines[start]] + rest).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }

    @Test("train and bench show the same help for a shared flag, with the default TrainingConfiguration() holds",
          arguments: [("--batch-size", "\(TrainingConfiguration().batchSize)"), ("--shard-size", "\(TrainingConfiguration().shardSize)"),
                      ("--layers", TrainingConfiguration().sizes.map(String.init).joined(separator: ",")),
                      ("--optimizer", TrainingConfiguration().optimizer.kind.rawValue), ("--momentum", "0.9")])
    func sharedHelp(flag: String, defaultValue: String) throws {
        let train = try helpText("train", flag), bench = try helpText("bench", flag)
        #expect(!train.isEmpty && train == bench, "train: \(train)\nbench: \(bench)")
        #expect(train.contains("(default: \(defaultValue))"), "\(train)")
    }

    @Test("a bad value of a shared flag gets the same one-line refusal from train and bench, before anything runs",
          arguments: [(["--batch-size", "0"], "--batch-size: 0 is not a whole number ≥ 1."), (["--shard-size=-3"], "--shard-size: -3 is not a whole number ≥ 1."),
                      (["--layers", "784,0,10"], "--layers"), (["--rmsprop-alpha", "0.5"], "--rmsprop-alpha applies only to --optimizer rmsprop"),
                      (["--optimizer", "adam", "--momentum", "0.5"], "--momentum applies only to"),
                      (["--optimizer", "rmsprop", "--rmsprop-alpha", "1"], "--rmsprop-alpha: 1.0 is not a number in [0, 1).")])
    func sharedRefusals(arguments: [String], message: String) throws {
        let train = try run(executable, ["train", "--data", CLITests.sample] + arguments, in: directory)
        let bench = try run(executable, ["bench", "--data", CLITests.sample] + arguments, in: directory)
        for result in [train, bench] {
            #expect(result.status == 64 && !result.signalled && result.standardError.contains(message)
                    && result.standardError.split(separator: "\n").count == 1, "\(arguments): \(result.standardError)")
        }
        #expect(train.standardError == bench.standardError)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }
}
