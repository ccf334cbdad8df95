// A small, checked Swift wrapper over the HDF5 C API.
//
// Every C call goes through `check`, which turns a negative return into a
// StorageError naming the C function, the file and the object. Identifiers
// live in `Handle`, which closes them in deinit, so an early throw cannot leak
// one. HDF5's automatic error printing is turned off on the calling thread
// (HDF5 serialises calls behind one lock anyway: do file I/O on one thread).
// Objects are read only when they are plain datasets reached through hard
// links, with contiguous or chunked storage in the file: soft and external
// links, external storage and virtual datasets are refused before any data
// is read, and a header's dimensions are checked against a size limit before
// anything is allocated.
import BackpropIO
import CHDF5Shim
import Foundation
import Glibc

/// H5P_DEFAULT and H5S_ALL import as Int32; the API takes hid_t.
/// HDF5's default property list, for every call that takes one.
let propertiesDefault = hid_t(H5P_DEFAULT)
private let wholeSpace = hid_t(H5S_ALL)

/// An open HDF5 identifier and the function that closes it.
final class Handle {
    let id: hid_t
    private let close: (hid_t) -> herr_t

    init(_ id: hid_t, close: @escaping (hid_t) -> herr_t) {
        self.id = id
        self.close = close
    }

    deinit { _ = close(id) }
}

/// An HDF5 file opened read-only or created for writing.
public final class HDF5File {
    /// The path as the user gave it (for messages).
    public let path: String
    let file: Handle

    /// The most elements one dataset may hold (2³¹): larger headers are refused
    /// before any allocation.
    public static let elementLimit = 1 << 31

    /// The most bytes one read may allocate (`MemoryLimit.perRead`), so that
    /// a header cannot make the reader ask for memory it will not get.
    public static let byteLimit = MemoryLimit.perRead

    /// Where the file is on disk (nil for an image in memory); `path` may name it otherwise in messages.
    let location: String?

    init(path: String, file: Handle, location: String? = nil) {
        self.path = path
        self.file = file
        self.location = location
    }

    /// Opens an existing file for reading.
    /// - Throws: `.missingFile`, `.notHDF5`.
    public static func open(_ path: String) throws(StorageError) -> HDF5File {
        try open(path, reportedAs: path)
    }

    /// Opens `path` for reading, naming it `name` in messages (a temporary file by its final name).
    static func open(_ path: String, reportedAs name: String) throws(StorageError) -> HDF5File {
        chdf5_silence_errors()
        guard FileSystem.exists(path) else { throw .missingFile(path: name) }
        // Either call failing means the bytes are not an HDF5 file libhdf5 can open.
        guard H5Fis_hdf5(path) > 0 else { throw .notHDF5(path: name) }
        let id = H5Fopen(path, chdf5_acc_rdonly(), propertiesDefault)
        guard id >= 0 else { throw .notHDF5(path: name) }
        return HDF5File(path: name, file: Handle(id, close: H5Fclose), location: path)
    }

    /// Opens a file image held in memory (the core driver, no backing
    /// store), read-only; `name` stands for it in messages. For fuzzing and
    /// for files that arrive as bytes.
    /// - Throws: `.notHDF5` when the bytes are not an HDF5 file.
    public static func open(image: [UInt8], name: String) throws(StorageError) -> HDF5File {
        chdf5_silence_errors()
        guard image.count >= 8 else { throw .notHDF5(path: name) }
        let access = try coreDriverAccess(name, increment: 1 << 20)
        // HDF5 copies the image into its own buffer.
        try check(image.withUnsafeBytes { H5Pset_file_image(access.id, UnsafeMutableRawPointer(mutating: $0.baseAddress), $0.count) },
                  "H5Pset_file_image", path: name, object: "/")
        // The core driver refuses an image whose name exists on disk; no path
        // can exist below /dev/null. Failing to open is the bytes' fault.
        let id = H5Fopen("/dev/null/backprop-memory-image", chdf5_acc_rdonly(), access.id)
        guard id >= 0 else { throw .notHDF5(path: name) }
        return HDF5File(path: name, file: Handle(id, close: H5Fclose))
    }

    /// Builds a file in memory with `build` and writes it to `path`
    /// atomically (`FileSystem.writeAtomically`). HDF5 never touches the disk:
    /// its core driver holds the file, and the finished image goes out in one
    /// write(2), so a full disk or a file-size limit is a clean `.io` error
    /// (libhdf5 1.10 can crash when its own writes fail) and `path` is never
    /// half-written.
    /// - Throws: what `build` throws, `.call`, or `.io` from the write.
    public static func createAtomically(
        _ path: String, verify: ((HDF5File) throws(StorageError) -> Void)? = nil,
        _ build: (HDF5File) throws(StorageError) -> Void
    ) throws(StorageError) {
        let image = try inMemory(path) { (file) throws(StorageError) in
            try build(file)
            return try file.image()
        }
        // Read back as a reader will, before anything reaches the disk.
        if let verify { try verify(try open(image: image, name: path)) }
        try FileSystem.writeAtomically(image, to: path)
    }

    /// Runs `body` on a new, empty file that lives only in memory (the core
    /// driver without a backing store), named `path` in messages.
    private static func inMemory<R>(_ path: String, _ body: (HDF5File) throws(StorageError) -> R) throws(StorageError) -> R {
        chdf5_silence_errors()
        // Grow in 1 MiB steps: a checkpoint of the reference model takes a
        // few reallocs. (16 MiB steps saved them, but libhdf5 touches what
        // it allocates: 12 MiB more peak RSS for the default run.)
        let access = try coreDriverAccess(path, increment: 1 << 20)
        // Nothing is read here: a failure is memory, not a damaged file.
        let id = H5Fcreate(path, chdf5_acc_trunc(), propertiesDefault, access.id)
        guard id >= 0 else { throw .io(path: path, reason: "cannot build the file in memory (H5Fcreate failed): \(MemoryLimit.hint)") }
        return try body(HDF5File(path: path, file: Handle(id, close: H5Fclose)))
    }

    /// A file-access property list for the core driver (the file lives in
    /// memory, no backing store), growing in steps of `increment` bytes.
    private static func coreDriverAccess(_ path: String, increment: Int) throws(StorageError) -> Handle {
        let access = Handle(try check(H5Pcreate(chdf5_file_access_class()), "H5Pcreate", path: path, object: "/"), close: H5Pclose)
        try check(H5Pset_fapl_core(access.id, increment, false), "H5Pset_fapl_core", path: path, object: "/")
        return access
    }

    /// The bytes of the whole file as it would be on disk (H5Fget_file_image).
    private func image() throws(StorageError) -> [UInt8] {
        try flush()
        let size = Int(try check(H5Fget_file_image(file.id, nil, 0), "H5Fget_file_image", "/"))
        var copied = -1
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            copied = H5Fget_file_image(file.id, buffer.baseAddress, size)
            count = copied == size ? size : 0
        }
        try check(copied == size ? copied : -1, "H5Fget_file_image", "/")
        return bytes
    }

    /// Writes everything buffered to disk (H5Fflush).
    public func flush() throws(StorageError) {
        try check(H5Fflush(file.id, H5F_SCOPE_GLOBAL), "H5Fflush", "/")
    }

    // MARK: - The checking helper

    /// Returns `result`, or throws `.call` naming `function`, the file and
    /// `object` when it is negative: every HDF5 call's result passes here.
    @discardableResult
    static func check<R: BinaryInteger>(_ result: R, _ function: String, path: String, object: String) throws(StorageError) -> R {
        guard result >= 0 else { throw .call(function: function, path: path, object: object) }
        return result
    }

    /// `check` for this file.
    @discardableResult
    func check<R: BinaryInteger>(_ result: R, _ function: String, _ object: String) throws(StorageError) -> R {
        try HDF5File.check(result, function, path: path, object: object)
    }

    /// The class, size and sign of a stored element type, each call checked.
    func typeInfo(_ type: Handle, _ object: String) throws(StorageError) -> (typeClass: H5T_class_t, size: Int, isSigned: Bool) {
        let typeClass = H5Tget_class(type.id)
        try check(typeClass.rawValue, "H5Tget_class", object)
        // H5Tget_size reports failure as 0.
        let stored = H5Tget_size(type.id)
        let size = try check(stored == 0 ? -1 : Int(stored), "H5Tget_size", object)
        guard typeClass == H5T_INTEGER else { return (typeClass, size, true) }
        let sign = H5Tget_sign(type.id)
        try check(sign.rawValue, "H5Tget_sign", object)
        return (typeClass, size, sign != H5T_SGN_NONE)
    }

    /// Whether the link `name` exists (H5Lexists, checked).
    private func linkExists(_ name: String) throws(StorageError) -> Bool {
        try check(H5Lexists(file.id, name, propertiesDefault), "H5Lexists", name) > 0
    }

    /// Opens an identifier through `open`, wrapped so that it is closed again.
    func handle(
        _ function: String, _ object: String, close: @escaping (hid_t) -> herr_t, _ open: () -> hid_t
    ) throws(StorageError) -> Handle {
        Handle(try check(open(), function, object), close: close)
    }

    // MARK: - Objects

    /// Whether `object` (an absolute path such as "/train/x") exists, checking
    /// each link on the way. Links of any kind count; `openDataset` refuses
    /// all but hard ones.
    /// - Throws: `.call` when a link cannot be read.
    public func exists(_ object: String) throws(StorageError) -> Bool {
        var prefix = ""
        for component in object.split(separator: "/") {
            prefix += "/" + component
            guard try linkExists(prefix) else { return false }
        }
        return true
    }

    func objectInfo(_ object: String) throws(StorageError) -> H5O_info_t {
        var info = H5O_info_t()
        try check(H5Oget_info_by_name1(file.id, object, &info, propertiesDefault), "H5Oget_info_by_name", object)
        return info
    }

    /// Creates `group` and any missing groups above it.
    public func createGroup(_ group: String) throws(StorageError) {
        var prefix = ""
        for component in group.split(separator: "/") {
            prefix += "/" + component
            if try linkExists(prefix) { continue }
            _ = try handle("H5Gcreate2", prefix, close: H5Gclose) {
                H5Gcreate2(file.id, prefix, propertiesDefault, propertiesDefault, propertiesDefault)
            }
        }
    }

    /// Opens a dataset after checking that every link to it is a hard link and
    /// that its storage is inside this file.
    /// - Throws: `.missingObject`, `.invalidContent` (links, external or virtual storage).
    func openDataset(_ object: String) throws(StorageError) -> Handle {
        var prefix = ""
        for component in object.split(separator: "/") {
            prefix += "/" + component
            guard try linkExists(prefix) else { throw .missingObject(path: path, object: object) }
            var link = H5L_info_t()
            try check(H5Lget_info(file.id, prefix, &link, propertiesDefault), "H5Lget_info", prefix)
            guard link.type == H5L_TYPE_HARD else {
                throw .invalidContent(path: path, object: prefix, reason: "is a soft or external link; only plain objects are read")
            }
        }
        guard try objectInfo(object).type == H5O_TYPE_DATASET else {
            throw .invalidContent(path: path, object: object, reason: "is not a dataset")
        }
        let dataset = try handle("H5Dopen2", object, close: H5Dclose) { H5Dopen2(file.id, object, propertiesDefault) }
        let plist = try handle("H5Dget_create_plist", object, close: H5Pclose) { H5Dget_create_plist(dataset.id) }
        guard try check(H5Pget_external_count(plist.id), "H5Pget_external_count", object) == 0 else {
            throw .invalidContent(path: path, object: object, reason: "stores its data in external files, which are not read")
        }
        let layout = H5Pget_layout(plist.id)
        try check(layout.rawValue, "H5Pget_layout", object)
        guard layout == H5D_CONTIGUOUS || layout == H5D_CHUNKED || layout == H5D_COMPACT else {
            throw .invalidContent(path: path, object: object, reason: "is a virtual dataset, which is not read")
        }
        return dataset
    }

    /// The dimensions of a dataset.
    public func shape(of object: String) throws(StorageError) -> [Int] {
        try dimensions(try openDataset(object), object)
    }

    func dimensions(_ dataset: Handle, _ object: String) throws(StorageError) -> [Int] {
        let space = try handle("H5Dget_space", object, close: H5Sclose) { H5Dget_space(dataset.id) }
        let rank = Int(try check(H5Sget_simple_extent_ndims(space.id), "H5Sget_simple_extent_ndims", object))
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        try check(H5Sget_simple_extent_dims(space.id, &dims, nil), "H5Sget_simple_extent_dims", object)
        return dims.prefix(rank).map { Int(clamping: $0) }
    }

    /// Checks that `object`'s elements are stored exactly as `T` is in memory
    /// (uint8; float32 in this machine's byte order), so that its raw bytes can be used as they are.
    /// - Throws: `.wrongType` naming the stored type.
    func requireNativeElements<T: HDF5Element>(_ object: String, _: T.Type) throws(StorageError) {
        let dataset = try openDataset(object)
        let type = try handle("H5Dget_type", object, close: H5Tclose) { H5Dget_type(dataset.id) }
        guard try check(H5Tequal(type.id, T.nativeType), "H5Tequal", object) > 0 else {
            throw .wrongType(path: path, object: object, expected: "\(T.self == Float.self ? "float32 in this machine's byte order" : "uint8") to be streamed",
                             found: try typeName(type, object))
        }
    }

    /// Whether a dataset stores floating-point numbers (of any width).
    public func storesFloats(_ object: String) throws(StorageError) -> Bool {
        let dataset = try openDataset(object)
        let type = try handle("H5Dget_type", object, close: H5Tclose) { H5Dget_type(dataset.id) }
        return try typeInfo(type, object).typeClass == H5T_FLOAT
    }

    /// A description of the stored element type, for messages ("float64", "int32", "string").
    func typeName(_ type: Handle, _ object: String) throws(StorageError) -> String {
        let (typeClass, size, isSigned) = try typeInfo(type, object)
        switch typeClass {
        case H5T_INTEGER: return (isSigned ? "int" : "uint") + "\(size * 8)"
        case H5T_FLOAT: return "float\(size * 8)"
        case H5T_STRING: return "string"
        default: return "a compound or other non-numeric type"
        }
    }

    private func checkType<T: HDF5Element>(_ type: Handle, _ object: String, as _: T.Type) throws(StorageError) {
        let (typeClass, size, isSigned) = try typeInfo(type, object)
        let matches = typeClass == T.typeClass && size == T.storedSize && (T.typeClass != H5T_INTEGER || isSigned == T.isSigned)
        guard matches else {
            throw .wrongType(path: path, object: object, expected: T.typeName, found: try typeName(type, object))
        }
    }

    /// Reads a whole dataset of element type `T`.
    ///
    /// - Parameters:
    ///   - object: the dataset's absolute path, e.g. "/train/x".
    ///   - type: the element type to read as (it must match the stored one).
    ///   - rank: the number of dimensions required (nil: any).
    ///   - expected: the exact shape required (nil: any).
    ///   - limit: the most elements accepted.
    /// - Returns: the values in row-major order and the shape.
    /// - Throws: `.missingObject`, `.wrongType`, `.wrongRank`, `.invalidContent`
    ///   (links, external storage, too large), `.call`.
    ///
    /// Nothing is allocated before the header passes: the rank, the exact
    /// `shape` when the caller knows it, at most `limit` elements, and at most
    /// `byteLimit` bytes.
    public func read<T: HDF5Element>(
        _ object: String, as type: T.Type = T.self, rank: Int? = nil, shape expected: [Int]? = nil,
        limit: Int = HDF5File.elementLimit
    ) throws(StorageError) -> (values: [T], shape: [Int]) {
        let dataset = try openDataset(object)
        let type = try handle("H5Dget_type", object, close: H5Tclose) { H5Dget_type(dataset.id) }
        try checkType(type, object, as: T.self)
        let shape = try dimensions(dataset, object)
        if let rank, shape.count != rank { throw .wrongRank(path: path, object: object, expected: rank, found: shape.count) }
        if let expected, shape != expected {
            throw .wrongShape(path: path, object: object, expected: "\(expected)", found: "\(shape)")
        }
        let limit = min(limit, HDF5File.elementLimit, HDF5File.byteLimit / MemoryLayout<T>.stride)
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= limit else {
                let dims = shape.map(String.init).joined(separator: " × ")
                throw .invalidContent(path: path, object: object, reason: "declares \(dims) elements, more than the limit of \(limit)")
            }
            count = product
        }
        try checkStored(dataset, object, bytes: count * MemoryLayout<T>.stride)
        var values = [T](repeating: T.zero, count: count)
        if count > 0 {
            let status = values.withUnsafeMutableBytes {
                H5Dread(dataset.id, T.nativeType, wholeSpace, wholeSpace, propertiesDefault, $0.baseAddress)
            }
            try check(status, "H5Dread", object)
        }
        return (values, shape)
    }

    /// The most a dataset may declare beyond what the file stores for it:
    /// its values may be compressed, but not by more than this (IDX's
    /// `inflationLimit`, the same rule), and a small one may be unallocated.
    static let inflationLimit = 200
    static let unallocatedAllowance = 1 << 20

    /// Refuses a dataset that declares more values than the file holds for
    /// it (a few KB declaring gigabytes of fill values), before anything is
    /// allocated for them.
    private func checkStored(_ dataset: Handle, _ object: String, bytes declared: Int) throws(StorageError) {
        let stored = Int(clamping: H5Dget_storage_size(dataset.id))
        let (room, overflow) = stored.multipliedReportingOverflow(by: Self.inflationLimit)
        guard overflow || declared <= room + Self.unallocatedAllowance else {
            throw .invalidContent(path: path, object: object, reason: "declares \(declared) bytes of values but the file stores \(stored) for it "
                                  + "(more than \(Self.inflationLimit) times as many, or none written)")
        }
    }

    /// Writes `values` as a new dataset `object` of `shape` ([] for a scalar),
    /// creating the groups above it; with `chunkRows`, chunked in blocks of
    /// that many rows (whole rows: every other dimension in full), which a
    /// streaming reader reads one block at a time.
    public func write<T: HDF5Element>(_ values: [T], shape: [Int], to object: String, chunkRows: Int? = nil) throws(StorageError) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        if let slash = object.lastIndex(of: "/"), slash != object.startIndex {
            try createGroup(String(object[..<slash]))
        }
        let dims = shape.map { hsize_t($0) }
        let space = try handle("H5Screate_simple", object, close: H5Sclose) {
            shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), dims, nil)
        }
        let creation = try handle("H5Pcreate", object, close: H5Pclose) { H5Pcreate(chdf5_dataset_create_class()) }
        if let chunkRows, !shape.isEmpty, shape.allSatisfy({ $0 > 0 }) {
            var chunk = dims
            chunk[0] = hsize_t(max(1, min(chunkRows, shape[0])))
            try check(H5Pset_chunk(creation.id, Int32(chunk.count), chunk), "H5Pset_chunk", object)
        }
        let dataset = try handle("H5Dcreate2", object, close: H5Dclose) {
            H5Dcreate2(file.id, object, T.nativeType, space.id, propertiesDefault, creation.id, propertiesDefault)
        }
        guard !values.isEmpty else { return }
        let status = values.withUnsafeBytes {
            H5Dwrite(dataset.id, T.nativeType, wholeSpace, wholeSpace, propertiesDefault, $0.baseAddress)
        }
        try check(status, "H5Dwrite", object)
    }
}
