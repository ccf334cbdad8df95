// `import npy` of arrays larger than memory: x.npy is read a block of rows at
// a time (`NPYRows`) and each split is written as it is read
// (`DatasetFile.write(train: RowSource, …)`). Memory holds a block, the
// targets, and one byte per row saying which split it goes to.
import BackpropCore

extension TableImport {
    /// The splits of an import, each read from its `.npy` files a block of rows at a time.
    public struct StreamedSplits {
        public let train: DatasetFile.RowSource
        public let validation: DatasetFile.RowSource?
        public let test: DatasetFile.RowSource
        /// x [N, H, W] or [N, H, W, C] holds images.
        public let imageShape: ImageShape?
    }

    /// x.npy and y.npy as splits read a block of rows at a time, never whole,
    /// for arrays larger than memory. The rows keep the file's order. Without
    /// a test pair, round(`testFraction`·N) rows (at least one, at most N − 1)
    /// are held out as the test split by a seeded selection in one pass
    /// (selection sampling): not the rows an import in memory holds out, which
    /// shuffles. With `validationFraction`, /validation is held out of the
    /// rest as `Dataset.split(validationFraction:seed:)` holds it out.
    /// - Parameters:
    ///   - x: the features, [N, …], in C order.
    ///   - y: the labels [N], or regression targets [N] or [N, K].
    ///   - test: the test split's x and y, instead of a held-out fraction.
    ///   - task: what y holds.
    ///   - features: how the features are stored (auto reads x once first, to see whether every value is a byte).
    ///   - testFraction: the share held out as the test split, without `test`.
    ///   - validationFraction: the share of the rest held out as /validation; 0 for none.
    ///   - seed: keys both selections.
    /// - Throws: `StorageError` naming the file and what is wrong in it;
    ///   `TrainingError` for a validation fraction that leaves a split empty.
    public static func npyRows(
        x: String, y: String, test: (x: String, y: String)? = nil, task: LearningTask = .classification,
        features: FeatureStorage = .auto, testFraction: Double = 0.2, validationFraction: Double = 0, seed: UInt64 = 0
    ) throws -> StreamedSplits {
        let table = try NPYTable(x: x, y: y, task: task)
        let testTable = try test.map { try NPYTable(x: $0.x, y: $0.y, task: task) }
        if let testTable {
            guard testTable.rows.rowElements == table.rows.rowElements else {
                throw StorageError.wrongShape(path: testTable.rows.path, object: "x", expected: "rows of \(table.rows.rowElements) like \(x)",
                                              found: "\(testTable.rows.shape)")
            }
            guard testTable.targetWidth == table.targetWidth else {
                throw StorageError.wrongShape(path: testTable.targetPath, object: "y", expected: "\(table.targetWidth) targets a row like \(y)",
                                              found: "\(testTable.targetWidth)")
            }
        }
        // Stored alike: bytes only when every feature of both is a byte (auto), as an import in memory stores them.
        var storage = features
        if storage == .auto {
            storage = try table.allBytes() && (testTable?.allBytes() ?? true) ? .bytes : .float
        }

        // Which split each row of x goes to.
        let n = table.rows.rows
        var role = [Role](repeating: .train, count: n)
        if testTable == nil {
            guard n >= 2 else {
                throw StorageError.invalidContent(path: x, object: "x", reason: "holds \(n) sample; splitting needs at least 2 (one to train on, one to test)")
            }
            var need = min(max(Int((Double(n) * testFraction).rounded()), 1), n - 1)
            var generator = SeededGenerator(seed: seed, stream: 7)
            for i in 0..<n where need > 0 {
                // Selection sampling (Knuth's Algorithm S): row i with probability need / rows left.
                if Double(generator.next() >> 11) * 0x1p-53 * Double(n - i) < Double(need) {
                    role[i] = .test
                    need -= 1
                }
            }
        }
        if validationFraction != 0 {
            let kept = (0..<n).filter { role[$0] == .train }
            let labels = table.labels.map { labels in kept.map { labels[$0] } }
            for k in try Dataset.validationRows(labels: labels, count: kept.count, fraction: validationFraction, seed: seed) {
                role[kept[k]] = .validation
            }
        }
        let roles = role
        let train = table.source(rows: { roles[$0] == .train }, storage: storage)
        let validation = validationFraction == 0 ? nil : table.source(rows: { roles[$0] == .validation }, storage: storage)
        let heldOut = testTable?.source(rows: { _ in true }, storage: storage) ?? table.source(rows: { roles[$0] == .test }, storage: storage)
        return StreamedSplits(train: train, validation: validation, test: heldOut,
                              imageShape: IDXImport.imageShape(of: Array(table.rows.shape.dropFirst())))
    }

    /// The split a row of an import goes to.
    enum Role: UInt8 { case train, validation, test }

    /// x.npy, read by rows, and the targets of y.npy, checked.
    struct NPYTable {
        let rows: NPYRows
        let targetPath: String
        let targets: [Float]
        let targetWidth: Int
        let task: LearningTask

        var labels: [UInt8]? { task == .classification ? targets.map { UInt8($0) } : nil }

        init(x: String, y: String, task: LearningTask) throws(StorageError) {
            rows = try NPYRows(x)
            let yArray = try NPYArray.read(y)
            let (xShape, yShape) = (rows.shape, yArray.shape)
            guard xShape.count >= 2, xShape[0] > 0, (1...2).contains(yShape.count), yShape[0] == xShape[0] else {
                throw .wrongShape(path: y, object: "y", expected: "[N] or [N, K] with N = rows of \(x) \(xShape)", found: "\(yShape)")
            }
            guard task == .regression || yShape.count == 1 else {
                throw .refused(path: y, object: "y", reason: "its shape \(yShape) is not [N] class labels", advice: .regressionTask)
            }
            guard rows.rowElements > 0, yShape.count == 1 || yShape[1] > 0 else {
                throw .wrongShape(path: x, object: "x", expected: "at least one feature and one target", found: "x \(xShape), y \(yShape)")
            }
            for (i, value) in yArray.values.enumerated() {
                if let error = refusal(of: value, isTarget: true, task: task, storage: .float, at: (y, "element \(i)")) { throw error }
            }
            (targetPath, targets, targetWidth, self.task) = (y, yArray.values, yShape.count == 2 ? yShape[1] : 1, task)
        }

        /// Rows a read: about a MiB of the file.
        var blockRows: Int { max(1, (1 << 20) / max(1, rows.rowBytes)) }

        /// Whether every feature is an integer 0…255 (and finite): one read of x.
        func allBytes() throws(StorageError) -> Bool {
            if rows.elementsAreBytes { return true }
            for start in stride(from: 0, to: rows.rows, by: blockRows) {
                let values = try rows.values(start..<min(start + blockRows, rows.rows))
                for (i, value) in values.enumerated() where !isByte(value) {
                    if let error = refusal(of: value, isTarget: false, task: task, storage: .float,
                                           at: (rows.path, "element \(start * rows.rowElements + i)")) { throw error }
                    return false
                }
            }
            return true
        }

        /// The rows `included` picks, in order, as a split read a block at a
        /// time: each run of consecutive rows in one read.
        func source(rows included: @escaping (Int) -> Bool, storage: FeatureStorage) -> DatasetFile.RowSource {
            let count = (0..<rows.rows).reduce(0) { included($1) ? $0 + 1 : $0 }
            let (rows, targets, width, task) = (self.rows, self.targets, targetWidth, self.task)
            let cursor = Cursor()
            let stored: FeatureStream.Storage = storage == .bytes ? .bytes(scale: 1 / 255) : .floats
            return DatasetFile.RowSource(count: count, featureCount: rows.rowElements, storage: stored) { (block, x) throws(StorageError) in
                // The blocks come in order: the next rows picked follow the last one's.
                precondition(block.lowerBound == cursor.emitted, "block \(block) after \(cursor.emitted) rows")
                var picked: [Int] = []
                picked.reserveCapacity(block.count)
                while picked.count < block.count {
                    if included(cursor.next) { picked.append(cursor.next) }
                    cursor.next += 1
                }
                cursor.emitted = block.upperBound
                var out = 0
                var run = 0
                while run < picked.count {
                    var end = run + 1
                    while end < picked.count && picked[end] == picked[end - 1] + 1 { end += 1 }
                    let span = picked[run]..<(picked[end - 1] + 1)
                    if storage == .bytes && rows.elementsAreBytes {
                        // uint8 or bool to bytes: as the file holds them.
                        let bytes = span.count * rows.rowElements
                        try rows.readBytes(span, into: UnsafeMutableRawBufferPointer(rebasing: x[out..<(out + bytes)]))
                        out += bytes
                        run = end
                        continue
                    }
                    let values = try rows.values(span)
                    for (i, value) in values.enumerated() {
                        if let error = refusal(of: value, isTarget: false, task: task, storage: storage,
                                               at: (rows.path, "element \(picked[run] * rows.rowElements + i)")) { throw error }
                        if storage == .bytes { x[out + i] = UInt8(value) } else { x.storeBytes(of: value, toByteOffset: 4 * (out + i), as: Float.self) }
                    }
                    out += values.count
                    run = end
                }
                let t = picked.flatMap { targets[($0 * width)..<(($0 + 1) * width)] }
                return task == .classification ? .classes(t.map { UInt8($0) }) : .values(t, width: width)
            }
        }
    }

    /// Where a split's source has got to.
    final class Cursor {
        var next = 0
        var emitted = 0
    }
}
