/// Everything that can go wrong reading or writing a file. Each case names
/// the file and, where there is one, the object inside it.
public enum StorageError: Error, Equatable, CustomStringConvertible {
    /// The file does not exist.
    case missingFile(path: String)
    /// The file exists but is not an HDF5 file (or is damaged beyond opening).
    case notHDF5(path: String)
    /// An HDF5 C call failed.
    case call(function: String, path: String, object: String)
    /// A dataset, group or attribute that must be there is not.
    case missingObject(path: String, object: String)
    /// The object has another element type than expected.
    case wrongType(path: String, object: String, expected: String, found: String)
    /// The object has another number of dimensions than expected.
    case wrongRank(path: String, object: String, expected: Int, found: Int)
    /// Sizes that must agree do not.
    case wrongShape(path: String, object: String, expected: String, found: String)
    /// The file's content is well-formed HDF5 but not acceptable.
    case invalidContent(path: String, object: String, reason: String)
    /// A file of another kind (e.g. a dataset given where a checkpoint is expected).
    case wrongFormat(path: String, found: String, expected: String)
    /// A checkpoint format version this build cannot read.
    case unsupportedVersion(path: String, found: Int, supported: Int)
    /// Reading or writing the file system failed.
    case io(path: String, reason: String)
    /// The file's content is refused, and what the user can do about it is a
    /// setting (`Advice`) that the caller names (`description(naming:)`).
    case refused(path: String, object: String, reason: String, advice: Advice)

    /// What a refusal advises, as settings the library knows only in words:
    /// the command line passes its flags to `description(naming:)`.
    public enum Advice: Sendable, Equatable {
        /// A run directory that already holds a run: resume it, or choose another directory.
        case resumeOrAnotherRunDirectory(String)
        /// Real-valued targets: import them as a regression task.
        case regressionTask
        /// A value that is not a byte, with features forced to bytes: store them as floats.
        case floatFeatures

        /// The advice in words, with `name`'s name for each setting it mentions.
        func words(_ name: (Setting) -> String?) -> String {
            func call(_ setting: Setting, _ words: String) -> String { name(setting) ?? words }
            switch self {
            case .resumeOrAnotherRunDirectory(let path):
                return "continue it with \(call(.resume, "a resume of")) \(path), or give another \(call(.runDirectory, "run directory"))"
            case .regressionTask:
                return "real-valued targets need \(call(.regressionTask, "the regression task"))"
            case .floatFeatures:
                return "use \(call(.automaticFeatures, "automatic")) or \(call(.floatFeatures, "float")) feature storage"
            }
        }
    }

    /// The settings an `Advice` can name.
    public enum Setting: Sendable, CaseIterable {
        case resume, runDirectory, regressionTask, automaticFeatures, floatFeatures
    }

    public var description: String { description(naming: { _ in nil }) }

    /// The message, with the flag (or other name) `name` gives each setting its advice mentions.
    public func description(naming name: (Setting) -> String?) -> String {
        switch self {
        case .refused(let path, let object, let reason, let advice):
            return "\(path): \(object.isEmpty ? "" : object + ": ")\(reason); \(advice.words(name))."
        case .missingFile(let path):
            return "\(path): no such file."
        case .notHDF5(let path):
            return "\(path): not an HDF5 file (or it is truncated or damaged)."
        case .call(let function, let path, let object):
            return "\(path): \(function) failed on \(object); the file may be damaged."
        case .missingObject(let path, let object):
            return "\(path): \(object) is missing."
        case .wrongType(let path, let object, let expected, let found):
            return "\(path): \(object) holds \(found), expected \(expected)."
        case .wrongRank(let path, let object, let expected, let found):
            return "\(path): \(object) has \(found) dimension\(found == 1 ? "" : "s"), expected \(expected)."
        case .wrongShape(let path, let object, let expected, let found):
            return "\(path): \(object) has shape \(found), expected \(expected)."
        case .invalidContent(let path, let object, let reason):
            return "\(path): \(object): \(Self.sentence(reason))"
        case .wrongFormat(let path, let found, let expected):
            return "\(path): is a \(found) file, expected a \(expected) file."
        case .unsupportedVersion(let path, let found, let supported):
            if found < supported {
                return "\(path): checkpoint format version \(found) is older than this build's \(supported) and lacks the optimizer and data-order state needed to resume; retrain, or evaluate it with backprop 0.1."
            }
            return "\(path): checkpoint format version \(found); this build reads version \(supported). Use a newer build of backprop."
        case .io(let path, let reason):
            return "\(path): \(Self.sentence(reason))"
        }
    }

    /// `reason` ended by one full stop (a reason may quote an error that has its own).
    private static func sentence(_ reason: String) -> String {
        reason.hasSuffix(".") ? reason : reason + "."
    }
}
