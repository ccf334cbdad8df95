import BackpropCore
import BackpropIO

// A split's rows as a writer takes them: read block by block from wherever
// they are (memory, a file, or two splits one after the other).
extension DatasetFile {
    /// A split that arrives a block of rows at a time, never whole:
    /// generated, or read from another file or a `.npy` array.
    public struct SplitRows {
        public let count: Int
        public let featureCount: Int
        public let storage: FeatureStream.Storage
        /// Fills the buffer with the features of the rows, as stored, row-major, and returns their targets.
        public let rows: (Range<Int>, UnsafeMutableRawBufferPointer) throws(StorageError) -> Dataset.Targets

        /// - Parameters:
        ///   - count: the rows, N.
        ///   - featureCount: values a row, F.
        ///   - storage: bytes with a scale, or float32.
        ///   - rows: fills a block's features and returns its targets; called for consecutive blocks from row 0 on.
        public init(count: Int, featureCount: Int, storage: FeatureStream.Storage,
                    rows: @escaping (Range<Int>, UnsafeMutableRawBufferPointer) throws(StorageError) -> Dataset.Targets) {
            self.count = count
            self.featureCount = featureCount
            self.storage = storage
            self.rows = rows
        }

        /// The rows of a split, read block by block (from memory, or from its file).
        /// - Parameter dataset: the split.
        public init(_ dataset: any RowSource) {
            self.init(count: dataset.count, featureCount: dataset.featureCount, storage: dataset.storage) { (rows, x) throws(StorageError) in
                let block: Dataset
                do throws(TrainingError) { block = try dataset.rows(rows) } catch {
                    // The storage's own words: the dataset is named once.
                    guard case .dataUnreadable(_, _, let reason) = error else { throw .io(path: dataset.name, reason: error.description) }
                    throw .io(path: dataset.name, reason: reason)
                }
                block.withStoredBytes { x.copyMemory(from: $0) }
                return block.targets
            }
        }

        /// These rows, then `next`'s, as one split (a refit: /train, then
        /// /validation), read block by block; nil when the two differ in
        /// their features' width or storage, or in the kind of their targets.
        public func followed(by next: SplitRows) -> SplitRows? {
            guard featureCount == next.featureCount, storage == next.storage else { return nil }
            let (first, firstCount, rowBytes) = (self.rows, count, self.rowBytes)
            return SplitRows(count: count + next.count, featureCount: featureCount, storage: storage) { (rows, x) throws(StorageError) in
                let head = rows.clamped(to: 0..<firstCount), tail = rows.clamped(to: firstCount..<Int.max)
                var targets: [Dataset.Targets] = []
                if !head.isEmpty {
                    targets.append(try first(head, UnsafeMutableRawBufferPointer(rebasing: x[0..<(head.count * rowBytes)])))
                }
                if !tail.isEmpty {
                    let shifted = (tail.lowerBound - firstCount)..<(tail.upperBound - firstCount)
                    let start = head.count * rowBytes
                    targets.append(try next.rows(shifted, UnsafeMutableRawBufferPointer(rebasing: x[start..<(start + tail.count * rowBytes)])))
                }
                return try Self.joined(targets, rows: rows)
            }
        }

        /// The targets of consecutive blocks as one.
        private static func joined(_ parts: [Dataset.Targets], rows: Range<Int>) throws(StorageError) -> Dataset.Targets {
            guard parts.count == 2 else { return parts[0] }
            switch (parts[0], parts[1]) {
            case (.classes(let a), .classes(let b)): return .classes(a + b)
            case (.values(let a, let width), .values(let b, let other)) where width == other: return .values(a + b, width: width)
            default: throw .invalidContent(path: "rows \(rows.lowerBound) … \(rows.upperBound - 1)", object: "targets",
                                           reason: "the two parts hold targets of different kinds, which one split cannot")
            }
        }

        public var rowBytes: Int { featureCount * (storage == .floats ? MemoryLayout<Float>.size : 1) }
    }
}
