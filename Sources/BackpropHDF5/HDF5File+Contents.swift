import BackpropIO
import CHDF5Shim

/// One entry of a file's table of contents, for `backprop inspect`.
public struct HDF5Entry: Sendable, Equatable {
    /// The absolute path, e.g. "/train/x".
    public let name: String
    /// "group", "dataset uint8 [1000, 784]", "soft link", "external link", ….
    public let description: String
    /// Attribute names and short renderings of their values.
    public let attributes: [(name: String, value: String)]

    public static func == (a: HDF5Entry, b: HDF5Entry) -> Bool {
        a.name == b.name && a.description == b.description && a.attributes.map(\.name) == b.attributes.map(\.name)
    }
}

extension HDF5File {
    /// Every link in the file, depth first in name order, with what it points
    /// at. Soft and external links are named, never followed; nothing but
    /// headers and attributes is read.
    /// - Throws: `.call` when the walk itself fails (a damaged file).
    public func contents() throws(StorageError) -> [HDF5Entry] {
        final class Names { var links: [(String, H5L_type_t)] = [] }
        let names = Names()
        let visit: H5L_iterate_t = { _, name, info, context in
            guard let name, let info, let context else { return -1 }
            Unmanaged<Names>.fromOpaque(context).takeUnretainedValue().links.append(("/" + String(cString: name), info.pointee.type))
            return 0
        }
        let status = withExtendedLifetime(names) {
            H5Lvisit(file.id, H5_INDEX_NAME, H5_ITER_INC, visit, Unmanaged.passUnretained(names).toOpaque())
        }
        try check(status, "H5Lvisit", "/")
        var entries = [HDF5Entry(name: "/", description: "group", attributes: attributes(of: "/"))]
        for (name, type) in names.links {
            switch type {
            case H5L_TYPE_HARD:
                let kind = (try? objectInfo(name).type) ?? H5O_TYPE_UNKNOWN
                entries.append(HDF5Entry(name: name, description: kind == H5O_TYPE_DATASET ? describeDataset(name) : kind == H5O_TYPE_GROUP ? "group" : "other object",
                                         attributes: attributes(of: name)))
            case H5L_TYPE_SOFT:
                entries.append(HDF5Entry(name: name, description: "soft link (not followed)", attributes: []))
            case H5L_TYPE_EXTERNAL:
                entries.append(HDF5Entry(name: name, description: "external link (not followed)", attributes: []))
            default:
                entries.append(HDF5Entry(name: name, description: "user-defined link (not followed)", attributes: []))
            }
        }
        return entries
    }

    /// "dataset float32 [256, 784]", with the storage when it is not in the file.
    private func describeDataset(_ name: String) -> String {
        guard let dataset = try? handle("H5Dopen2", name, close: H5Dclose, { H5Dopen2(file.id, name, hid_t(H5P_DEFAULT)) }) else {
            return "dataset (cannot be opened)"
        }
        let type = (try? handle("H5Dget_type", name, close: H5Tclose) { H5Dget_type(dataset.id) }).flatMap { try? typeName($0, name) } ?? "unknown type"
        let shape = (try? dimensions(dataset, name)).map { "[" + $0.map(String.init).joined(separator: ", ") + "]" } ?? "[?]"
        var storage = ""
        if let properties = try? handle("H5Dget_create_plist", name, close: H5Pclose, { H5Dget_create_plist(dataset.id) }) {
            let layout = H5Pget_layout(properties.id)
            if (try? check(layout.rawValue, "H5Pget_layout", name)) != nil, layout == H5D_VIRTUAL { storage = ", virtual" }
            if ((try? check(H5Pget_external_count(properties.id), "H5Pget_external_count", name)) ?? 0) > 0 { storage = ", external storage" }
        }
        return "dataset \(type) \(shape)\(storage)"
    }

    /// The object's attributes (a listing: what cannot be read is left out), numeric and fixed-length string values rendered
    /// (long ones cut), anything else by its type.
    private func attributes(of object: String) -> [(name: String, value: String)] {
        guard let target = try? openObject(object) else { return [] }
        var info = H5O_info_t()
        guard (try? check(H5Oget_info2(target.id, &info, UInt32(H5O_INFO_NUM_ATTRS)), "H5Oget_info2", object)) != nil,
              info.num_attrs < 1000 else { return [] }
        var result: [(String, String)] = []
        for index in 0..<info.num_attrs {
            let label = "attribute \(index) of \(object)"
            let size = (try? check(H5Aget_name_by_idx(target.id, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, hid_t(H5P_DEFAULT)),
                                   "H5Aget_name_by_idx", label)) ?? 0
            guard size > 0, size < 4096 else { continue }
            var buffer = [CChar](repeating: 0, count: size + 1)
            guard (try? check(H5Aget_name_by_idx(target.id, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, size + 1, hid_t(H5P_DEFAULT)),
                              "H5Aget_name_by_idx", label)) != nil else { continue }
            let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            result.append((name, renderAttribute(name, of: object)))
        }
        return result
    }

    private func renderAttribute(_ name: String, of object: String) -> String {
        if let text = try? stringAttribute(name, of: object) {
            return text.count > 72 ? "\"" + text.prefix(69) + "…\"" : "\"\(text)\""
        }
        if let value = try? attribute(name, of: object, as: Double.self) { return "\(value)" }
        // Read as Int64, an unsigned value past Int64.max would be clamped to it (a fingerprint, say).
        if let value = try? attribute(name, of: object, as: UInt64.self), value > UInt64(Int64.max) { return "\(value)" }
        if let value = try? attribute(name, of: object, as: Int64.self) { return "\(value)" }
        return "(not shown: a variable-length string, an array or another type)"
    }
}
