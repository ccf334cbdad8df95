import BackpropCore
import BackpropIO

/// The fingerprints a dataset file stores for each split's features, so
/// that a stream need not read them all at start and can check every block
/// it reads:
///
///     /<split>/x         attribute fingerprint_fnv1a64 (uint64): the FNV-1a
///                        state after every feature byte, in row order, as
///                        `RowSource.fingerprint` mixes them
///     /<split>/x_blocks  uint64 [⌈N / block_rows⌉]: `Fingerprint` of the bytes
///                        of each block of block_rows rows (attribute
///                        block_rows, int64), the last block maybe shorter
///
/// Written at import; files without them are fingerprinted by one pass, as before.
struct BlockFingerprints: Sendable, Equatable {
    /// The state after all the features' bytes.
    let whole: UInt64
    let blockRows: Int
    let blocks: [UInt64]

    static let wholeAttribute = "fingerprint_fnv1a64"
    static let rowsAttribute = "block_rows"
    static func object(_ split: String) -> String { "/\(split)/x_blocks" }

    /// The fingerprints of `rows` rows of `rowBytes` bytes at `bytes`, in blocks of `blockRows`.
    init(_ bytes: UnsafeRawBufferPointer, rowBytes: Int, blockRows: Int) {
        var whole = Fingerprint()
        whole.mix(bytes: bytes)
        whole.finishArray()
        self.whole = whole.hash
        self.blockRows = blockRows
        let blockBytes = blockRows * rowBytes
        blocks = stride(from: 0, to: bytes.count, by: max(blockBytes, 1)).map { start in
            BlockFingerprints.hash(UnsafeRawBufferPointer(rebasing: bytes[start..<min(start + blockBytes, bytes.count)]))
        }
    }

    init(whole: UInt64, blockRows: Int, blocks: [UInt64]) {
        self.whole = whole
        self.blockRows = blockRows
        self.blocks = blocks
    }

    /// One block's fingerprint.
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var fingerprint = Fingerprint()
        fingerprint.mix(bytes: bytes)
        fingerprint.finishArray()
        return fingerprint.hash
    }

    /// The fingerprints of features `values` ([rows, featureCount] of bytes or floats).
    static func of<Element>(_ values: [Element], featureCount: Int, blockRows: Int) -> BlockFingerprints {
        values.withUnsafeBytes { BlockFingerprints($0, rowBytes: featureCount * MemoryLayout<Element>.size, blockRows: blockRows) }
    }

    func write(to file: HDF5File, split: String) throws(StorageError) {
        try file.setAttribute(Self.wholeAttribute, whole, on: "/\(split)/x")
        try file.write(blocks, shape: [blocks.count], to: Self.object(split))
        try file.setAttribute(Self.rowsAttribute, Int64(blockRows), on: Self.object(split))
    }

    /// The stored fingerprints of split `split`'s `rows` rows, checked for
    /// shape; nil when the file has none.
    /// - Throws: `StorageError` naming the object when they are there but unusable.
    static func read(from file: HDF5File, split: String, rows: Int) throws(StorageError) -> BlockFingerprints? {
        let object = Self.object(split)
        guard try file.hasAttribute(wholeAttribute, of: "/\(split)/x"), try file.exists(object) else { return nil }
        let whole = try file.attribute(wholeAttribute, of: "/\(split)/x", as: UInt64.self)
        guard try file.hasAttribute(rowsAttribute, of: object) else { throw .missingObject(path: file.path, object: "attribute '\(rowsAttribute)' of \(object)") }
        let blockRows = try file.attribute(rowsAttribute, of: object, as: Int64.self)
        guard blockRows >= 1, blockRows <= Int64(Int32.max) else {
            throw .invalidContent(path: file.path, object: "attribute '\(rowsAttribute)' of \(object)", reason: "is \(blockRows); it must be 1 … \(Int32.max)")
        }
        let count = Epochs.batches(of: rows, in: Int(blockRows))
        let blocks = try file.read(object, as: UInt64.self, shape: [count]).values
        return BlockFingerprints(whole: whole, blockRows: Int(blockRows), blocks: blocks)
    }
}
