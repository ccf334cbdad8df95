import BackpropCore
import BackpropIO

// The declarations a file format's layout is made of: every attribute and
// dataset, its type, whether older files may lack it, and what it holds.
// A format's writer and reader go through them (presence and type checked
// the same way for every attribute), and its table in docs/file-formats.md
// is generated from them (`markdownTable`; tests compare the two). The
// checkpoint (`CheckpointSchema`) and the teacher file (`TeacherSchema`) are
// declared so.

/// A value a file's attribute holds: a string or one HDF5 number.
protocol AttributeValue: Sendable {
    /// The type as the table shows it ("string", "int64").
    static var schemaType: String { get }
    func write(_ name: String, on object: String, to file: HDF5File) throws(StorageError)
    static func read(_ name: String, of object: String, from file: HDF5File) throws(StorageError) -> Self
}

extension String: AttributeValue {
    static var schemaType: String { "string" }
    func write(_ name: String, on object: String, to file: HDF5File) throws(StorageError) { try file.setAttribute(name, self, on: object) }
    static func read(_ name: String, of object: String, from file: HDF5File) throws(StorageError) -> String {
        try file.stringAttribute(name, of: object)
    }
}

extension AttributeValue where Self: HDF5Element {
    static var schemaType: String { typeName }
    func write(_ name: String, on object: String, to file: HDF5File) throws(StorageError) { try file.setAttribute(name, self, on: object) }
    static func read(_ name: String, of object: String, from file: HDF5File) throws(StorageError) -> Self {
        try file.attribute(name, of: object, as: Self.self)
    }
}

extension Int64: AttributeValue {}
extension UInt64: AttributeValue {}
extension Double: AttributeValue {}

/// When an object is in a file of its format.
enum Presence: Sendable, Equatable {
    /// In every file of the format.
    case always
    /// In files of this program version and later; older ones lack it.
    case since(String)
    /// Only when what it describes exists (said in the words given).
    case when(String)

    var words: String {
        switch self {
        case .always: return ""
        case .since(let version): return " (since \(version))"
        case .when(let condition): return " (\(condition))"
        }
    }
}

/// One row of a schema: an object (an attribute's group or dataset, or a
/// dataset's path, with placeholders such as "<i>" for a layer), the
/// attribute's name (nil for a dataset), its type, when it is there, and what it holds.
struct SchemaEntry: Sendable {
    let object: String
    let name: String?
    let type: String
    let presence: Presence
    let meaning: String
}

/// An attribute of an object of a file, of type `Value`.
struct FileAttribute<Value: AttributeValue>: Sendable {
    let entry: SchemaEntry
    /// The object it is on; "<i>" stands for a layer's index.
    var object: String { entry.object }
    let name: String
    var presence: Presence { entry.presence }

    init(_ object: String, _ name: String, _ meaning: String, _ presence: Presence = .always) {
        self.name = name
        entry = SchemaEntry(object: object, name: name, type: Value.schemaType, presence: presence, meaning: meaning)
    }

    /// The object for layer `layer` ("/model/layers/2"), or the object itself.
    func path(layer: Int? = nil) -> String {
        layer.map { object.replacingOccurrences(of: "<i>", with: "\($0)") } ?? object
    }

    func write(_ value: Value, layer: Int? = nil, to file: HDF5File) throws(StorageError) {
        try value.write(name, on: path(layer: layer), to: file)
    }

    /// The value; the attribute must be there.
    /// - Throws: `StorageError.missingObject` or `.wrongType` naming it.
    func read(layer: Int? = nil, from file: HDF5File) throws(StorageError) -> Value {
        try Value.read(name, of: path(layer: layer), from: file)
    }

    /// The value, or nil where the file lacks it, as a file of an older version (`.since`) or without what it describes (`.when`) may.
    func readIfPresent(layer: Int? = nil, from file: HDF5File) throws(StorageError) -> Value? {
        precondition(presence != .always, "\(object) \(name) is in every file of its format")
        return try file.hasAttribute(name, of: path(layer: layer)) ? try read(layer: layer, from: file) : nil
    }

    /// The attribute as messages name it: "attribute 'kind' of /optimizer".
    func described(layer: Int? = nil) -> String { "attribute '\(name)' of \(path(layer: layer))" }
}

/// A dataset of a file: its path, type and shape.
struct FileDataset: Sendable {
    let entry: SchemaEntry
    var path: String { entry.object }

    init(_ path: String, _ type: String, _ meaning: String, _ presence: Presence = .always) {
        entry = SchemaEntry(object: path, name: nil, type: type, presence: presence, meaning: meaning)
    }

    /// The path with its placeholders filled in.
    func path(_ fills: [String: String]) -> String {
        fills.reduce(path) { $0.replacingOccurrences(of: "<\($1.key)>", with: $1.value) }
    }
}

/// The Markdown table of a format's `entries` (docs/file-formats.md), in their order.
func markdownTable(_ entries: [SchemaEntry]) -> String {
    var lines = ["| object | attribute | type | holds |", "|---|---|---|---|"]
    for e in entries {
        let cell = { (text: String) in text.replacingOccurrences(of: "|", with: "\\|") }
        lines.append("| `\(cell(e.object))` | \(e.name.map { "`\($0)`" } ?? "(dataset)") | \(cell(e.type)) | \(cell(e.meaning))\(cell(e.presence.words)) |")
    }
    return lines.joined(separator: "\n")
}
