/// Where a split's rows come from: held in memory (`MemoryRows`), or read
/// from storage as they are needed (`FeatureStream`, opened by BackpropHDF5).
///
/// Training, evaluation, prediction, the validation split and a resume's
/// check of the data read rows through a dataset's source (`Dataset.source`)
/// and never ask which kind it is: what differs — how a step's batch
/// arrives, how rows are read in blocks, which visiting orders can be served
/// without holding every row, what the features' fingerprint rests on — is
/// the source's. Either way a batch holds the same samples in the same order,
/// so a step computes the same bits.
public protocol RowSource: Sendable {
    /// Rows `rows` of `dataset` (whose features come from this source) as a dataset in memory.
    /// - Throws: `TrainingError.dataUnreadable` when they cannot be read.
    func rows(_ rows: Range<Int>, of dataset: Dataset) throws(TrainingError) -> Dataset

    /// Rows to read at a time when `count` rows are read from first to last
    /// in blocks of whole shards of `shardSize` (evaluation, prediction).
    func blockRows(count: Int, shardSize: Int) -> Int

    /// Refuses a run whose visiting order (`sampling`, and with `shuffle` on, `blocks`)
    /// this source cannot serve without holding every row, naming `dataset`.
    func check(sampling: Sampling, shuffle: Bool, blocks: BlockShuffle, dataset: Dataset) throws(TrainingError)

    /// Refuses to hold out a share `fraction` of `dataset` as a validation
    /// split where that would read its rows at random.
    func checkHoldOut(_ fraction: Double, of dataset: Dataset) throws(TrainingError)

    /// The batches of a run from `walker`'s position on, through the end of
    /// epoch `endEpoch` − 1: for each, this process's rows (`rows` of a batch of a given size).
    func batches(of dataset: Dataset, from walker: EpochWalker, endEpoch: Int,
                 rows: @escaping @Sendable (Int) -> Range<Int>) -> any BatchSupply

    /// How `dataset`'s rows are stored: bytes with a scale, or float32.
    func storage(of dataset: Dataset) -> FeatureStream.Storage

    /// Whether a step can wait for this source's rows (then the run reports how long it did).
    var waitsForRows: Bool { get }

    /// The features' part of `dataset`'s fingerprint: the FNV-1a state after
    /// every feature byte, and how a row is stored ("scale 0.0039", "float32").
    func featureFingerprint(of dataset: Dataset) -> (hash: Fingerprint, storage: String)

    /// Checks a fingerprint read from storage against the rows, so that the
    /// fingerprint says what the rows are (nothing to do for one computed from them).
    /// - Throws: `TrainingError.dataUnreadable` naming `dataset`.
    func verifyFingerprint(dataset: String) throws(TrainingError)
}

/// A step's batches as they arrive: the whole dataset in memory, or a
/// prefetcher's batch datasets (`Dataset.holdsBatch`).
public protocol BatchSupply: AnyObject {
    /// The data of the batch at `position` whose samples are `indices`.
    func batch(at position: TrainingPosition, indices: ArraySlice<Int32>) throws(TrainingError) -> Dataset
    /// Seconds the steps waited for batches.
    var waitedSeconds: Double { get }
    /// Stops whatever reads ahead.
    func cancel()
}

/// Rows held in memory, as the file stores them (`Dataset.Features.bytes`, `.floats`).
public struct MemoryRows: RowSource {
    public init() {}

    public func rows(_ rows: Range<Int>, of dataset: Dataset) throws(TrainingError) -> Dataset {
        rows == 0..<dataset.count ? dataset : dataset.subset(rows)
    }

    /// All of them at once: nothing is read.
    public func blockRows(count: Int, shardSize: Int) -> Int { max(count, 1) }

    public func check(sampling: Sampling, shuffle: Bool, blocks: BlockShuffle, dataset: Dataset) throws(TrainingError) {}

    public func checkHoldOut(_ fraction: Double, of dataset: Dataset) throws(TrainingError) {}

    public func batches(of dataset: Dataset, from walker: EpochWalker, endEpoch: Int,
                        rows: @escaping @Sendable (Int) -> Range<Int>) -> any BatchSupply {
        InMemoryBatches(dataset: dataset)
    }

    public var waitsForRows: Bool { false }

    public func storage(of dataset: Dataset) -> FeatureStream.Storage {
        if case .bytes(_, let scale) = dataset.features { return .bytes(scale: scale) }
        return .floats
    }

    public func featureFingerprint(of dataset: Dataset) -> (hash: Fingerprint, storage: String) {
        var hash = Fingerprint()
        switch dataset.features {
        case .bytes(let bytes, let scale):
            hash.mix(array: bytes)
            return (hash, "scale \(scale)")
        case .floats(let values):
            hash.mix(array: values)
            return (hash, "float32")
        case .streamed:
            preconditionFailure("\(dataset.name): streamed rows are not in memory")
        }
    }

    public func verifyFingerprint(dataset: String) throws(TrainingError) {}
}

/// Every batch of a dataset in memory is the dataset itself, gathered by index.
final class InMemoryBatches: BatchSupply {
    let dataset: Dataset
    init(dataset: Dataset) { self.dataset = dataset }
    func batch(at position: TrainingPosition, indices: ArraySlice<Int32>) throws(TrainingError) -> Dataset { dataset }
    var waitedSeconds: Double { 0 }
    func cancel() {}
}

extension FeatureStream: RowSource {
    /// One read, in file order.
    public func rows(_ rows: Range<Int>, of dataset: Dataset) throws(TrainingError) -> Dataset {
        var block = [UInt8](repeating: 0, count: rows.count * bytesPerRow)
        do {
            try block.withUnsafeMutableBytes { try reader.read(rows: rows, into: $0) }
        } catch {
            throw .dataUnreadable(dataset: dataset.name, rows: rows, reason: "\(error)")
        }
        return dataset.holding(rows: rows, features: features(of: block))
    }

    /// The rows of a read (the file's chunk), rounded to whole shards.
    public func blockRows(count: Int, shardSize: Int) -> Int { max(1, readRows / shardSize) * shardSize }

    /// A stream reads blocks of rows; an order that is not made of them would hold the whole split.
    public func check(sampling: Sampling, shuffle: Bool, blocks: BlockShuffle, dataset: Dataset) throws(TrainingError) {
        guard sampling == .shuffle else {
            throw .invalidSetting("shuffleBlocks", value: "\(blocks.rows)",
                                  reason: "dataset \(dataset.name) is streamed, and Poisson sampling reads samples one by one from all of it; train it in memory")
        }
        guard !shuffle || blocks.isActive else {
            throw .invalidSetting("shuffleBlocks", value: "0",
                                  reason: "dataset \(dataset.name) is streamed, and a global shuffle reads rows at random from all of it; shuffle blocks of rows instead (e.g. 1024)")
        }
    }

    public func checkHoldOut(_ fraction: Double, of dataset: Dataset) throws(TrainingError) {
        throw .invalidSetting("validationFraction", value: "\(fraction)",
                              reason: "\(dataset.name) is streamed, and a held-out part would be read at random; store the split in the file "
                                + "(`backprop import … --validation-fraction`) and hold out none here (0)")
    }

    public func batches(of dataset: Dataset, from walker: EpochWalker, endEpoch: Int,
                        rows: @escaping @Sendable (Int) -> Range<Int>) -> any BatchSupply {
        BatchPrefetcher(dataset: dataset, stream: self, walker: walker, endEpoch: endEpoch, rows: rows)
    }

    public var waitsForRows: Bool { true }

    public func storage(of dataset: Dataset) -> FeatureStream.Storage { storage }

    public func featureFingerprint(of dataset: Dataset) -> (hash: Fingerprint, storage: String) {
        switch storage {
        case .bytes(let scale): return (Fingerprint(hash: featureHash), "scale \(scale)")
        case .floats: return (Fingerprint(hash: featureHash), "float32")
        }
    }

    public func verifyFingerprint(dataset: String) throws(TrainingError) { try verifyFeatureHash(dataset: dataset) }

    /// Stored rows as a dataset's features in memory.
    func features(of block: [UInt8]) -> Dataset.Features {
        switch storage {
        case .bytes(let scale): return .bytes(block, scale: scale)
        case .floats: return .floats(block.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
        }
    }
}

extension Dataset {
    /// Where this dataset's rows come from.
    public var source: any RowSource {
        if case .streamed(let stream) = features { return stream }
        return MemoryRows()
    }

    /// Rows `rows` as a dataset held in memory (`RowSource.rows`).
    /// - Throws: `TrainingError.dataUnreadable` when they cannot be read.
    public func rows(_ rows: Range<Int>) throws(TrainingError) -> Dataset { try source.rows(rows, of: self) }

    /// A dataset of this one's rows `rows` whose features are `features` (read for them): their targets, its name.
    func holding(rows: Range<Int>, features: Features) -> Dataset {
        let part: Targets
        switch targets {
        case .classes(let labels): part = .classes(Array(labels[rows]))
        case .values(let values, let width): part = .values(Array(values[(rows.lowerBound * width)..<(rows.upperBound * width)]), width: width)
        }
        var held = Dataset(name: name, features: features, targets: part, featureCount: featureCount)
        held.teacher = teacher.map { Array($0[(rows.lowerBound * targetWidth(of: $0))..<(rows.upperBound * targetWidth(of: $0))]) }
        held.teacherViews = teacherViews
        return held
    }

    /// The width of a row of `teacher` probabilities.
    func targetWidth(of teacher: [Float]) -> Int { teacher.count / max(count, 1) }
}
