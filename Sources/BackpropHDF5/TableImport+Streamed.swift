// `import npy` of arrays larger than memory: x.npy is read a block of rows at
// a time (`NPYRows`) and each split is written as it is read
// (`DatasetFile.write(train: SplitRows, …)`). Memory holds a block, the
// targets, and one byte per row saying which split it goes to.
import BackpropCore
import BackpropIO
import Glibc

extension TableImport {
    /// The splits of an import, each read from its `.npy` files a block of rows at a time.
    public struct StreamedSplits {
        public let train: DatasetFile.SplitRows
        public let validation: DatasetFile.SplitRows?
        public let test: DatasetFile.SplitRows
        /// x [N, H, W] or [N, H, W, C] holds images.
        public let imageShape: ImageShape?
    }

    /// x.npy and y.npy as splits read a block of rows at a time, never whole,
    /// for arrays larger than memory. The rows keep the file's order. Without
    /// a test pair, round(`testFraction`·N) rows (at least one, at most N − 1)
    /// are held out as the test split by a seeded selection in one pass
    /// (`TableImport.testRows`): the rows an import in memory holds out, in the
    /// same order, byte for byte. With `validationFraction`, /validation is held out of the
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
        return try splits(of: table, test: testTable, features: features, testFraction: testFraction,
                          validationFraction: validationFraction, seed: seed,
                          imageShape: IDXImport.imageShape(of: Array(table.rows.shape.dropFirst())))
    }

    /// A CSV as splits read `csvChunkBytes` at a time, never whole, for files larger
    /// than memory: the file is read once to check it (every row, as `csv`
    /// checks it) and keep its targets, then once for each split. Rows, test
    /// and validation split as `npyRows(x:y:test:task:features:testFraction:validationFraction:seed:)` makes them.
    /// - Parameters:
    ///   - path: the CSV file.
    ///   - test: a CSV of the test split, instead of a held-out fraction.
    ///   - targetColumns: column names or 0-based indices, as `csv` takes them.
    ///   - header: nil to detect, as `csv` does.
    ///   - task: what the target columns hold.
    ///   - features: how the features are stored.
    ///   - testFraction: the share held out as the test split, without `test`.
    ///   - validationFraction: the share of the rest held out as /validation; 0 for none.
    ///   - seed: keys both selections.
    /// - Throws: `StorageError` naming the file, line and column; `TrainingError` for a validation fraction that leaves a split empty.
    public static func csvRows(
        _ path: String, test: String? = nil, targetColumns: [String] = [], header: Bool?, task: LearningTask = .classification,
        features: FeatureStorage = .auto, testFraction: Double = 0.2, validationFraction: Double = 0, seed: UInt64 = 0
    ) throws -> StreamedSplits {
        let table = try CSVTable(path, targetColumns: targetColumns, header: header, task: task)
        let testTable = try test.map { try CSVTable($0, targetColumns: targetColumns, header: header, task: task) }
        return try splits(of: table, test: testTable, features: features, testFraction: testFraction,
                          validationFraction: validationFraction, seed: seed, imageShape: nil)
    }

    /// The splits of `table`: every row to train on, except the test rows (a
    /// seeded selection, without a `test` table) and the validation rows.
    private static func splits(
        of table: any StreamedTable, test testTable: (any StreamedTable)?, features: FeatureStorage, testFraction: Double,
        validationFraction: Double, seed: UInt64, imageShape: ImageShape?
    ) throws -> StreamedSplits {
        if let testTable {
            guard testTable.featureCount == table.featureCount else {
                throw StorageError.wrongShape(path: testTable.path, object: "features", expected: "\(table.featureCount) a row like \(table.path)",
                                              found: "\(testTable.featureCount)")
            }
            guard testTable.targetWidth == table.targetWidth else {
                throw StorageError.wrongShape(path: testTable.path, object: "targets", expected: "\(table.targetWidth) a row like \(table.path)",
                                              found: "\(testTable.targetWidth)")
            }
        }
        // Stored alike: bytes only when every feature of both is a byte (auto), as an import in memory stores them.
        var storage = features
        if storage == .auto {
            storage = try table.allBytes() && (testTable?.allBytes() ?? true) ? .bytes : .float
        }

        // Which split each row goes to.
        let n = table.count
        var role = [Role](repeating: .train, count: n)
        if testTable == nil {
            guard n >= 2 else {
                throw StorageError.invalidContent(path: table.path, object: "rows",
                                                  reason: "holds \(n) sample; splitting needs at least 2 (one to train on, one to test)")
            }
            for (i, isTest) in TableImport.testRows(count: n, fraction: testFraction, seed: seed).enumerated() where isTest { role[i] = .test }
        }
        if validationFraction != 0 {
            let kept = (0..<n).filter { role[$0] == .train }
            let labels = table.task == .classification ? kept.map { UInt8(table.targets[$0]) } : nil
            for k in try Dataset.validationRows(labels: labels, count: kept.count, fraction: validationFraction, seed: seed) {
                role[kept[k]] = .validation
            }
        }
        let roles = role
        let train = table.source(rows: { roles[$0] == .train }, storage: storage)
        let validation = validationFraction == 0 ? nil : table.source(rows: { roles[$0] == .validation }, storage: storage)
        let heldOut = testTable?.source(rows: { _ in true }, storage: storage) ?? table.source(rows: { roles[$0] == .test }, storage: storage)
        return StreamedSplits(train: train, validation: validation, test: heldOut, imageShape: imageShape)
    }

    /// A table of features and targets that can be read again and again in
    /// order, a block at a time, with its targets held.
    protocol StreamedTable {
        var path: String { get }
        var count: Int { get }
        var featureCount: Int { get }
        /// The targets, `targetWidth` a row.
        var targets: [Float] { get }
        var targetWidth: Int { get }
        var task: LearningTask { get }
        /// Whether every feature is an integer 0…255.
        func allBytes() throws(StorageError) -> Bool
        /// The rows `included` picks, in order, as a split.
        func source(rows included: @escaping (Int) -> Bool, storage: FeatureStorage) -> DatasetFile.SplitRows
    }

    /// The rows of a block: the next `count` that `included` picks after the cursor.
    static func pick(_ count: Int, _ included: (Int) -> Bool, after cursor: Cursor, block: Range<Int>) -> [Int] {
        // The blocks come in order: the next rows picked follow the last one's.
        precondition(block.lowerBound == cursor.emitted, "block \(block) after \(cursor.emitted) rows")
        var picked: [Int] = []
        picked.reserveCapacity(count)
        while picked.count < count {
            if included(cursor.next) { picked.append(cursor.next) }
            cursor.next += 1
        }
        cursor.emitted = block.upperBound
        return picked
    }

    /// Stores `value`, a checked feature, as element `index` of a block.
    static func store(_ value: Float, at index: Int, in x: UnsafeMutableRawBufferPointer, as storage: FeatureStorage) {
        if storage == .bytes { x[index] = UInt8(value) } else { x.storeBytes(of: value, toByteOffset: 4 * index, as: Float.self) }
    }

    /// The targets of the rows picked, as a block's.
    static func targets(of picked: [Int], in table: any StreamedTable) -> Dataset.Targets {
        let width = table.targetWidth
        let t = picked.flatMap { table.targets[($0 * width)..<(($0 + 1) * width)] }
        return table.task == .classification ? .classes(t.map { UInt8($0) }) : .values(t, width: width)
    }

    /// The bytes of a CSV parsed at a time: their records, as Strings, take about ten times as much.
    static let csvChunkBytes = 256 << 10

    /// The split a row of an import goes to.
    enum Role: UInt8 { case train, validation, test }

    /// x.npy, read by rows, and the targets of y.npy, checked.
    struct NPYTable: StreamedTable {
        let rows: NPYRows
        let targetPath: String
        let targets: [Float]
        let targetWidth: Int
        let task: LearningTask

        var path: String { rows.path }
        var count: Int { rows.rows }
        var featureCount: Int { rows.rowElements }

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
        func source(rows included: @escaping (Int) -> Bool, storage: FeatureStorage) -> DatasetFile.SplitRows {
            let count = (0..<rows.rows).reduce(0) { included($1) ? $0 + 1 : $0 }
            let rows = self.rows, table = self
            let cursor = Cursor()
            let stored: FeatureStream.Storage = storage == .bytes ? .bytes(scale: 1 / 255) : .floats
            return DatasetFile.SplitRows(count: count, featureCount: rows.rowElements, storage: stored) { (block, x) throws(StorageError) in
                let picked = pick(block.count, included, after: cursor, block: block)
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
                        if let error = refusal(of: value, isTarget: false, task: table.task, storage: storage,
                                               at: (rows.path, "element \(picked[run] * rows.rowElements + i)")) { throw error }
                        store(value, at: out + i, in: x, as: storage)
                    }
                    out += values.count
                    run = end
                }
                return TableImport.targets(of: picked, in: table)
            }
        }
    }

    /// A CSV file read a chunk at a time: once at the start, to check every
    /// row and keep the targets; then once for each split, in order.
    struct CSVTable: StreamedTable {
        let path: String
        let count: Int
        let featureCount: Int
        let targets: [Float]
        let targetWidth: Int
        let task: LearningTask
        let hasHeader: Bool
        let width: Int
        let targetColumns: [Int]
        let featuresAreBytes: Bool

        init(_ path: String, targetColumns names: [String], header: Bool?, task: LearningTask) throws(StorageError) {
            self.path = path
            var header = header, columns: (width: Int, targets: [Int])?, headerNames: [String] = [], pendingNames = true
            var targets: [Float] = [], count = 0, bytes = true
            try Self.records(of: path) { (row) throws(StorageError) in
                if pendingNames {
                    pendingNames = false
                    let named = header ?? row.contains { Double($0.text) == nil }
                    header = named
                    if named { headerNames = row.map(\.text); return }
                }
                if columns == nil {
                    columns = try csvColumns(names: headerNames, firstRow: row, targetColumns: names, task: task, path: path)
                }
                let (width, targetColumns) = columns!
                let values = try csvValues(row, width: width, path: path)
                for (c, value) in values.enumerated() {
                    let isTarget = targetColumns.contains(c)
                    if let error = refusal(of: value, isTarget: isTarget, task: task, storage: .float,
                                           at: (path, "line \(row[c].line), column \(c + 1)")) { throw error }
                    if !isTarget && bytes && !isByte(value) { bytes = false }
                }
                for c in targetColumns { targets.append(values[c]) }
                count += 1
            }
            guard !pendingNames else { throw .invalidContent(path: path, object: "file", reason: "is empty") }
            guard let columns else { throw .invalidContent(path: path, object: "rows", reason: "need at least one row of a feature and a target") }
            (self.count, self.targets, self.task, self.hasHeader, featuresAreBytes) = (count, targets, task, header ?? false, bytes)
            (width, targetColumns) = columns
            (featureCount, targetWidth) = (columns.width - columns.targets.count, columns.targets.count)
        }

        /// Every record of the file, in order, read `csvChunkBytes` at a time.
        static func records(of path: String, _ each: ([CSVField]) throws(StorageError) -> Void) throws(StorageError) {
            let file: FileDescriptor
            do { file = try FileDescriptor(opening: path, O_RDONLY) } catch {
                throw error.code == ENOENT ? .missingFile(path: path) : .io(path: path, reason: error.description)
            }
            var parser = CSVParser(path: path), offset = 0
            let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: TableImport.csvChunkBytes, alignment: 16)
            defer { chunk.deallocate() }
            while true {
                let got: Int
                do { got = try preadFully(file.raw, into: chunk, at: offset) } catch { throw .io(path: path, reason: error.description) }
                if got == 0 { break }
                try parser.feed(UnsafeRawBufferPointer(rebasing: chunk[0..<got]), each: each)
                offset += got
            }
            try parser.finish(each: each)
        }

        func allBytes() throws(StorageError) -> Bool { featuresAreBytes }

        func source(rows included: @escaping (Int) -> Bool, storage: FeatureStorage) -> DatasetFile.SplitRows {
            let count = (0..<self.count).reduce(0) { included($1) ? $0 + 1 : $0 }
            let stored: FeatureStream.Storage = storage == .bytes ? .bytes(scale: 1 / 255) : .floats
            let reader = CSVRowReader(table: self)
            let cursor = Cursor()
            return DatasetFile.SplitRows(count: count, featureCount: featureCount, storage: stored) { (block, x) throws(StorageError) in
                let picked = pick(block.count, included, after: cursor, block: block)
                for (k, row) in picked.enumerated() {
                    let record = try reader.record(row)
                    let values = try csvValues(record, width: width, path: path)
                    var column = 0
                    for (c, value) in values.enumerated() where !targetColumns.contains(c) {
                        if let error = refusal(of: value, isTarget: false, task: task, storage: storage,
                                               at: (path, "line \(record[c].line), column \(c + 1)")) { throw error }
                        store(value, at: k * featureCount + column, in: x, as: storage)
                        column += 1
                    }
                }
                return TableImport.targets(of: picked, in: self)
            }
        }
    }

    /// The records of a CSV's rows in order, `csvChunkBytes` of the file parsed at a time.
    final class CSVRowReader {
        let table: CSVTable
        var parser: CSVParser
        var offset = 0
        var file: FileDescriptor?
        /// Records parsed and not yet taken; the row number of the first.
        var pending: [[CSVField]] = []
        var first = 0
        var headerSkipped: Bool
        var ended = false

        init(table: CSVTable) {
            self.table = table
            parser = CSVParser(path: table.path)
            headerSkipped = !table.hasHeader
        }

        /// The record of data row `row` (0-based, after the header); rows are asked for in ascending order.
        func record(_ row: Int) throws(StorageError) -> [CSVField] {
            precondition(row >= first, "row \(row) after \(first)")
            while row - first >= pending.count {
                first += pending.count
                pending.removeAll(keepingCapacity: true)
                try refill()
            }
            return pending[row - first]
        }

        private func refill() throws(StorageError) {
            let path = table.path
            guard !ended else { throw .io(path: path, reason: "holds fewer rows than when it was first read (changed since?)") }
            if file == nil {
                do { file = try FileDescriptor(opening: path, O_RDONLY) } catch { throw .io(path: path, reason: error.description) }
            }
            var parsed: [[CSVField]] = []
            let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: TableImport.csvChunkBytes, alignment: 16)
            defer { chunk.deallocate() }
            let got: Int
            do { got = try preadFully(file!.raw, into: chunk, at: offset) } catch { throw .io(path: path, reason: error.description) }
            offset += got
            if got == 0 {
                ended = true
                try parser.finish { parsed.append($0) }
            } else {
                try parser.feed(UnsafeRawBufferPointer(rebasing: chunk[0..<got])) { parsed.append($0) }
            }
            if !headerSkipped && !parsed.isEmpty {
                headerSkipped = true
                parsed.removeFirst()
            }
            pending = parsed
        }
    }

    /// Where a split's source has got to.
    final class Cursor {
        var next = 0
        var emitted = 0
    }
}
