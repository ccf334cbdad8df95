// Files too large to build in memory: created on disk, beside their final
// name, with one dataset written a block of rows at a time.
//
// Every other file Backprop writes is built by the core driver in memory and
// goes out in one write(2) (`createAtomically`), because libhdf5 1.10 can
// crash when its own writes fail. A file of many gigabytes cannot be; here
// the free space is checked first against what the file will take, and the
// file is renamed into place only once it is whole, synced and read back.
import BackpropIO
import CHDF5Shim
import Foundation
import Glibc

extension HDF5File {
    /// Builds a file on disk with `build`, in a temporary file beside
    /// `path`, then reads it back with `verify`, syncs it and renames it into
    /// place: `path` is never half-written, and on any failure it is left as it was.
    /// - Parameters:
    ///   - path: the file to write.
    ///   - expectedBytes: about what the file will take; refused up front when the file system has less free.
    ///   - verify: reads the finished file as a reader will.
    ///   - build: writes the file's contents.
    /// - Throws: `.io` (no room, a failed write or rename), or what `build` and `verify` throw.
    public static func createOnDisk(
        _ path: String, expectedBytes: Int, verify: (HDF5File) throws(StorageError) -> Void,
        _ build: (HDF5File) throws(StorageError) -> Void
    ) throws(StorageError) {
        chdf5_silence_errors()
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: directory) else { throw .io(path: path, reason: "directory \(directory) does not exist") }
        var space = statvfs()
        if statvfs(directory, &space) == 0 {
            let free = UInt64(space.f_bavail) * UInt64(space.f_frsize)
            let needed = requiredSpace(expectedBytes: expectedBytes)
            guard free >= needed else {
                throw .io(path: path, reason: "needs about \(bytes(needed)) (the data and a margin of a sixteenth for HDF5's own), "
                                + "and its file system has \(bytes(free)) free: \(bytes(needed - free)) more are needed")
            }
        }
        let temporary = FileSystem.temporaryPath(in: directory, for: "tmp")
        do throws(StorageError) {
            // Closed (the handle released) before the file is read back.
            try {
                () throws(StorageError) in
                let id = H5Fcreate(temporary, chdf5_acc_trunc(), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
                guard id >= 0 else { throw StorageError.io(path: path, reason: "cannot create \(temporary) (H5Fcreate failed)") }
                let file = HDF5File(path: path, file: Handle(id, close: H5Fclose))
                try build(file)
                try file.flush()
            }()
            try verify(try HDF5File.open(temporary, reportedAs: path))
            try FileSystem.sync(temporary)
            guard rename(temporary, path) == 0 else {
                throw StorageError.io(path: path, reason: "cannot rename \(temporary) into place (\(String(cString: strerror(errno))))")
            }
        } catch {
            unlink(temporary)
            throw error
        }
        try FileSystem.syncDirectory(directory, of: path)
    }

    /// The free space a file of about `expectedBytes` asks for: those bytes
    /// and a margin in proportion for HDF5's own structures (a sixteenth, at
    /// least 64 KiB), so that a small file never asks for much more than it takes.
    static func requiredSpace(expectedBytes: Int) -> UInt64 {
        let data = UInt64(max(expectedBytes, 0))
        return data + max(data / 16, 64 << 10)
    }

    /// A byte count as people read it: "12.0 KiB", "3.4 GiB".
    static func bytes(_ count: UInt64) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count), unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(count) bytes" : String(format: "%.1f %@", value, units[unit])
    }

    /// Creates dataset `object` of `rows` × `columns` elements of `T`,
    /// chunked in blocks of `chunkRows` whole rows, for `RowWriter` to fill.
    /// - Throws: `.call` naming the object.
    public func createRows<T: HDF5Element>(_ object: String, of _: T.Type, rows: Int, columns: Int, chunkRows: Int) throws(StorageError) -> RowWriter<T> {
        precondition(rows > 0 && columns > 0 && chunkRows > 0, "\(rows) × \(columns) in chunks of \(chunkRows)")
        if let slash = object.lastIndex(of: "/"), slash != object.startIndex { try createGroup(String(object[..<slash])) }
        let dims = [hsize_t(rows), hsize_t(columns)]
        let space = try handle("H5Screate_simple", object, close: H5Sclose) { H5Screate_simple(2, dims, nil) }
        let creation = try handle("H5Pcreate", object, close: H5Pclose) { H5Pcreate(chdf5_dataset_create_class()) }
        try check(H5Pset_chunk(creation.id, 2, [hsize_t(min(chunkRows, rows)), hsize_t(columns)]), "H5Pset_chunk", object)
        let dataset = try handle("H5Dcreate2", object, close: H5Dclose) {
            H5Dcreate2(file.id, object, T.nativeType, space.id, hid_t(H5P_DEFAULT), creation.id, hid_t(H5P_DEFAULT))
        }
        return RowWriter(file: self, object: object, dataset: dataset, space: space, columns: columns)
    }
}

/// Writes a [rows, columns] dataset a block of rows at a time (hyperslabs of the file's dataspace).
public final class RowWriter<T: HDF5Element> {
    let file: HDF5File
    let object: String
    let dataset: Handle
    let space: Handle
    let columns: Int

    init(file: HDF5File, object: String, dataset: Handle, space: Handle, columns: Int) {
        self.file = file
        self.object = object
        self.dataset = dataset
        self.space = space
        self.columns = columns
    }

    /// Writes `values` (`rows.count` rows, row-major) as rows `rows`.
    /// - Throws: `.call` naming the object.
    public func write(_ values: UnsafeBufferPointer<T>, rows: Range<Int>) throws(StorageError) {
        precondition(values.count == rows.count * columns, "\(values.count) values for \(rows.count) rows of \(columns)")
        guard !rows.isEmpty else { return }
        let count = [hsize_t(rows.count), hsize_t(columns)]
        let memory = try file.handle("H5Screate_simple", object, close: H5Sclose) { H5Screate_simple(2, count, nil) }
        try file.check(H5Sselect_hyperslab(space.id, H5S_SELECT_SET, [hsize_t(rows.lowerBound), 0], nil, count, nil),
                       "H5Sselect_hyperslab", object)
        try file.check(H5Dwrite(dataset.id, T.nativeType, memory.id, space.id, hid_t(H5P_DEFAULT), values.baseAddress), "H5Dwrite", object)
    }
}
