// Reading a split's feature rows without holding them: where each row lies
// in the file, found once through libhdf5, then plain pread(2) calls.
//
// libhdf5 here is the serial build and not thread-safe. The prefetcher's
// thread never calls it: `rowLayout` asks libhdf5 (on the opening thread)
// where the raw bytes are — the one extent of contiguous storage
// (H5Dget_offset), or every chunk's address (H5Dget_chunk_info) — and
// `FileRowReader` reads those bytes with pread, which any thread may call.
// That is only sound for storage without filters (no compression, no
// checksums): refused otherwise, by name.
import BackpropCore
import BackpropIO
import CHDF5Shim
import Glibc

/// Where the rows of a [N, F] dataset lie in its file.
struct RowLayout: Sendable, Equatable {
    enum Extents: Sendable, Equatable {
        /// Row r at offset + r · rowBytes.
        case contiguous(offset: UInt64)
        /// Row r in chunk r / rowsPerChunk, at its address + (r mod rowsPerChunk) · rowBytes.
        case chunked(rowsPerChunk: Int, addresses: [UInt64])
    }

    let rows: Int
    let rowBytes: Int
    let extents: Extents

    /// Rows per chunk, or nil for contiguous storage.
    var rowsPerChunk: Int? {
        if case .chunked(let rows, _) = extents { return rows }
        return nil
    }

    /// The file's byte ranges holding rows `range`, in row order.
    func spans(_ range: Range<Int>) -> [(offset: UInt64, bytes: Int)] {
        switch extents {
        case .contiguous(let offset):
            return [(offset + UInt64(range.lowerBound) * UInt64(rowBytes), range.count * rowBytes)]
        case .chunked(let rowsPerChunk, let addresses):
            var spans: [(UInt64, Int)] = []
            var row = range.lowerBound
            while row < range.upperBound {
                let chunk = row / rowsPerChunk, first = chunk * rowsPerChunk
                let end = min(range.upperBound, first + rowsPerChunk)
                spans.append((addresses[chunk] + UInt64(row - first) * UInt64(rowBytes), (end - row) * rowBytes))
                row = end
            }
            return spans
        }
    }
}

extension HDF5File {
    /// Where the rows of [N, F] dataset `object` of `elementSize`-byte
    /// elements lie, checked against the file's size: contiguous, or chunked
    /// in blocks of whole rows, without filters, every chunk present.
    /// - Throws: `.invalidContent` naming the object when its storage cannot be read by rows this way.
    func rowLayout(of object: String, shape: [Int], elementSize: Int) throws(StorageError) -> RowLayout {
        let dataset = try openDataset(object)
        let plist = try handle("H5Dget_create_plist", object, close: H5Pclose) { H5Dget_create_plist(dataset.id) }
        let (rows, columns) = (shape[0], shape[1])
        let rowBytes = columns * elementSize
        guard let location else { throw .invalidContent(path: path, object: object, reason: "is in a file image in memory, which is not streamed") }
        let fileSize = UInt64(max(FileSystem.size(of: location) ?? 0, 0))
        func refuse(_ reason: String) -> StorageError { .invalidContent(path: path, object: object, reason: reason) }
        let filters = try check(H5Pget_nfilters(plist.id), "H5Pget_nfilters", object)
        guard filters == 0 else {
            throw refuse("is stored through \(filters) filter\(filters == 1 ? "" : "s") (compression or checksums), which a stream cannot read; "
                         + "rewrite it with `backprop rechunk`, or train it in memory")
        }
        let layout = H5Pget_layout(plist.id)
        try check(layout.rawValue, "H5Pget_layout", object)
        switch layout {
        case H5D_CONTIGUOUS:
            let address = H5Dget_offset(dataset.id)
            guard address != chdf5_address_undefined() else { throw refuse("has no data written") }
            let offset = UInt64(address)
            let (total, overflow) = UInt64(rows).multipliedReportingOverflow(by: UInt64(rowBytes))
            guard !overflow, offset <= fileSize, total <= fileSize - offset else {
                throw refuse("needs \(rows) rows of \(rowBytes) bytes from byte \(offset), beyond the file's \(fileSize) bytes (a truncated file)")
            }
            return RowLayout(rows: rows, rowBytes: rowBytes, extents: .contiguous(offset: offset))
        case H5D_CHUNKED:
            var chunk = [hsize_t](repeating: 0, count: 2)
            guard try check(H5Pget_chunk(plist.id, 2, &chunk), "H5Pget_chunk", object) == 2, chunk[1] == hsize_t(columns), chunk[0] > 0 else {
                throw refuse("is chunked in pieces of rows of \(chunk[1]) of its \(columns) columns; a stream reads whole rows (`backprop rechunk` rewrites it)")
            }
            let rowsPerChunk = Int(chunk[0])
            let chunkCount = Epochs.batches(of: rows, in: rowsPerChunk)
            let space = try handle("H5Dget_space", object, close: H5Sclose) { H5Dget_space(dataset.id) }
            var stored: hsize_t = 0
            try check(H5Dget_num_chunks(dataset.id, space.id, &stored), "H5Dget_num_chunks", object)
            var addresses = [UInt64](repeating: UInt64.max, count: chunkCount)
            let chunkBytes = UInt64(rowsPerChunk) * UInt64(rowBytes)
            // libhdf5 1.10 walks the chunk index to the index-th chunk on each call (…_by_coord walks it too): time
            // quadratic in the chunks, which `DatasetFile.storageChunkRows` keeps to at most 4,096.
            for index in 0..<stored {
                var origin = [hsize_t](repeating: 0, count: 2)
                var mask: UInt32 = 0, chunkAddress: haddr_t = 0, size: hsize_t = 0
                try check(H5Dget_chunk_info(dataset.id, space.id, index, &origin, &mask, &chunkAddress, &size), "H5Dget_chunk_info", object)
                let address = UInt64(chunkAddress)
                let c = Int(origin[0]) / rowsPerChunk
                guard origin[1] == 0, c < chunkCount, Int(origin[0]) % rowsPerChunk == 0, size == chunkBytes,
                      address <= fileSize, chunkBytes <= fileSize - address else {
                    throw refuse("has a chunk at row \(origin[0]) of \(size) bytes at byte \(address), outside its rows or the file's \(fileSize) bytes (a truncated file)")
                }
                addresses[c] = address
            }
            if let missing = addresses.firstIndex(of: UInt64.max) {
                throw refuse("has no data for rows \(missing * rowsPerChunk) … \(min(rows, (missing + 1) * rowsPerChunk) - 1) (an unfinished file)")
            }
            return RowLayout(rows: rows, rowBytes: rowBytes, extents: .chunked(rowsPerChunk: rowsPerChunk, addresses: addresses))
        default:
            throw refuse("is stored in its header (compact), which a stream does not read; train it in memory")
        }
    }
}

/// Reads rows of one dataset by pread(2) at the offsets of its `RowLayout`:
/// no libhdf5 call, so from any thread. With the file's `BlockFingerprints`,
/// every block a read touches is read whole and checked against its own.
final class FileRowReader: RowReader {
    let path: String
    let object: String
    let layout: RowLayout
    let fingerprints: BlockFingerprints?
    /// The values per row of float32 rows, each checked finite as it is read; nil for bytes.
    let finiteColumns: Int?
    private let descriptor: Int32

    /// - Parameters:
    ///   - file: the open file (its location is opened again for pread).
    ///   - object: the dataset.
    ///   - layout: where its rows are.
    ///   - fingerprints: the blocks' stored fingerprints, checked on every read; nil for none.
    ///   - finiteColumns: for float32 rows, the values per row, each checked finite on every read.
    init(file: HDF5File, object: String, layout: RowLayout, fingerprints: BlockFingerprints? = nil,
         finiteColumns: Int? = nil) throws(StorageError) {
        self.path = file.path
        self.object = object
        self.layout = layout
        self.fingerprints = fingerprints
        self.finiteColumns = finiteColumns
        descriptor = Glibc.open(file.location ?? "/dev/null/none", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .io(path: path, reason: "cannot open it to stream \(object): \(String(cString: strerror(errno)))") }
    }

    deinit { _ = close(descriptor) }

    func read(rows: Range<Int>, into buffer: UnsafeMutableRawBufferPointer) throws { try readRows(rows, into: buffer) }

    /// `read`, with its error's type.
    /// - Throws: `.io` when the file ends early or a read fails,
    ///   `.invalidContent` naming the rows of a block whose bytes do not match its fingerprint.
    func readRows(_ rows: Range<Int>, into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) {
        try readMatching(rows, into: buffer)
        // The rules of a loaded split, on every block before it is used (`DatasetFile.requireFinite`).
        if let columns = finiteColumns {
            try DatasetFile.requireFinite(UnsafeBufferPointer(start: buffer.baseAddress?.assumingMemoryBound(to: Float.self), count: buffer.count / 4), columns: columns, firstRow: rows.lowerBound,
                                          path: path, object: object)
        }
    }

    /// The rows, each block they touch checked against its stored fingerprint (when there are fingerprints).
    private func readMatching(_ rows: Range<Int>, into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) {
        guard let fingerprints else { return try readUnchecked(rows, into: buffer) }
        let n = fingerprints.blockRows
        let first = rows.lowerBound / n, end = Epochs.batches(of: rows.upperBound, in: n)
        let whole = (first * n)..<min(end * n, layout.rows)
        // The blocks the rows lie in, whole: in place when the rows are exactly them.
        let scratch = whole == rows ? nil : UnsafeMutableRawBufferPointer.allocate(byteCount: whole.count * layout.rowBytes, alignment: 64)
        defer { scratch?.deallocate() }
        let target = scratch ?? buffer
        try readUnchecked(whole, into: target)
        for block in first..<end {
            let start = (block * n - whole.lowerBound) * layout.rowBytes
            let blockEnd = (min((block + 1) * n, layout.rows) - whole.lowerBound) * layout.rowBytes
            guard BlockFingerprints.hash(UnsafeRawBufferPointer(rebasing: target[start..<blockEnd])) == fingerprints.blocks[block] else {
                throw .invalidContent(path: path, object: object,
                                      reason: "rows \(block * n) … \(min((block + 1) * n, layout.rows) - 1) do not match the fingerprint stored at import "
                                        + "(\(BlockFingerprints.object(object.split(separator: "/").first.map(String.init) ?? ""))): the file changed or is damaged")
            }
        }
        if let scratch {
            let offset = (rows.lowerBound - whole.lowerBound) * layout.rowBytes
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: scratch[offset..<(offset + rows.count * layout.rowBytes)]))
        }
    }

    private func readUnchecked(_ rows: Range<Int>, into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) {
        precondition(buffer.count == rows.count * layout.rowBytes && rows.upperBound <= layout.rows,
                     "\(buffer.count) bytes for rows \(rows) of \(layout.rows)")
        var cursor = buffer.baseAddress!
        for (offset, bytes) in layout.spans(rows) {
            let got: Int
            do { got = try preadFully(descriptor, into: UnsafeMutableRawBufferPointer(start: cursor, count: bytes), at: Int(offset)) } catch {
                throw .io(path: path, reason: "reading \(object): \(error)")
            }
            guard got == bytes else {
                throw .io(path: path, reason: "\(object) ends early: byte \(offset + UInt64(got)) is beyond the end of the file (truncated since it was opened?)")
            }
            cursor += bytes
        }
    }
}
