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

    public var description: String {
        switch self {
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
