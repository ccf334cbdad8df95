import BackpropCore
import BackpropIO
import Foundation

/// Datasets from CSV files and NumPy `.npy` arrays.
///
/// Features that are all integers 0…255 (pixels, counts, categories) are
/// stored as bytes with scale 1/255, like images; any other finite numbers as
/// float32. Classification targets must be class numbers 0…255; regression
/// targets any finite numbers. Anything else is refused with the file, the
/// row and column (or array element) and the value.
public enum TableImport {
    /// How feature values are stored.
    public enum FeatureStorage: String, CaseIterable, Sendable {
        /// Bytes (scale 1/255) when every value is an integer 0…255, else float32.
        case auto
        /// Bytes, scale 1/255; values must be integers 0…255.
        case bytes
        /// float32 as given.
        case float
    }

    /// Builds a dataset from a table of values, [rows, columns] row-major,
    /// whose `targetColumns` are the targets and the rest the features.
    /// - Parameter locate: the file and the place in it of a value, for errors.
    static func dataset(
        name: String, values: [Float], columns: Int, targetColumns: [Int], task: LearningTask, storage: FeatureStorage,
        locate: (_ row: Int, _ column: Int) -> (path: String, object: String)
    ) throws(StorageError) -> Dataset {
        let rows = values.count / columns
        let isTarget = (0..<columns).map { targetColumns.contains($0) }
        let featureCount = columns - targetColumns.count
        var x: [Float] = [], t: [Float] = []
        x.reserveCapacity(rows * featureCount)
        t.reserveCapacity(rows * targetColumns.count)
        for r in 0..<rows {
            for c in 0..<columns {
                let value = values[r * columns + c]
                if let error = refusal(of: value, isTarget: isTarget[c], task: task, storage: storage, at: locate(r, c)) { throw error }
            }
            // Targets in the order the columns were named.
            for c in 0..<columns where !isTarget[c] { x.append(values[r * columns + c]) }
            for c in targetColumns { t.append(values[r * columns + c]) }
        }
        let asBytes = storage == .bytes || (storage == .auto && x.allSatisfy(isByte))
        let features: Dataset.Features = asBytes ? .bytes(x.map { UInt8($0) }, scale: 1 / 255) : .floats(x)
        let targets: Dataset.Targets = task == .classification ? .classes(t.map { UInt8($0) }) : .values(t, width: targetColumns.count)
        return Dataset(name: name, features: features, targets: targets, featureCount: featureCount)
    }

    /// Why `value` cannot be a target of `task` or a feature stored as
    /// `storage`, as the error naming its place; nil when it can.
    static func refusal(of value: Float, isTarget: Bool, task: LearningTask, storage: FeatureStorage,
                        at place: (path: String, object: String)) -> StorageError? {
        func refuse(_ reason: String, advice: StorageError.Advice? = nil) -> StorageError {
            guard let advice else { return .invalidContent(path: place.path, object: place.object, reason: "\(value) is not " + reason) }
            return .refused(path: place.path, object: place.object, reason: "\(value) is not " + reason, advice: advice)
        }
        guard value.isFinite else { return refuse("a finite number") }
        if isTarget {
            guard task == .regression || isByte(value) else { return refuse("a class number 0…255", advice: .regressionTask) }
        } else if storage == .bytes && !isByte(value) {
            return refuse("an integer 0…255, as byte features must be", advice: .floatFeatures)
        }
        return nil
    }

    /// Whether `value` is an integer 0…255, which a byte stores exactly.
    static func isByte(_ value: Float) -> Bool { value.rounded() == value && (0...255).contains(value) }

    // MARK: - CSV

    /// Reads a CSV of numeric features and target columns.
    /// - Parameters:
    ///   - path: the CSV file.
    ///   - task: what the target columns hold: class numbers or real values.
    ///   - storage: how to store the features (bytes × 1/255 or float32; auto decides).
    ///   - targetColumns: column names or 0-based indices; empty: the column
    ///     named "label" (or "target"), else the last one.
    ///   - header: nil to detect (a first row with any non-number is a header).
    public static func csv(
        _ path: String, targetColumns: [String] = [], header: Bool?, task: LearningTask = .classification,
        features storage: FeatureStorage = .auto
    ) throws(StorageError) -> Dataset {
        guard let data = FileManager.default.contents(atPath: path) else { throw .missingFile(path: path) }
        return try csv(data, path: path, targetColumns: targetColumns, header: header, task: task, features: storage)
    }

    /// Reads CSV text as `csv(_:targetColumns:header:task:features:)` does; `path` names it in errors.
    public static func csv(
        _ data: Data, path: String, targetColumns: [String] = [], header: Bool?, task: LearningTask = .classification,
        features storage: FeatureStorage = .auto
    ) throws(StorageError) -> Dataset {
        var rows = try csvRecords(data, path: path)
        guard let first = rows.first else { throw .invalidContent(path: path, object: "file", reason: "is empty") }
        let hasHeader = header ?? first.contains { Double($0.text) == nil }
        let names = hasHeader ? rows.removeFirst().map(\.text) : []
        let (width, targets) = try csvColumns(names: names, firstRow: rows.first, targetColumns: targetColumns, task: task, path: path)
        var values: [Float] = []
        values.reserveCapacity(rows.count * width)
        for row in rows { values += try csvValues(row, width: width, path: path) }
        let lines = rows.map { $0.first?.line ?? 0 }
        return try dataset(name: path, values: values, columns: width, targetColumns: targets, task: task, storage: storage) {
            (path, "line \(lines[$0]), column \($1 + 1)")
        }
    }

    /// The width of a CSV's rows and its target columns, checked: from the
    /// header's names (empty without one) and the first row.
    static func csvColumns(names: [String], firstRow: [CSVField]?, targetColumns: [String], task: LearningTask,
                           path: String) throws(StorageError) -> (width: Int, targets: [Int]) {
        guard let width = firstRow?.count, width >= 2 else {
            throw .invalidContent(path: path, object: "rows", reason: "need at least one row of a feature and a target")
        }
        // Each name's first column, and how often it is named: one pass (a header of 200,000 names takes milliseconds).
        var column: [String: Int] = [:], uses: [String: Int] = [:]
        if !names.isEmpty {
            guard names.count == width else {
                throw .invalidContent(path: path, object: "header (line 1)",
                                      reason: "names \(names.count) columns, the first row has \(width)")
            }
            for (index, name) in names.enumerated() {
                if column[name] == nil { column[name] = index }
                uses[name, default: 0] += 1
            }
            if let duplicate = names.first(where: { uses[$0, default: 0] > 1 }) {
                throw .invalidContent(path: path, object: "header (line 1)", reason: "names the column '\(duplicate)' twice")
            }
        }
        let columnIndex = column
        var targets: [Int] = []
        for column in targetColumns {
            if let index = Int(column) {
                guard (0..<width).contains(index) else {
                    throw .invalidContent(path: path, object: "target column", reason: "\(index) is outside the \(width) columns")
                }
                targets.append(index)
            } else {
                guard let index = columnIndex[column] else {
                    throw .invalidContent(path: path, object: "target column", reason: "no column is named '\(column)'")
                }
                targets.append(index)
            }
        }
        if targets.isEmpty { targets = [columnIndex["label"] ?? columnIndex["target"] ?? width - 1] }
        guard Set(targets).count == targets.count, targets.count < width else {
            throw .invalidContent(path: path, object: "target columns", reason: "\(targetColumns) must be distinct and leave at least one feature")
        }
        guard task == .regression || targets.count == 1 else {
            throw .invalidContent(path: path, object: "target columns", reason: "classification takes one label column, not \(targets.count)")
        }
        return (width, targets)
    }

    /// The values of a CSV record of `width` fields, checked: as many as the first row's, each a number.
    static func csvValues(_ row: [CSVField], width: Int, path: String) throws(StorageError) -> [Float] {
        let line = row.first?.line ?? 0
        guard row.count == width else {
            throw .invalidContent(path: path, object: "line \(line)", reason: "has \(row.count) columns, the first row \(width)")
        }
        var values: [Float] = []
        values.reserveCapacity(width)
        for (c, field) in row.enumerated() {
            guard let value = Float(field.text) else {
                throw .invalidContent(path: path, object: "line \(line), column \(c + 1)", reason: "'\(field.text)' is not a number")
            }
            values.append(value)
        }
        return values
    }

    /// One field of a CSV record, and the line it starts on (1-based).
    struct CSVField {
        let text: String
        let line: Int
    }

    /// The records of a CSV file (`CSVParser`), all at once.
    static func csvRecords(_ data: Data, path: String) throws(StorageError) -> [[CSVField]] {
        var parser = CSVParser(path: path), records: [[CSVField]] = []
        try parser.feed(data) { records.append($0) }
        try parser.finish { records.append($0) }
        return records
    }

    /// The records of a CSV file per RFC 4180, pushed a chunk of bytes at a
    /// time (a whole file, or blocks of one larger than memory): fields
    /// separated by commas, records by CRLF, LF or CR; a field may be quoted
    /// ("…"), with "" for a quote and line breaks inside; a UTF-8 byte-order
    /// mark is skipped, as are blank lines; spaces around an unquoted field
    /// are trimmed. Refused, naming the line: not UTF-8, a quote inside an
    /// unquoted field, text after a closing quote, a quote never closed.
    struct CSVParser {
        let path: String
        private var field = "", quoted = false, inQuotes = false, afterQuote = false
        /// A quote inside quotes: "" or the closing quote, as the next scalar says.
        private var quoteInQuotes = false
        /// A CR outside quotes: it ends the record, unless an LF follows and does (CRLF).
        private var carriageReturn = false
        private var record: [CSVField] = []
        private(set) var line = 1
        private var fieldLine = 1
        /// The first bytes of a UTF-8 sequence that the chunk cut.
        private var carried: [UInt8] = []
        private var started = false

        init(path: String) { self.path = path }

        /// Parses `bytes`, the file's next ones, calling `each` with every record they end.
        mutating func feed(_ bytes: some Collection<UInt8>, each: ([CSVField]) throws(StorageError) -> Void) throws(StorageError) {
            var chunk = carried + bytes
            if !started && (chunk.count >= 3 || bytes.isEmpty) {
                started = true
                if chunk.starts(with: [0xEF, 0xBB, 0xBF]) { chunk.removeFirst(3) }
            } else if !started {
                carried = chunk
                return
            }
            // Hold back a sequence the chunk cut short: its lead byte says how long it is.
            var complete = chunk.count
            for back in stride(from: 1, through: min(3, chunk.count), by: 1) {
                let byte = chunk[chunk.count - back]
                guard byte & 0xC0 == 0x80 else {
                    let length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                    if length > back { complete = chunk.count - back }
                    break
                }
            }
            carried = Array(chunk[complete...])
            guard let text = String(validating: chunk[..<complete], as: UTF8.self) else {
                throw .invalidContent(path: path, object: "line \(line)", reason: "is not UTF-8 text")
            }
            for c in text.unicodeScalars { try take(c, each: each) }
        }

        /// Ends the file: the last record, unless the file left a quote open.
        mutating func finish(each: ([CSVField]) throws(StorageError) -> Void) throws(StorageError) {
            if !started || !carried.isEmpty {
                let rest = carried
                (started, carried) = (true, [])
                guard rest.isEmpty || String(validating: rest, as: UTF8.self) != nil else {
                    throw .invalidContent(path: path, object: "line \(line)", reason: "is not UTF-8 text")
                }
                if !rest.isEmpty { try feed(rest, each: each) }
            }
            if quoteInQuotes { (quoteInQuotes, inQuotes, afterQuote) = (false, false, true) }
            if carriageReturn { try endLine(each: each) }
            guard !inQuotes else { throw .invalidContent(path: path, object: "line \(fieldLine)", reason: "opens a quote that is never closed") }
            if !field.isEmpty || quoted || !record.isEmpty { try endRecord(each: each) }
        }

        private mutating func take(_ c: Unicode.Scalar, each: ([CSVField]) throws(StorageError) -> Void) throws(StorageError) {
            if quoteInQuotes {
                quoteInQuotes = false
                if c == "\"" { field.unicodeScalars.append("\""); return }
                (inQuotes, afterQuote) = (false, true)
            }
            if carriageReturn {
                carriageReturn = false
                if c != "\n" { try endLine(each: each) }
            }
            if inQuotes {
                if c == "\"" { quoteInQuotes = true; return }
                if c == "\n" { line += 1 }
                field.unicodeScalars.append(c)
                return
            }
            switch c {
            case ",": endField()
            case "\r": carriageReturn = true
            case "\n": try endLine(each: each)
            case "\"":
                guard field.trimmingCharacters(in: .whitespaces).isEmpty, !afterQuote else {
                    throw .invalidContent(path: path, object: "line \(line)",
                                          reason: "has a quote inside an unquoted field (quote the whole field and double the quote)")
                }
                (field, quoted, inQuotes) = ("", true, true)
            default:
                guard !afterQuote || c == " " || c == "\t" else {
                    throw .invalidContent(path: path, object: "line \(line)", reason: "has text after a closing quote")
                }
                if !afterQuote { field.unicodeScalars.append(c) }
            }
        }

        private mutating func endField() {
            record.append(CSVField(text: quoted ? field : field.trimmingCharacters(in: .whitespaces), line: fieldLine))
            (field, quoted, afterQuote, fieldLine) = ("", false, false, line)
        }

        private mutating func endRecord(each: ([CSVField]) throws(StorageError) -> Void) throws(StorageError) {
            endField()
            // A blank line is one empty field: skipped.
            let ended = record
            record = []
            if !(ended.count == 1 && ended[0].text.isEmpty) { try each(ended) }
        }

        private mutating func endLine(each: ([CSVField]) throws(StorageError) -> Void) throws(StorageError) {
            try endRecord(each: each)
            line += 1
            fieldLine = line
        }
    }

    // MARK: - NumPy

    /// x.npy [N, …] and y.npy ([N] labels or targets, or [N, K] regression
    /// targets) as a dataset.
    public static func npy(
        x xPath: String, y yPath: String, task: LearningTask = .classification, features storage: FeatureStorage = .auto
    ) throws(StorageError) -> Dataset {
        let xArray = try NPYArray.read(xPath), yArray = try NPYArray.read(yPath)
        let (xShape, x, yShape, y) = (xArray.shape, xArray.values, yArray.shape, yArray.values)
        guard xShape.count >= 2, xShape[0] > 0, (1...2).contains(yShape.count), yShape[0] == xShape[0] else {
            throw .wrongShape(path: yPath, object: "y", expected: "[N] or [N, K] with N = rows of \(xPath) \(xShape)", found: "\(yShape)")
        }
        let n = xShape[0], featureCount = xShape.dropFirst().reduce(1, *), width = yShape.count == 2 ? yShape[1] : 1
        guard task == .regression || yShape.count == 1 else {
            throw .refused(path: yPath, object: "y", reason: "its shape \(yShape) is not [N] class labels", advice: .regressionTask)
        }
        guard featureCount > 0, width > 0 else {
            throw .wrongShape(path: xPath, object: "x", expected: "at least one feature and one target", found: "x \(xShape), y \(yShape)")
        }
        // One table: the features, then the targets, per row.
        var table: [Float] = []
        table.reserveCapacity(n * (featureCount + width))
        for r in 0..<n {
            table += x[(r * featureCount)..<((r + 1) * featureCount)]
            table += y[(r * width)..<((r + 1) * width)]
        }
        var imported = try dataset(name: xPath, values: table, columns: featureCount + width,
                                   targetColumns: Array(featureCount..<(featureCount + width)), task: task, storage: storage) { r, c in
            c < featureCount ? (xPath, "element \(r * featureCount + c)") : (yPath, "element \(r * width + c - featureCount)")
        }
        // x [N, H, W] or [N, H, W, C] holds images.
        imported.imageShape = IDXImport.imageShape(of: Array(xShape.dropFirst()))
        return imported
    }

    // MARK: - Split

    /// The two splits of one dataset with their features stored alike: when
    /// one split's values are all integers 0…255 (bytes, scale 1/255) and the
    /// other's are not (float32, as given), the first is stored as float32
    /// too, as given, so that the same input means the same number in both.
    public static func storedAlike(_ train: Dataset, _ test: Dataset) -> (train: Dataset, test: Dataset) {
        func asFloats(_ dataset: Dataset) -> Dataset {
            guard case .bytes(let bytes, _) = dataset.features else { return dataset }
            return Dataset(name: dataset.name, features: .floats(bytes.map(Float.init)), targets: dataset.targets,
                           featureCount: dataset.featureCount)
        }
        switch (train.features, test.features) {
        case (.bytes, .floats), (.floats, .bytes): return (asFloats(train), asFloats(test))
        default: return (train, test)
        }
    }

    /// The samples held out as the test split (`testRows`), both parts in the file's order.
    public static func split(_ dataset: Dataset, testFraction: Double, seed: UInt64) -> (train: Dataset, test: Dataset) {
        let isTest = testRows(count: dataset.count, fraction: testFraction, seed: seed)
        return (dataset.subset((0..<dataset.count).filter { !isTest[$0] }), dataset.subset((0..<dataset.count).filter { isTest[$0] }))
    }

    /// Which of `count` rows a seeded hold-out of `fraction` keeps for the
    /// test split: round(f·N) rows (at least 1, at most N − 1), chosen in one
    /// pass in row order by selection sampling (Knuth's Algorithm S: row i
    /// with probability needed / rows left). A pure function of (N, f, seed),
    /// so an import in memory and a streamed one hold out the same rows on any machine.
    /// - Precondition: `count` ≥ 2.
    public static func testRows(count n: Int, fraction: Double, seed: UInt64) -> [Bool] {
        precondition(n >= 2, "a test split of \(n) rows")
        var isTest = [Bool](repeating: false, count: n)
        var need = min(max(Int((Double(n) * fraction).rounded()), 1), n - 1)
        var generator = SeededGenerator(seed: seed, stream: 7)
        for i in 0..<n where need > 0 {
            if Double(generator.next() >> 11) * 0x1p-53 * Double(n - i) < Double(need) {
                isTest[i] = true
                need -= 1
            }
        }
        return isTest
    }
}
