import Glibc

/// Samples held in memory as the file stores them, converted to the
/// network's scalar type one shard at a time (a split too large to hold is a
/// `StreamedDataset`).
///
/// Features are bytes with a scale (images: 4× smaller than Float) or Float
/// values (measurements); targets are class labels (classification, t =
/// one-hot) or rows of real values (regression, t as stored).
public struct Dataset: RowSource, Equatable {
    /// How the inputs x are stored.
    public enum Features: Sendable, Equatable {
        /// x = scale · byte, [count, featureCount] row-major.
        case bytes([UInt8], scale: Float)
        /// x as stored, [count, featureCount] row-major.
        case floats([Float])
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
    /// A teacher's class probabilities beside the rows, when the run distils from it (`Distillation`); nil otherwise.
    public var teacher: TeacherColumn? = nil

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

    /// Whether these rows refit a run that recorded `trainedOn` (a
    /// `DataRecord`, "T; validation V"): T's rows followed by V's, so that
    /// every row which trained that run or chose its epoch trains this one,
    /// and none is left to judge it. Compares the rows' fingerprints of the
    /// two parts (a teacher's column is not part of them).
    public func isRefit(of trainedOn: String) -> Bool {
        let parts = trainedOn.components(separatedBy: DataRecord.separator)
        // A fingerprint begins with its row count ("54000x784 …").
        guard parts.count == 2, let kept = Int(parts[0].prefix { $0.isASCII && $0.isNumber }), (1..<count).contains(kept) else { return false }
        return prefix(kept).fingerprint == parts[0] && subset(kept..<count).fingerprint == parts[1]
    }

    /// `count` samples of `featureCount` random bytes with labels from
    /// `classCount` classes, reproducible from `seed`: for tests and for
    /// benchmarks, whose work does not depend on the values.
    public static func random(count: Int, featureCount: Int, classCount: Int, seed: UInt64) -> Dataset {
        var generator = SeededGenerator(seed: seed, stream: 99)
        let features = (0..<(count * featureCount)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let labels = (0..<count).map { _ in UInt8(generator.next() % UInt64(classCount)) }
        return Dataset(name: "random-\(seed)", features: features, labels: labels, featureCount: featureCount, scale: 1 / 255)
    }

    /// The samples at `indices`, in that order, as a new dataset (with their teacher's rows).
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
        }
        switch targets {
        case .classes(let labels): t = .classes(rows(labels, width: 1))
        case .values(let values, let width): t = .values(rows(values, width: width), width: width)
        }
        var subset = Dataset(name: name, features: x, targets: t, featureCount: featureCount)
        subset.imageShape = imageShape
        subset.teacher = teacher?.rows(at: indices, of: count)
        return subset
    }

    /// The first `sampleCount` samples, as a smaller dataset.
    public func prefix(_ sampleCount: Int) -> Dataset { subset(0..<min(sampleCount, count)) }

    /// Fills a block: x rows ← the features of samples `indices`, and t rows ←
    /// one-hot(label) over `outputCount` classes or the stored target row.
    ///
    /// x: [indices.count, featureCount], t: [indices.count, outputCount]; with
    /// `teacher`, q ← the teacher's probabilities of the samples, [indices.count, outputCount].
    /// With `augmentation`, each image is translated and mirrored as drawn
    /// for (seed, `epoch`, its index) while it is converted (`Augmentation`).
    /// Sample indices[r] is row indices[r] of this dataset, or with
    /// `firstRow` (a batch's own rows, `Batch.Layout.batchOrder`) its row `firstRow` + r.
    func gather<T: NetworkScalar>(
        _ indices: UnsafeBufferPointer<Int32>, firstRow: Int? = nil,
        inputs x: UnsafeMutablePointer<T>, targets t: UnsafeMutablePointer<T>, outputCount: Int,
        teacher q: UnsafeMutablePointer<T>? = nil, augmentation: AugmentationPlan? = nil, epoch: Int = 0
    ) {
        /// Where sample indices[r] is stored.
        func row(_ r: Int) -> Int { firstRow.map { $0 + r } ?? Int(indices[r]) }
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
            let views = teacher.views
            teacher.probabilities.withUnsafeBufferPointer { p in
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
    public func withStoredBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch features {
        case .bytes(let bytes, _): return try bytes.withUnsafeBytes(body)
        case .floats(let values): return try values.withUnsafeBytes(body)
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

/// Rows in memory: nothing is read, any order is served.
extension Dataset {
    public func rows(_ rows: Range<Int>) throws(TrainingError) -> Dataset {
        rows == 0..<count ? self : subset(rows)
    }

    /// All of them at once.
    public func blockRows(count: Int, shardSize: Int) -> Int { max(count, 1) }

    public func check(sampling: Sampling, shuffle: Bool, blocks: BlockShuffle) throws(TrainingError) {}

    public func batches(from walker: EpochWalker, endEpoch: Int, rows: @escaping @Sendable (Int) -> Range<Int>) -> any BatchSupply {
        InMemoryBatches(dataset: self)
    }

    public var storage: FeatureStream.Storage {
        if case .bytes(_, let scale) = features { return .bytes(scale: scale) }
        return .floats
    }

    public var waitsForRows: Bool { false }

    public var featureFingerprint: (hash: Fingerprint, storage: String) {
        var hash = Fingerprint()
        switch features {
        case .bytes(let bytes, let scale):
            hash.mix(array: bytes)
            return (hash, "scale \(scale)")
        case .floats(let values):
            hash.mix(array: values)
            return (hash, "float32")
        }
    }

    /// Computed from the rows: nothing to check.
    public func verifyFingerprint() throws(TrainingError) {}
}
