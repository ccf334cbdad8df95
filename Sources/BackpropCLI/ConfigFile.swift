import ArgumentParser
import Foundation
import BackpropConfig

/// `--config FILE` (see `SettingsFile`): the file's settings become flags
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
        do {
            return try SettingsFile.flags(from: path)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The settings' keys as flags ("--learning-rate"), for naming the file
    /// in an error about one of them.
    static func configuredFlags(_ arguments: [String]) -> (path: String, flags: [String])? {
        guard let index = arguments.firstIndex(where: { $0 == "--config" || $0.hasPrefix("--config=") }) else { return nil }
        let path = arguments[index].hasPrefix("--config=") ? String(arguments[index].dropFirst("--config=".count))
            : index + 1 < arguments.count ? arguments[index + 1] : ""
        guard let flags = try? flags(from: path) else { return nil }
        return (path, flags)
    }
}
