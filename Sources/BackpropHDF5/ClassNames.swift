import BackpropIO
import Foundation

/// The names of a classifier's classes (Fashion-MNIST's "T-shirt/top", …),
/// kept beside the data: a root attribute `class_names` of a dataset file and
/// an attribute of a checkpoint's /data group, each a JSON array of strings
/// (h5py reads it with `json.loads(f.attrs["class_names"])`).
public enum ClassNames {
    public static let attribute = "class_names"
    /// Fashion-MNIST's ten classes, in label order.
    public static let fashionMNIST = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                                      "Ankle boot"]
    /// At most this many names, each at most `lengthLimit` characters.
    public static let countLimit = 256, lengthLimit = 100

    /// Why `names` cannot be class names, or nil: 1…256 distinct, non-empty
    /// names of at most 100 characters without control characters.
    public static func problem(_ names: [String]) -> String? {
        guard (1...countLimit).contains(names.count) else { return "names \(names.count) classes; 1 to \(countLimit) may be named" }
        for name in names {
            guard !name.isEmpty, name.count <= lengthLimit else { return "holds a name that is empty or longer than \(lengthLimit) characters" }
            guard !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                return "holds a name with a control character"
            }
        }
        guard Set(names).count == names.count else { return "names a class twice" }
        return nil
    }

    /// The names stored as attribute `class_names` of `object`, or nil if it has none.
    /// - Throws: `StorageError.invalidContent` for anything but a valid JSON array of names.
    public static func read(from file: HDF5File, object: String) throws(StorageError) -> [String]? {
        guard try file.hasAttribute(attribute, of: object) else { return nil }
        let text = try file.stringAttribute(attribute, of: object)
        let where_ = "attribute '\(attribute)' of \(object)"
        guard let data = text.data(using: .utf8), let names = try? JSONDecoder().decode([String].self, from: data) else {
            throw .invalidContent(path: file.path, object: where_, reason: "is not a JSON array of strings")
        }
        if let problem = problem(names) { throw .invalidContent(path: file.path, object: where_, reason: problem) }
        return names
    }

    /// Stores `names` as attribute `class_names` of `object` (nothing for nil).
    public static func write(_ names: [String]?, to file: HDF5File, object: String) throws(StorageError) {
        guard let names else { return }
        guard let data = try? JSONEncoder().encode(names) else { throw .io(path: file.path, reason: "cannot encode the class names") }
        try file.setAttribute(attribute, String(decoding: data, as: UTF8.self), on: object)
    }
}
