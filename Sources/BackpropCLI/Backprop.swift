import ArgumentParser
import BackpropCore
import BackpropHDF5
import BackpropIO
import BackpropOpenBLAS
import Foundation

/// The `backprop` command: trains multi-layer perceptrons by backpropagation.
@main
struct Backprop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backprop",
        abstract: "Train multi-layer perceptrons by backpropagation, data-parallel on all cores.",
        version: Checkpoint.programVersion,
        subcommands: [Train.self, Evaluate.self, Predict.self, ExportModel.self, ImportData.self, Inspect.self, GradientCheck.self, Bench.self, Privacy.self, Generate.self, Rechunk.self, Sweep.self, Ensemble.self, Teach.self,
                      SettingsTable.self]
    )

    /// Parses and runs a subcommand. Help and version go to standard output;
    /// every error is one line on standard error ("error: …", naming the file
    /// or flag) and a non-zero exit: 64 for bad flags, 1 for everything else.
    static func main() {
        do {
            // A BACKPROP_KERNEL that names no path this CPU runs is refused by every command.
            _ = try KernelChoice.auto.resolved()
            var command = try parseAsRoot(parsedForm(Array(CommandLine.arguments.dropFirst())))
            // Every command, the readers of untrusted files among them, runs under the memory cap.
            try setUp()
            try command.run()
            // A command whose output could not be written has failed
            // (`backprop inspect FILE > /dev/full`): flush it while the
            // error can still be reported.
            if fflush(nil) != 0 {
                printError("error: cannot write to standard output (\(String(cString: strerror(errno)))).")
                throw ExitCode.failure
            }
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
            } else {
                // One line, always: the parser lists an enum's choices on lines of their own.
                let lines = self.message(for: error).split(separator: "\n").map {
                    $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "- ", with: "", options: .anchored)
                }
                var message = lines.first.map { first in
                    lines.count > 1 ? first + " " + lines.dropFirst().joined(separator: ", ") : first
                } ?? ""
                // Core's errors name settings in words; here they name the flags.
                if let error = error as? TrainingError { message = error.description(naming: Settings.flag) }
                if let error = error as? StorageError { message = error.description(naming: Settings.flag) }
                // An unknown option, or a bad value, that came from --config: name the file and its key.
                let arguments = Array(CommandLine.arguments.dropFirst())
                if let (path, flags) = ConfigFile.configuredFlags(arguments) {
                    if let flag = flags.first(where: { $0.hasPrefix("--") && message.hasPrefix("Unknown option '\($0)'") }) {
                        message = "\(path): '\(flag.dropFirst(2))' is not a setting of this command (\(message))"
                    } else if let (flag, value) = zip(flags, flags.dropFirst()).first(where: { flag, value in
                        message.contains("'\(flag) <") && message.contains("'\(value)'")
                    }) {
                        let key = String(flag.dropFirst(2))
                        let expected = OptionTable.rows(for: arguments).first { $0.key == key }?.type.map { "expected \($0), " } ?? ""
                        message = "\(path): key \"\(key)\": \(expected)found \"\(value)\" (\(message))"
                    }
                }
                if !message.isEmpty { printError("error: " + message) }
            }
            exit(withError: code == .success ? nil : ExitCode(code.rawValue))
        }
    }

    /// `arguments` as the parser takes them, wherever they come from (the
    /// command line, a sweep's trial): each `--config FILE` expanded, and a
    /// negative number joined to its flag (`--lr-gamma=-1`).
    static func parsedForm(_ arguments: [String]) throws -> [String] {
        OptionTable.joiningNegativeValues(try ConfigFile.expand(arguments))
    }

    /// Start-up of every subcommand, before it runs: the memory cap
    /// (`BACKPROP_MEMORY_LIMIT_MB`, refused by name when malformed); BLAS's own threads off (our
    /// workers own the cores); a write beyond the file-size limit fails with
    /// EFBIG, cleanly, instead of killing the process with SIGXFSZ.
    static func setUp() throws {
        if let problem = MemoryLimit.problem { throw ValidationError(problem) }
        BLAS.useSingleThread()
        signal(SIGXFSZ, SIG_IGN)
        MemoryLimit.apply()
    }
}

extension Activation: ExpressibleByArgument {}
extension Loss: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension Initialization: ExpressibleByArgument {}
extension Reduction: ExpressibleByArgument {}
extension Monitor: ExpressibleByArgument {}
extension Sampling: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

/// A dataset file's split, for `evaluate` and `predict` (`--split`).
enum DatasetSplit: String, CaseIterable, ExpressibleByArgument {
    case test, train, validation
}

/// A comma-separated list of layer widths, e.g. "784,256,128,10".
struct LayerSizes: ExpressibleByArgument, Sendable {
    let sizes: [Int]

    init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false)
        let sizes = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard sizes.count == parts.count, sizes.count >= 2, sizes.allSatisfy({ $0 > 0 }) else { return nil }
        self.sizes = sizes
    }

    var defaultValueDescription: String { sizes.map(String.init).joined(separator: ",") }
}

/// A list of numbers, "x" or "x1,x2,…" (`--dropout`'s rates, `--class-weights`).
struct NumberList: ExpressibleByArgument, Sendable {
    let values: [Double]

    init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false)
        let rates = parts.compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard rates.count == parts.count, !rates.isEmpty else { return nil }
        values = rates
    }
}

extension Augmentation {
    /// `--augment`'s value, or an error that says what the flag takes.
    static func parsed(_ text: String) throws -> Augmentation {
        guard let augmentation = Augmentation(parsing: text) else {
            throw ValidationError("give shift=S (S = 1 … 1048576 pixels), flip, "
                                  + "both joined by a comma (shift=2,flip), or none.")
        }
        return augmentation
    }
}

/// Writes one line to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Formats a count with thousands separators ("52,431").
func grouped(_ value: Double) -> String {
    let digits = String(Int(value.rounded()))
    var result = ""
    for (i, character) in digits.reversed().enumerated() {
        if i > 0, i % 3 == 0, character != "-" { result.append(",") }
        result.append(character)
    }
    return String(result.reversed())
}
