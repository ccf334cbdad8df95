import BackpropIO
import CHDF5Shim

// The attributes of a file's objects: strings and numbers, read and written
// with the same checks as datasets (`HDF5File.check`, one handle per object).
extension HDF5File {
    func openObject(_ object: String) throws(StorageError) -> Handle {
        if object != "/", !(try exists(object)) { throw .missingObject(path: path, object: object) }
        return try handle("H5Oopen", object, close: H5Oclose) { H5Oopen(file.id, object, propertiesDefault) }
    }

    /// Whether `object` exists and carries attribute `name`.
    /// - Throws: `.call` when the file cannot say.
    public func hasAttribute(_ name: String, of object: String = "/") throws(StorageError) -> Bool {
        if object != "/", !(try exists(object)) { return false }
        return try attributeExists(name, on: try openObject(object), object)
    }

    /// H5Aexists, checked.
    private func attributeExists(_ name: String, on target: Handle, _ object: String) throws(StorageError) -> Bool {
        try check(H5Aexists(target.id, name), "H5Aexists", "attribute '\(name)' of \(object)") > 0
    }

    private func openAttribute(_ name: String, of object: String) throws(StorageError) -> Handle {
        let target = try openObject(object)
        guard try attributeExists(name, on: target, object) else {
            throw .missingObject(path: path, object: "attribute '\(name)' of \(object)")
        }
        return try handle("H5Aopen", "\(object)@\(name)", close: H5Aclose) { H5Aopen(target.id, name, propertiesDefault) }
    }

    /// Sets a numeric attribute (a scalar) on `object`.
    public func setAttribute<T: HDF5Element>(_ name: String, _ value: T, on object: String = "/") throws(StorageError) {
        let target = try openObject(object)
        let label = "\(object)@\(name)"
        let space = try handle("H5Screate", label, close: H5Sclose) { H5Screate(H5S_SCALAR) }
        let attribute = try handle("H5Acreate2", label, close: H5Aclose) {
            H5Acreate2(target.id, name, T.nativeType, space.id, propertiesDefault, propertiesDefault)
        }
        var copy = value
        try check(H5Awrite(attribute.id, T.nativeType, &copy), "H5Awrite", label)
    }

    /// Sets a string attribute (variable-length UTF-8, as h5py writes them).
    public func setAttribute(_ name: String, _ value: String, on object: String = "/") throws(StorageError) {
        let target = try openObject(object)
        let label = "\(object)@\(name)"
        // Fixed-length UTF-8, null-terminated: variable-length strings live in
        // the global heap, which this reader refuses (see `stringAttribute`).
        let bytes = Array(value.utf8) + [0]
        let type = try handle("H5Tcopy", label, close: H5Tclose) { H5Tcopy(chdf5_c_s1()) }
        try check(H5Tset_size(type.id, bytes.count), "H5Tset_size", label)
        try check(H5Tset_cset(type.id, H5T_CSET_UTF8), "H5Tset_cset", label)
        let space = try handle("H5Screate", label, close: H5Sclose) { H5Screate(H5S_SCALAR) }
        let attribute = try handle("H5Acreate2", label, close: H5Aclose) {
            H5Acreate2(target.id, name, type.id, space.id, propertiesDefault, propertiesDefault)
        }
        try check(bytes.withUnsafeBytes { H5Awrite(attribute.id, type.id, $0.baseAddress) }, "H5Awrite", label)
    }

    /// Reads a scalar numeric attribute, converting integer or float storage to `T`
    /// when the conversion is exact in kind (ints to ints, floats to floats).
    public func attribute<T: HDF5Element>(_ name: String, of object: String = "/", as _: T.Type = T.self) throws(StorageError) -> T {
        let attribute = try openAttribute(name, of: object)
        let label = "attribute '\(name)' of \(object)"
        let type = try handle("H5Aget_type", label, close: H5Tclose) { H5Aget_type(attribute.id) }
        guard try typeInfo(type, label).typeClass == T.typeClass else {
            throw .wrongType(path: path, object: label, expected: T.typeName, found: try typeName(type, label))
        }
        let space = try handle("H5Aget_space", label, close: H5Sclose) { H5Aget_space(attribute.id) }
        guard try check(H5Sget_simple_extent_npoints(space.id), "H5Sget_simple_extent_npoints", label) == 1 else {
            throw .wrongShape(path: path, object: label, expected: "a single value", found: "several values")
        }
        var value = T.zero
        try check(H5Aread(attribute.id, T.nativeType, &value), "H5Aread", label)
        return value
    }

    /// Reads a scalar fixed-length string attribute; a variable-length one is refused unread (below).
    public func stringAttribute(_ name: String, of object: String = "/") throws(StorageError) -> String {
        let attribute = try openAttribute(name, of: object)
        let label = "attribute '\(name)' of \(object)"
        let type = try handle("H5Aget_type", label, close: H5Tclose) { H5Aget_type(attribute.id) }
        guard try typeInfo(type, label).typeClass == H5T_STRING else {
            throw .wrongType(path: path, object: label, expected: "string", found: try typeName(type, label))
        }
        let space = try handle("H5Aget_space", label, close: H5Sclose) { H5Aget_space(attribute.id) }
        guard try check(H5Sget_simple_extent_npoints(space.id), "H5Sget_simple_extent_npoints", label) == 1 else {
            throw .wrongShape(path: path, object: label, expected: "a single string", found: "several values")
        }
        // Variable-length strings are read from the global heap, where libhdf5
        // 1.10.8 can loop forever on a crafted file (found by the fuzzer:
        // Fuzz/regressions/global-heap-hang.h5). Backprop writes fixed-length
        // strings and reads nothing else.
        guard try check(H5Tis_variable_str(type.id), "H5Tis_variable_str", label) == 0 else {
            throw .wrongType(path: path, object: label, expected: "a fixed-length string (in h5py: numpy.bytes_(text))",
                             found: "a variable-length string")
        }
        let size = try typeInfo(type, label).size
        guard size < 1 << 20 else {
            throw .invalidContent(path: path, object: label, reason: "declares a string of \(size) bytes")
        }
        var bytes = [UInt8](repeating: 0, count: size + 1)
        try check(H5Aread(attribute.id, type.id, &bytes), "H5Aread", label)
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}
