/// A split as training, evaluation and prediction read it: its rows held in
/// memory (`Dataset`), or read from storage as they are needed
/// (`StreamedDataset`, whose stream BackpropHDF5 opens). The targets and a
/// teacher's column are in memory either way; the features are what differ.
///
/// Training, evaluation, prediction, the validation split and a resume's
/// check of the data read rows through this protocol and never ask which
/// kind a split is: what differs — how a step's batch arrives, how rows are
/// read in blocks, which visiting orders can be served without holding every
/// row, what the features' fingerprint rests on — is each kind's. Either way
/// a batch holds the same samples in the same order, so a step computes the
/// same bits.
public protocol RowSource: Sendable {
    /// A name for messages: usually "file.h5:/train".
    var name: String { get }
    /// Values a row, F.
    var featureCount: Int { get }
    /// The targets t of every row, in memory.
    var targets: Dataset.Targets { get }
    /// The features as an image (what `--augment` needs), when the file says so.
    var imageShape: ImageShape? { get }
    /// A teacher's probabilities beside the rows, when the run distils from it.
    var teacher: TeacherColumn? { get set }

    /// Rows `rows` as a dataset in memory, their targets and teacher's column beside them.
    /// - Throws: `TrainingError.dataUnreadable` when they cannot be read.
    func rows(_ rows: Range<Int>) throws(TrainingError) -> Dataset

    /// Rows to read at a time when `count` rows are read from first to last
    /// in blocks of whole shards of `shardSize` (evaluation, prediction).
    func blockRows(count: Int, shardSize: Int) -> Int

    /// Refuses a run whose visiting order (`sampling`, and with `shuffle` on,
    /// `blocks`) cannot be served without holding every row.
    func check(sampling: Sampling, shuffle: Bool, blocks: BlockShuffle) throws(TrainingError)

    /// A seeded, stratified hold-out of a share `fraction` (`Dataset.split(validationFraction:seed:)`).
    /// - Throws: `TrainingError.invalidSetting("validationFraction", …)`, also
    ///   where holding out would read the rows at random.
    func holdOut(_ fraction: Double, seed: UInt64) throws(TrainingError) -> (train: any RowSource, validation: any RowSource)

    /// The batches of a run from `walker`'s position on, through the end of
    /// epoch `endEpoch` − 1: for each, this process's rows (`rows` of a batch of a given size).
    func batches(from walker: EpochWalker, endEpoch: Int, rows: @escaping @Sendable (Int) -> Range<Int>) -> any BatchSupply

    /// How the rows' features are stored: bytes with a scale, or float32.
    var storage: FeatureStream.Storage { get }

    /// Whether a step can wait for these rows (then the run reports how long it did).
    var waitsForRows: Bool { get }

    /// The features' part of the fingerprint: the FNV-1a state after every
    /// feature byte, and how a row is stored ("scale 0.0039", "float32").
    var featureFingerprint: (hash: Fingerprint, storage: String) { get }

    /// Checks a fingerprint read from storage against the rows, so that the
    /// fingerprint says what the rows are (nothing to do for one computed from them).
    /// - Throws: `TrainingError.dataUnreadable` naming the split.
    func verifyFingerprint() throws(TrainingError)

    /// Asks the kernel for huge pages under rows that stay in memory (`Dataset.adviseHugePages`).
    func adviseHugePages()
}

/// What every split derives from its targets and fingerprints.
extension RowSource {
    public var count: Int {
        switch targets {
        case .classes(let labels): return labels.count
        case .values(let values, let width): return values.count / width
        }
    }

    /// The class labels, or nil for regression targets.
    public var labels: [UInt8]? {
        if case .classes(let labels) = targets { return labels }
        return nil
    }

    /// What the targets ask of a model: classes or real values.
    public var task: LearningTask { labels == nil ? .regression : .classification }

    /// The number of outputs the targets need: the largest label plus one, or
    /// the width of a target row.
    public var targetWidth: Int {
        switch targets {
        case .classes(let labels): return Int(labels.max() ?? 0) + 1
        case .values(_, let width): return width
        }
    }

    /// Whether `other`'s targets are of the same kind as these: the same
    /// task, and for regression rows of the same width (class labels may use
    /// fewer classes), so that one model fits both splits.
    public func hasTargets(like other: some RowSource) -> Bool {
        task == other.task && (task == .classification || targetWidth == other.targetWidth)
    }

    /// An identity of the rows: shape, storage and a 64-bit hash of every
    /// feature and target, so a checkpoint can tell which data it was trained
    /// on (FNV-1a over 8-byte words: fast, not cryptographic). The same in
    /// memory and streamed; a teacher's column is not part of it (`taughtFingerprint`).
    public var fingerprint: String { fingerprint(teacher: nil) }

    /// The rows' fingerprint continued over the teacher's column, when there
    /// is one: what a distilled run trains on, and records.
    public var taughtFingerprint: String { fingerprint(teacher: teacher) }

    private func fingerprint(teacher: TeacherColumn?) -> String {
        var (hash, storage) = featureFingerprint
        switch targets {
        case .classes(let labels): hash.mix(array: labels)
        case .values(let values, let width): hash.mix(array: values); hash.mix(UInt64(width))
        }
        teacher?.mix(into: &hash)
        let image = imageShape.map { " image \($0)" } ?? ""
        return "\(count)x\(featureCount) \(storage)\(image) fnv1a64 " + hash.hex
    }

    /// The teacher's column alone, fingerprinted ("teacher 1000x1x10 fnv1a64 …"); nil without a teacher.
    public var teacherFingerprint: String? { teacher?.fingerprint(samples: count) }

    /// Checks that these rows fit `network`: feature count = input width,
    /// every label < output width, or target rows as wide as the output and a
    /// sum-of-squares loss; a teacher's column as wide as the output.
    /// - Throws: `TrainingError.inputWidthMismatch`, `.labelOutOfRange`,
    ///   `.targetWidthMismatch`, `.regressionNeedsSumOfSquares`.
    public func validate<T>(for network: Network<T>) throws(TrainingError) {
        guard featureCount == network.inputCount else {
            throw .inputWidthMismatch(dataset: name, features: featureCount, networkInputs: network.inputCount)
        }
        switch targets {
        case .classes(let labels):
            if let index = labels.firstIndex(where: { Int($0) >= network.outputCount }) {
                throw .labelOutOfRange(dataset: name, index: index, label: Int(labels[index]),
                                       outputCount: network.outputCount)
            }
        case .values(_, let width):
            guard width == network.outputCount else {
                throw .targetWidthMismatch(dataset: name, targets: width, networkOutputs: network.outputCount)
            }
            guard network.loss == .sumOfSquares else { throw .regressionNeedsSumOfSquares(dataset: name) }
        }
        if let teacher, teacher.probabilities.count != count * teacher.views.viewCount * network.outputCount {
            throw .targetWidthMismatch(dataset: "\(name) (its teacher)",
                                       targets: teacher.probabilities.count / max(count * teacher.views.viewCount, 1),
                                       networkOutputs: network.outputCount)
        }
    }

    /// A run's training and validation parts from these rows and `stored`,
    /// the dataset's own validation split (nil: none): with a `fraction`
    /// > 0, that share held out (`holdOut`); else
    /// these rows and the stored split.
    /// - Throws: `TrainingError.invalidSetting("validationFraction", …)` for a
    ///   fraction given with a stored split (which would then choose
    ///   nothing), and `split`'s errors.
    public func validationParts(fraction: Double, seed: UInt64, stored: (any RowSource)?) throws(TrainingError)
        -> (train: any RowSource, validation: (any RowSource)?) {
        guard fraction > 0 else { return (self, stored) }
        if let stored {
            throw .invalidSetting("validationFraction", value: "\(fraction)",
                                  reason: "the data carries its own validation split (\(stored.name)); train with it (a fraction of 0) "
                                    + "or with a dataset without one")
        }
        return try holdOut(fraction, seed: seed)
    }

    /// The targets and teacher's column of rows `rows`, beside `features` read for them, as a dataset in memory.
    func holding(rows: Range<Int>, features: Dataset.Features) -> Dataset {
        let part: Dataset.Targets
        switch targets {
        case .classes(let labels): part = .classes(Array(labels[rows]))
        case .values(let values, let width): part = .values(Array(values[(rows.lowerBound * width)..<(rows.upperBound * width)]), width: width)
        }
        var held = Dataset(name: name, features: features, targets: part, featureCount: featureCount)
        held.imageShape = imageShape
        held.teacher = teacher?.rows(rows, of: count)
        return held
    }
}

/// What a run records of the data it trained on and chose on (a checkpoint's
/// data fingerprint, a teacher's `trained_on`).
public enum DataRecord {
    /// "T; validation V", the two splits' fingerprints (with `teacher`, each
    /// continued over its teacher's column: `taughtFingerprint`), or T alone
    /// without a validation split.
    public static func of(training: any RowSource, validation: (any RowSource)?, teacher: Bool = false) -> String {
        func print(_ split: any RowSource) -> String { teacher ? split.taughtFingerprint : split.fingerprint }
        return validation.map { print(training) + separator + print($0) } ?? print(training)
    }

    /// What separates T from V in a record.
    public static let separator = "; validation "
}

/// The rows of one step's batch, as the step reads them.
public struct Batch: Sendable {
    /// Where the batch's samples are in `data`.
    public enum Layout: Sendable, Equatable {
        /// `data` is the whole split: sample i is its row i.
        case whole
        /// `data` holds the batch's samples alone, in the batch's order: its r-th sample is row r.
        case batchOrder
    }

    public let data: Dataset
    public let layout: Layout

    public init(_ data: Dataset, layout: Layout = .whole) {
        self.data = data
        self.layout = layout
    }
}

/// A step's batches as they arrive: the whole dataset in memory, or a
/// prefetcher's rows of each batch.
public protocol BatchSupply: AnyObject {
    /// The rows of the batch at `position` whose samples are `indices`.
    func batch(at position: TrainingPosition, indices: ArraySlice<Int32>) throws(TrainingError) -> Batch
    /// Seconds the steps waited for batches.
    var waitedSeconds: Double { get }
    /// Stops whatever reads ahead.
    func cancel()
}

/// Every batch of a dataset in memory is the dataset itself, gathered by index.
final class InMemoryBatches: BatchSupply {
    let batch: Batch
    init(dataset: Dataset) { batch = Batch(dataset) }
    func batch(at position: TrainingPosition, indices: ArraySlice<Int32>) throws(TrainingError) -> Batch { batch }
    var waitedSeconds: Double { 0 }
    func cancel() {}
}
