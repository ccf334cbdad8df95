import ArgumentParser
import Foundation
import BackpropConfig

/// `--config FILE` (see `SettingsFile`): the file's settings become flags
/// placed before the command line's own, so flags given there win.
enum ConfigFile {
    /// `arguments` with each `--config FILE` replaced by the file's flags,
    /// moved to just after the subcommand.
    static func expand(_ arguments: [String]) throws -> [String] {
        // A sweep's --config is a sweep file (`Sweep`), read by the sweep.
        guard arguments.first(where: { !$0.hasPrefix("-") }) != Sweep.configuration.commandName else { return arguments }
        guard let given = try find(in: arguments) else { return arguments }
        guard let path = given.path else { throw ValidationError("--config needs a file.") }
        var rest = arguments
        rest.removeSubrange(given.arguments)
        let flags = try self.flags(from: path, for: OptionTable.rows(for: rest))
        // After the subcommand name (the first argument that is not a flag).
        let position = rest.firstIndex { !$0.hasPrefix("-") }.map { $0 + 1 } ?? 0
        rest.insert(contentsOf: flags, at: position)
        return rest
    }

    /// The flags a configuration file stands for, in key order, each value
    /// checked against the type of the option it sets (`rows`, the command's options).
    static func flags(from path: String, for rows: [OptionRow] = []) throws -> [String] {
        do {
            return try SettingsFile.flags(from: path) { key in rows.first { $0.key == key }?.type }
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The settings' keys as flags ("--learning-rate"), for naming the file
    /// in an error about one of them.
    static func configuredFlags(_ arguments: [String]) -> (path: String, flags: [String])? {
        guard let given = try? find(in: arguments), let path = given.path, let flags = try? flags(from: path) else { return nil }
        return (path, flags)
    }

    /// Where `--config FILE` (or `--config=FILE`) is in `arguments`: the
    /// file (nil when the flag ends the line) and the arguments it takes.
    /// - Throws: `ValidationError` when it is given more than once.
    private static func find(in arguments: [String]) throws -> (path: String?, arguments: Range<Int>)? {
        let isConfig = { (argument: String) in argument == "--config" || argument.hasPrefix("--config=") }
        guard let index = arguments.firstIndex(where: isConfig) else { return nil }
        guard arguments.filter(isConfig).count == 1 else {
            throw ValidationError("--config is given more than once; give one file (flags on the command line override it).")
        }
        if arguments[index].hasPrefix("--config=") { return (String(arguments[index].dropFirst("--config=".count)), index..<(index + 1)) }
        return index + 1 < arguments.count ? (arguments[index + 1], index..<(index + 2)) : (nil, index..<(index + 1))
    }
}
