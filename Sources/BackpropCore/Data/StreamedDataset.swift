/// A split whose features stay in storage, read as they are needed
/// (`FeatureStream`); its targets and teacher's column are in memory (one
/// byte a sample for class labels). Training reads it batch by batch through
/// a `BatchPrefetcher`, evaluation and prediction block by block in file order.
public struct StreamedDataset: RowSource, Equatable {
    public let name: String
    /// The features, in storage.
    public let stream: FeatureStream
    public let targets: Dataset.Targets
    public var imageShape: ImageShape? = nil
    public var teacher: TeacherColumn? = nil

    /// - Precondition: `targets` has `stream.count` rows (storage validates this at the boundary and throws).
    public init(name: String, stream: FeatureStream, targets: Dataset.Targets) {
        self.name = name
        self.stream = stream
        self.targets = targets
        precondition(count == stream.count, "\(name): \(count) targets for \(stream.count) streamed rows")
    }

    public var featureCount: Int { stream.featureCount }

    /// One read, in file order.
    public func rows(_ rows: Range<Int>) throws(TrainingError) -> Dataset {
        var block = [UInt8](repeating: 0, count: rows.count * stream.bytesPerRow)
        do {
            try block.withUnsafeMutableBytes { try stream.reader.read(rows: rows, into: $0) }
        } catch {
            throw .dataUnreadable(dataset: name, rows: rows, reason: "\(error)")
        }
        return holding(rows: rows, features: stream.features(of: block))
    }

    /// The rows of a read (the file's chunk), rounded to whole shards.
    public func blockRows(count: Int, shardSize: Int) -> Int { max(1, stream.readRows / shardSize) * shardSize }

    /// A stream reads blocks of rows; an order that is not made of them would hold the whole split.
    public func check(sampling: Sampling, shuffle: Bool, blocks: BlockShuffle) throws(TrainingError) {
        guard sampling == .shuffle else {
            throw .invalidSetting("shuffleBlocks", value: "\(blocks.rows)",
                                  reason: "dataset \(name) is streamed, and Poisson sampling reads samples one by one from all of it; train it in memory")
        }
        guard !shuffle || blocks.isActive else {
            throw .invalidSetting("shuffleBlocks", value: "0",
                                  reason: "dataset \(name) is streamed, and a global shuffle reads rows at random from all of it; shuffle blocks of rows instead (e.g. 1024)")
        }
    }

    /// Refused: a held-out part would be read at random.
    public func holdOut(_ fraction: Double, seed: UInt64) throws(TrainingError) -> (train: any RowSource, validation: any RowSource) {
        throw .invalidSetting("validationFraction", value: "\(fraction)",
                              reason: "\(name) is streamed, and a held-out part would be read at random; store the split in the file "
                                + "(`backprop import … --validation-fraction`) and hold out none here (0)")
    }

    public func batches(from walker: EpochWalker, endEpoch: Int, rows: @escaping @Sendable (Int) -> Range<Int>) -> any BatchSupply {
        BatchPrefetcher(dataset: self, walker: walker, endEpoch: endEpoch, rows: rows)
    }

    public var storage: FeatureStream.Storage { stream.storage }

    public var waitsForRows: Bool { true }

    /// The stream's hash of every feature byte: the same as the rows' in memory.
    public var featureFingerprint: (hash: Fingerprint, storage: String) {
        switch stream.storage {
        case .bytes(let scale): return (Fingerprint(hash: stream.featureHash), "scale \(scale)")
        case .floats: return (Fingerprint(hash: stream.featureHash), "float32")
        }
    }

    public func verifyFingerprint() throws(TrainingError) { try stream.verifyFeatureHash(dataset: name) }

    /// Nothing to advise: the prefetcher's blocks come and go.
    public func adviseHugePages() {}
}

extension FeatureStream {
    /// Stored rows as a dataset's features in memory.
    func features(of block: [UInt8]) -> Dataset.Features {
        switch storage {
        case .bytes(let scale): return .bytes(block, scale: scale)
        case .floats: return .floats(block.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
        }
    }
}
