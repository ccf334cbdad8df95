/// Reads rows of a split's features from storage, as stored: the one door
/// through which a streamed dataset reaches its file. Core knows no file
/// format; BackpropHDF5 implements it.
public protocol RowReader: Sendable {
    /// Reads the features of rows `rows` as stored (bytes, or float32 in the
    /// machine's byte order), row-major, into `buffer`, which holds exactly
    /// `rows.count` rows. Called from the prefetcher's thread only, one call at a time.
    func read(rows: Range<Int>, into buffer: UnsafeMutableRawBufferPointer) throws
}

/// The features of a split too large to hold: their shape and storage, and
/// a reader that fetches any range of rows (`BatchPrefetcher` reads blocks of
/// them ahead of the steps). The targets of a streamed split stay in memory
/// (one byte a sample for class labels).
public final class FeatureStream: Sendable {
    /// How a row is stored.
    public enum Storage: Sendable, Equatable {
        /// x = scale · byte.
        case bytes(scale: Float)
        /// x as stored, float32.
        case floats
    }

    public let storage: Storage
    public let count: Int
    public let featureCount: Int
    public let reader: any RowReader
    /// Rows a read fetches when the order has no blocks of its own (file order): the file's chunk.
    public let readRows: Int
    /// The FNV-1a state after every feature byte (as `Dataset.fingerprint` mixes them), computed by whoever opened it.
    public let featureHash: UInt64
    /// Whether `featureHash` was read from the file rather than computed
    /// from the rows: then it must be verified (`verifyFeatureHash()`) before
    /// anything rests on it, such as a resume's check of the data.
    public let featureHashIsStored: Bool

    /// - Parameters:
    ///   - storage: bytes with a scale, or float32.
    ///   - count: the rows, N.
    ///   - featureCount: values a row, F.
    ///   - reader: what fetches rows.
    ///   - readRows: rows a read fetches in file order.
    ///   - featureHash: `Fingerprint` of every feature byte, in row order.
    ///   - featureHashIsStored: whether `featureHash` was read from the file, unverified.
    public init(storage: Storage, count: Int, featureCount: Int, reader: any RowReader, readRows: Int, featureHash: UInt64,
                featureHashIsStored: Bool = false) {
        precondition(count > 0 && featureCount > 0 && readRows > 0, "a stream of \(count) × \(featureCount) in reads of \(readRows)")
        self.storage = storage
        self.count = count
        self.featureCount = featureCount
        self.reader = reader
        self.readRows = readRows
        self.featureHash = featureHash
        self.featureHashIsStored = featureHashIsStored
    }

    /// Reads every row once, in file order, a block at a time, and checks
    /// that their bytes give `featureHash` (a pass the size of the data;
    /// nothing to do for a hash computed from the rows).
    /// - Throws: `TrainingError.dataUnreadable` naming `dataset` when a row
    ///   cannot be read or the bytes give another hash than the one stored.
    public func verifyFeatureHash(dataset: String) throws(TrainingError) {
        guard featureHashIsStored else { return }
        var hash = Fingerprint()
        let block = UnsafeMutableRawBufferPointer.allocate(byteCount: readRows * bytesPerRow, alignment: 64)
        defer { block.deallocate() }
        for start in stride(from: 0, to: count, by: readRows) {
            let rows = start..<min(start + readRows, count)
            let part = UnsafeMutableRawBufferPointer(rebasing: block[0..<(rows.count * bytesPerRow)])
            do { try reader.read(rows: rows, into: part) } catch {
                throw .dataUnreadable(dataset: dataset, rows: rows, reason: "\(error)")
            }
            hash.mix(bytes: UnsafeRawBufferPointer(part))
        }
        hash.finishArray()
        guard hash.hash == featureHash else {
            throw .dataUnreadable(dataset: dataset, rows: 0..<count,
                                  reason: "the features' stored whole fingerprint does not match their bytes (nor, so, their block fingerprints): the file was altered")
        }
    }

    /// Bytes a stored row takes.
    public var bytesPerRow: Int { featureCount * (storage == .floats ? MemoryLayout<Float>.size : 1) }
}

/// FNV-1a over 64-bit words, fed in pieces: what `Dataset.fingerprint` computes
/// for an array, for data that arrives block by block. Words are the
/// array's bytes eight at a time (little-endian), the last count % 8 bytes
/// one word each, then the count. (Fast, not cryptographic.)
public struct Fingerprint: Sendable, Equatable {
    public private(set) var hash: UInt64
    private var pending: [UInt8] = []
    private var byteCount = 0

    public init(hash: UInt64 = 0xCBF2_9CE4_8422_2325) { self.hash = hash }

    public mutating func mix(_ word: UInt64) { hash = (hash ^ word) &* 0x0000_0100_0000_01B3 }

    /// The next bytes of the array being hashed.
    public mutating func mix(bytes raw: UnsafeRawBufferPointer) {
        byteCount += raw.count
        var start = 0
        if !pending.isEmpty {
            while pending.count < 8 && start < raw.count { pending.append(raw[start]); start += 1 }
            guard pending.count == 8 else { return }
            pending.withUnsafeBytes { mix($0.loadUnaligned(as: UInt64.self)) }
            pending.removeAll(keepingCapacity: true)
        }
        let words = (raw.count - start) / 8
        for i in 0..<words { mix(raw.loadUnaligned(fromByteOffset: start + i * 8, as: UInt64.self)) }
        pending.append(contentsOf: raw[(start + words * 8)...])
    }

    /// Ends the array: its last bytes, then its length.
    public mutating func finishArray() {
        for byte in pending { mix(UInt64(byte)) }
        pending.removeAll()
        mix(UInt64(byteCount))
        byteCount = 0
    }

    /// One whole array.
    public mutating func mix<Element>(array: [Element]) {
        array.withUnsafeBytes { mix(bytes: $0) }
        finishArray()
    }
}

extension FeatureStream: Equatable {
    /// The same stream: one reader of one split.
    public static func == (a: FeatureStream, b: FeatureStream) -> Bool { a === b }
}
