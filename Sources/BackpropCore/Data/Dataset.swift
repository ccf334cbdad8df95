import Glibc

/// Samples kept in memory as the file stores them, converted to the network's
/// scalar type one shard at a time.
///
/// Features are bytes with a scale (images: 4× smaller than Float) or Float
/// values (measurements); targets are class labels (classification, t =
/// one-hot) or rows of real values (regression, t as stored).
public struct Dataset: Sendable, Equatable {
    /// How the inputs x are stored.
    public enum Features: Sendable, Equatable {
        /// x = scale · byte, [count, featureCount] row-major.
        case bytes([UInt8], scale: Float)
        /// x as stored, [count, featureCount] row-major.
        case floats([Float])
        /// Rows read from storage ahead of the steps (`BatchPrefetcher`):
        /// never gathered here, but batch by batch into datasets that hold one batch.
        case streamed(FeatureStream)
    }

    /// How the targets t are stored.
    public enum Targets: Sendable, Equatable, CustomStringConvertible {
        /// The class index of each sample, [count]; t = one-hot(label).
        case classes([UInt8])
        /// Real-valued targets, [count, width] row-major; t as stored.
        case values([Float], width: Int)

        /// "class labels 0–9" or "2 real-valued targets per sample".
        public var description: String {
            switch self {
            case .classes(let labels): return "class labels 0–\(labels.max() ?? 0)"
            case .values(_, let width): return "\(width) real-valued target\(width == 1 ? "" : "s") per sample"
            }
        }
    }

    /// A name for messages: usually "file.h5:/train".
    public let name: String
    public let features: Features
    public let targets: Targets
    public let featureCount: Int
    /// The features as an image (what `--augment` needs), when the file says so.
    public var imageShape: ImageShape? = nil
    /// Whether this dataset holds the samples of one batch in the batch's
    /// order (what `BatchPrefetcher` hands a step): row r is then the r-th
    /// sample of the indices a step is given, which only name the samples
    /// (the keys of dropout and augmentation). Otherwise row i is sample i.
    public var holdsBatch = false
    /// A teacher's class probabilities p for each sample, [count, views, outputs]
    /// row-major, when the run distils from it (`Distillation`); nil otherwise.
    public var teacher: [Float]? = nil
    /// The images the teacher's probabilities are of: with no augmentation
    /// (one view), the sample as stored; otherwise each of `teacherViews`'
    /// views (`Augmentation.viewIndex`), so that a sample augmented in
    /// training is taught the teacher's probabilities of the image the
    /// student sees (Beyer et al. 2022, "consistent teaching").
    public var teacherViews = Augmentation()

    public var count: Int {
        switch targets {
        case .classes(let labels): return labels.count
        case .values(let values, let width): return values.count / width
        }
    }

    /// - Precondition: the arrays hold `count × featureCount` features and
    ///   `count` labels or `count × width` target values (storage validates
    ///   this at the boundary and throws).
    public init(name: String, features: Features, targets: Targets, featureCount: Int) {
        self.name = name
        self.features = features
        self.targets = targets
        self.featureCount = featureCount
        let featureValues: Int
        switch features {
        case .bytes(let bytes, _): featureValues = bytes.count
        case .floats(let values): featureValues = values.count
        case .streamed(let stream): featureValues = stream.count * stream.featureCount
        }
        if case .values(let values, let width) = targets {
            precondition(width > 0 && values.count % width == 0, "\(name): \(values.count) target values in rows of \(width)")
        }
        precondition(featureCount > 0 && featureValues == count * featureCount,
                     "\(name): \(featureValues) feature values for \(count) samples × \(featureCount)")
    }

    /// A classification dataset of byte features: x = scale · byte.
    public init(name: String, features: [UInt8], labels: [UInt8], featureCount: Int, scale: Float) {
        self.init(name: name, features: .bytes(features, scale: scale), targets: .classes(labels), featureCount: featureCount)
    }

    /// The class labels, or nil for regression targets.
    public var labels: [UInt8]? {
        if case .classes(let labels) = targets { return labels }
        return nil
    }

    /// What the targets ask of a model: classes or real values.
    public var task: LearningTask { labels == nil ? .regression : .classification }

    /// Whether `other`'s targets are of the same kind as this dataset's: the
    /// same task, and for regression rows of the same width (class labels
    /// may use fewer classes), so that one model fits both splits.
    public func hasTargets(like other: Dataset) -> Bool {
        task == other.task && (task == .classification || targetWidth == other.targetWidth)
    }

    /// The number of outputs the targets need: the largest label plus one, or
    /// the width of a target row.
    public var targetWidth: Int {
        switch targets {
        case .classes(let labels): return Int(labels.max() ?? 0) + 1
        case .values(_, let width): return width
        }
    }

    /// An identity of the contents: shape, storage and a 64-bit hash of every
    /// feature and target, so a checkpoint can tell which data it was trained
    /// on. (FNV-1a over 8-byte words: fast, not cryptographic.)
    /// A streamed split's is the same as its in-memory one's.
    public var fingerprint: String {
        var (hash, storage) = source.featureFingerprint(of: self)
        switch targets {
        case .classes(let labels): hash.mix(array: labels)
        case .values(let values, let width): hash.mix(array: values); hash.mix(UInt64(width))
        }
        if let teacher {
            hash.mix(array: teacher)
            if teacherViews.isActive { hash.mix(array: Array(teacherViews.description.utf8)) }
        }
        let hex = String(hash.hash, radix: 16)
        let image = imageShape.map { " image \($0)" } ?? ""
        return "\(count)x\(featureCount) \(storage)\(image) fnv1a64 " + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The teacher's column alone, fingerprinted as `fingerprint` hashes it
    /// there ("teacher 1000x1x10 fnv1a64 …"): what tells a changed teacher from
    /// changed data on resume; nil without a teacher.
    public var teacherFingerprint: String? {
        guard let teacher else { return nil }
        var hash = Fingerprint()
        hash.mix(array: teacher)
        if teacherViews.isActive { hash.mix(array: Array(teacherViews.description.utf8)) }
        let hex = String(hash.hash, radix: 16)
        let width = teacher.count / max(count * teacherViews.viewCount, 1)
        return "teacher \(count)x\(teacherViews.viewCount)x\(width) fnv1a64 " + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// What a run records of the data it trained on and chose on (a checkpoint's
    /// data fingerprint, a teacher's `trained_on`): "T; validation V", the two
    /// splits' fingerprints, or T alone without a validation split.
    public static func record(training: Dataset, validation: Dataset?) -> String {
        validation.map { training.fingerprint + validationSeparator + $0.fingerprint } ?? training.fingerprint
    }

    /// What separates T from V in a `record`.
    public static let validationSeparator = "; validation "

    /// Whether these rows refit a run that recorded `trainedOn` (a `record`,
    /// "T; validation V"): T's rows followed by V's, so that every row which
    /// trained that run or chose its epoch trains this one, and none is left
    /// to judge it. Compares the fingerprints of the two parts (the features
    /// in memory; false for streamed rows, which it does not read) and
    /// ignores a teacher's probabilities.
    public func isRefit(of trainedOn: String) -> Bool {
        let parts = trainedOn.components(separatedBy: Self.validationSeparator)
        // A fingerprint begins with its row count ("54000x784 …").
        guard parts.count == 2, let kept = Int(parts[0].prefix { $0.isASCII && $0.isNumber }), (1..<count).contains(kept) else { return false }
        if case .streamed = features { return false }
        var bare = self
        bare.teacher = nil
        return bare.prefix(kept).fingerprint == parts[0] && bare.subset(kept..<count).fingerprint == parts[1]
    }

    /// Checks a fingerprint the source read from storage against its rows
    /// (one pass over them), so that `fingerprint` says what the rows are
    /// wherever they come from (`RowSource.verifyFingerprint`).
    /// - Throws: `TrainingError.dataUnreadable` when they differ or cannot be read.
    public func verifyFingerprint() throws(TrainingError) { try source.verifyFingerprint(dataset: name) }

    /// `count` samples of `featureCount` random bytes with labels from
    /// `classCount` classes, reproducible from `seed`: for tests and for
    /// benchmarks, whose work does not depend on the values.
    public static func random(count: Int, featureCount: Int, classCount: Int, seed: UInt64) -> Dataset {
        var generator = SeededGenerator(seed: seed, stream: 99)
        let features = (0..<(count * featureCount)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let labels = (0..<count).map { _ in UInt8(generator.next() % UInt64(classCount)) }
        return Dataset(name: "random-\(seed)", features: features, labels: labels, featureCount: featureCount, scale: 1 / 255)
    }

    /// The samples at `indices`, in that order, as a new dataset.
    /// - Precondition: the features are in memory.
    public func subset<S: Sequence<Int>>(_ indices: S) -> Dataset {
        let indices = Array(indices)
        func rows<Element>(_ values: [Element], width: Int) -> [Element] {
            var picked: [Element] = []
            picked.reserveCapacity(indices.count * width)
            for i in indices { picked += values[(i * width)..<((i + 1) * width)] }
            return picked
        }
        let x: Features, t: Targets
        switch features {
        case .bytes(let bytes, let scale): x = .bytes(rows(bytes, width: featureCount), scale: scale)
        case .floats(let values): x = .floats(rows(values, width: featureCount))
        case .streamed: preconditionFailure("\(name): a streamed dataset has no subsets in memory")
        }
        switch targets {
        case .classes(let labels): t = .classes(rows(labels, width: 1))
        case .values(let values, let width): t = .values(rows(values, width: width), width: width)
        }
        var subset = Dataset(name: name, features: x, targets: t, featureCount: featureCount)
        subset.imageShape = imageShape
        subset.teacher = teacher.map { rows($0, width: $0.count / max(count, 1)) }
        subset.teacherViews = teacherViews
        return subset
    }

    /// The first `sampleCount` samples, as a smaller dataset.
    public func prefix(_ sampleCount: Int) -> Dataset { subset(0..<min(sampleCount, count)) }

    /// Checks that this dataset fits `network`: feature count = input width,
    /// every label < output width, or target rows as wide as the output and a
    /// sum-of-squares loss.
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
        if let teacher, teacher.count != count * teacherViews.viewCount * network.outputCount {
            throw .targetWidthMismatch(dataset: "\(name) (its teacher)", targets: teacher.count / max(count * teacherViews.viewCount, 1),
                                       networkOutputs: network.outputCount)
        }
    }

    /// Fills a block: x rows ← the features of samples `indices`, and t rows ←
    /// one-hot(label) over `outputCount` classes or the stored target row.
    ///
    /// x: [indices.count, featureCount], t: [indices.count, outputCount]; with
    /// `teacher`, q ← the teacher's probabilities of the samples, [indices.count, outputCount].
    /// With `augmentation`, each image is translated and mirrored as drawn
    /// for (seed, `epoch`, its index) while it is converted (`Augmentation`).
    /// When the dataset `holdsBatch`, sample indices[r] is its row
    /// `firstRow` + r (the indices' place in the batch); otherwise its row indices[r].
    func gather<T: NetworkScalar>(
        _ indices: UnsafeBufferPointer<Int32>, firstRow: Int = 0,
        inputs x: UnsafeMutablePointer<T>, targets t: UnsafeMutablePointer<T>, outputCount: Int,
        teacher q: UnsafeMutablePointer<T>? = nil, augmentation: AugmentationPlan? = nil, epoch: Int = 0
    ) {
        /// Where sample indices[r] is stored.
        let holdsBatch = self.holdsBatch
        func row(_ r: Int) -> Int { holdsBatch ? firstRow + r : Int(indices[r]) }
        /// Sample `index`'s translation and mirror this epoch; nil when it is left as stored.
        func draw(_ index: Int32) -> (dy: Int, dx: Int, mirrored: Bool)? {
            guard let augmentation else { return nil }
            let d = augmentation.augmentation.draw(seed: augmentation.seed, epoch: epoch, sample: Int(index))
            return d.dy == 0 && d.dx == 0 && !d.mirrored ? nil : d
        }
        switch features {
        case .bytes(let bytes, let scale):
            bytes.withUnsafeBufferPointer { bytes in
                // The rows of a shuffled batch are scattered: load a few rows
                // ahead, so that conversion does not wait on memory row by row.
                let ahead = Dataset.prefetchDistance
                for r in 0..<min(ahead, indices.count) {
                    prefetch(bytes.baseAddress! + row(r) * featureCount, count: featureCount)
                }
                func convert(_ source: UnsafePointer<UInt8>, _ count: Int, _ row: UnsafeMutablePointer<T>) {
                    if let row = floatPointer(row) {
                        convertBytesVectorized(source, count: count, scale: scale, into: row)
                    } else {
                        for i in 0..<count { row[i] = T(source[i]) * T(scale) }
                    }
                }
                for (r, index) in indices.enumerated() {
                    if r + ahead < indices.count {
                        prefetch(bytes.baseAddress! + row(r + ahead) * featureCount, count: featureCount)
                    }
                    let source = bytes.baseAddress! + row(r) * featureCount
                    let row = x + r * featureCount
                    if let d = draw(index), let shape = augmentation?.shape {
                        Augmentation.transform(shape: shape, dy: d.dy, dx: d.dx, mirrored: d.mirrored, into: row,
                                               copySpan: { convert(source + $0, $1, $2) })
                    } else {
                        convert(source, featureCount, row)
                    }
                }
            }
        case .floats(let values):
            values.withUnsafeBufferPointer { values in
                for (r, index) in indices.enumerated() {
                    let source = values.baseAddress! + row(r) * featureCount
                    let row = x + r * featureCount
                    if let d = draw(index), let shape = augmentation?.shape {
                        Augmentation.transform(shape: shape, dy: d.dy, dx: d.dx, mirrored: d.mirrored, into: row,
                                               copySpan: { from, count, to in for i in 0..<count { to[i] = T(source[from + i]) } })
                    } else {
                        for i in 0..<featureCount { row[i] = T(source[i]) }
                    }
                }
            }
        case .streamed:
            preconditionFailure("\(name): streamed rows are gathered by a BatchPrefetcher, a batch at a time")
        }
        switch targets {
        case .classes(let labels):
            for r in 0..<indices.count {
                let target = t + r * outputCount
                target.update(repeating: 0, count: outputCount)
                target[Int(labels[row(r)])] = 1
            }
        case .values(let values, let width):
            precondition(width == outputCount, "targets of width \(width) for \(outputCount) outputs")
            values.withUnsafeBufferPointer { values in
                for r in 0..<indices.count {
                    let source = values.baseAddress! + row(r) * width
                    for k in 0..<width { t[r * width + k] = T(source[k]) }
                }
            }
        }
        if let q, let teacher {
            // The teacher's probabilities of the view this step shows the student (the stored image without views).
            let views = teacherViews
            teacher.withUnsafeBufferPointer { p in
                for (r, index) in indices.enumerated() {
                    // `draw` is nil for the image as stored, which is the view (0, 0, unmirrored).
                    let d = views.isActive ? draw(index) ?? (dy: 0, dx: 0, mirrored: false) : nil
                    let view = d.map { views.viewIndex(dy: $0.dy, dx: $0.dx, mirrored: $0.mirrored) } ?? 0
                    let source = p.baseAddress! + (row(r) * views.viewCount + view) * outputCount
                    for k in 0..<outputCount { q[r * outputCount + k] = T(source[k]) }
                }
            }
        }
    }

    /// The features' bytes as stored (bytes, or float32 in the machine's order), row-major.
    /// - Precondition: they are in memory (`RowSource.rows` gives any rows so).
    public func withStoredBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch features {
        case .bytes(let bytes, _): return try bytes.withUnsafeBytes(body)
        case .floats(let values): return try values.withUnsafeBytes(body)
        case .streamed: preconditionFailure("\(name): streamed rows are read through its source")
        }
    }

    /// Asks the kernel to back the feature array with 2 MiB pages: a shuffled
    /// batch reads rows scattered over the whole array, and with 4 KiB pages
    /// nearly every row costs a TLB miss and a page walk. Best effort: where
    /// transparent huge pages are off (or the kernel predates MADV_COLLAPSE,
    /// Linux 6.1), nothing changes.
    public func adviseHugePages() {
        func advise(_ raw: UnsafeRawBufferPointer) {
            guard let base = raw.baseAddress else { return }
            let huge = 2 << 20
            let start = (UInt(bitPattern: base) + UInt(huge - 1)) & ~UInt(huge - 1)
            let end = (UInt(bitPattern: base) + UInt(raw.count)) & ~UInt(huge - 1)
            guard end > start, let region = UnsafeMutableRawPointer(bitPattern: start) else { return }
            _ = madvise(region, Int(end - start), 14)  // MADV_HUGEPAGE: for pages faulted later
            _ = madvise(region, Int(end - start), 25)  // MADV_COLLAPSE: the pages already there, now
        }
        switch features {
        case .bytes(let bytes, _): bytes.withUnsafeBytes(advise)
        case .floats(let values): values.withUnsafeBytes(advise)
        case .streamed: break  // the prefetcher's blocks come and go
        }
    }

    /// Rows prefetched ahead of the one being converted (measured: 8 and 16
    /// do best on Zen3; 0 to 4 leave most of the wait).
    static let prefetchDistance = 8

    /// Inputs and targets (one-hot for classes) of every sample as arrays
    /// (tests, small data).
    public func arrays<T: NetworkScalar>(outputCount: Int, as _: T.Type = T.self) -> (inputs: [T], targets: [T]) {
        var inputs = [T](repeating: 0, count: count * featureCount)
        var targets = [T](repeating: 0, count: count * outputCount)
        let order = (0..<Int32(count)).map { $0 }
        order.withUnsafeBufferPointer { indices in
            inputs.withUnsafeMutableBufferPointer { x in
                targets.withUnsafeMutableBufferPointer { t in
                    gather(indices, inputs: x.baseAddress!, targets: t.baseAddress!, outputCount: outputCount)
                }
            }
        }
        return (inputs, targets)
    }
}
