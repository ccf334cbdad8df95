import BackpropCore
import BackpropIO

/// The HDF5 layout of a dataset file:
///
///     /            attributes: format = "backprop-dataset", source, …
///     /train/x     features [N, F]: uint8 with attribute scale (float32,
///                  x = scale · byte), or float32 (x as stored)
///     /train/y     targets: uint8 [N] class labels (classification), or
///                  float32 [N, K] real values (regression)
///     /test/x      as /train/x, with the same F and storage
///     /test/y      as /train/y, of the same kind (and K)
///     /validation  optional: x and y as /test's, held out of the training
///                  data at import (`--validation-fraction`)
///
/// Image datasets say so in root attributes `image_height`, `image_width`
/// and optionally `image_channels` (integers; F = H·W·C, each row stored
/// row-major with the channels last), which `--augment` needs.
public enum DatasetFile {
    public static let format = "backprop-dataset"
    public static let splits = ["train", "test"]

    /// Reads and validates both splits.
    /// - Throws: `StorageError` naming the file and the object at fault.
    public static func load(_ path: String) throws(StorageError) -> (train: Dataset, test: Dataset) {
        try load(HDF5File.open(path))
    }

    /// Reads and validates both splits of an open file (a path or a memory
    /// image); with `streamingTrain` or `streamingTest`, that split's features
    /// stay in the file (`streamedSplit`).
    public static func load(_ file: HDF5File, streamingTrain: Bool = false, streamingTest: Bool = false) throws(StorageError) -> (train: Dataset, test: Dataset) {
        let train = try training(of: file, streaming: streamingTrain)
        let test = streamingTest ? try streamedSplit("test", of: file) : try split("test", of: file)
        try check(test, "test", like: (train.featureCount, train.targets), in: file)
        return (train, test)
    }

    /// /train alone, of a file whose format is checked; nothing of /test is
    /// read (a run that reports no test score reads none of it).
    public static func training(of file: HDF5File, streaming: Bool = false) throws(StorageError) -> Dataset {
        if try file.hasAttribute("format") {
            let format = try file.stringAttribute("format")
            guard format == DatasetFile.format else { throw .wrongFormat(path: file.path, found: format, expected: DatasetFile.format) }
        }
        return streaming ? try streamedSplit("train", of: file) : try split("train", of: file)
    }

    /// The file's own validation split (/validation), checked like /test; nil
    /// when it has none. With `streaming`, its features stay in the file.
    public static func validation(of file: HDF5File, streaming: Bool = false) throws(StorageError) -> Dataset? {
        guard try file.exists("/validation") else { return nil }
        let validation = streaming ? try streamedSplit("validation", of: file) : try split("validation", of: file)
        // /train's header and targets, not its features (which may be larger than memory).
        let xShape = try file.shape(of: "/train/x")
        try check(validation, "validation", like: (xShape.count == 2 ? xShape[1] : 0, try targets("/train/y", of: file).0), in: file)
        return validation
    }

    /// A split other than /train must fit the model /train trains: as many features, targets of its kind.
    private static func check(_ data: Dataset, _ name: String, like train: (featureCount: Int, targets: Dataset.Targets),
                              in file: HDF5File) throws(StorageError) {
        guard train.featureCount == data.featureCount else {
            throw .wrongShape(path: file.path, object: "/\(name)/x", expected: "[M, \(train.featureCount)] like /train/x",
                              found: "[\(data.count), \(data.featureCount)]")
        }
        let sameKind: Bool
        switch (train.targets, data.targets) {
        case (.classes, .classes): sameKind = true
        case (.values(_, let a), .values(_, let b)): sameKind = a == b
        default: sameKind = false
        }
        guard sameKind else {
            throw .invalidContent(path: file.path, object: "/\(name)/y", reason: "holds \(data.targets) but /train/y \(train.targets)")
        }
    }

    /// The root attributes an importer records beside the layout's own (`source`), for a rewrite to keep.
    public static func sourceAttributes(of file: HDF5File) throws(StorageError) -> [String: String] {
        try file.hasAttribute("source") ? ["source": try file.stringAttribute("source")] : [:]
    }

    /// The file's class names (root attribute `class_names`), checked
    /// against its labels: one name for every class number used; nil without them.
    public static func classNames(of file: HDF5File) throws(StorageError) -> [String]? {
        guard let names = try ClassNames.read(from: file, object: "/") else { return nil }
        for name in splits + (try file.exists("/validation") ? ["validation"] : []) {
            if case .classes(let labels) = try targets("/\(name)/y", of: file).0, let top = labels.max(), Int(top) >= names.count {
                throw .invalidContent(path: file.path, object: "attribute 'class_names' of /",
                                      reason: "names \(names.count) classes, but /\(name)/y holds the label \(top)")
            }
        }
        return names
    }

    /// Reads one split ("/train" or "/test"): x rank 2 (uint8 with a scale, or
    /// float32), y uint8 rank 1 or float32 rank 2, with as many rows as x.
    /// - Throws: `StorageError` naming the file and the object at fault.
    public static func split(_ name: String, of file: HDF5File) throws(StorageError) -> Dataset {
        let xName = "/\(name)/x", yName = "/\(name)/y"
        let (x, xShape) = try features(xName, of: file)
        let (y, rows) = try targets(yName, of: file)
        guard rows == xShape[0] else {
            throw .wrongShape(path: file.path, object: yName, expected: "\(xShape[0]) rows (one per row of \(xName))", found: "\(rows)")
        }
        guard xShape[0] > 0, xShape[1] > 0 else {
            throw .invalidContent(path: file.path, object: xName, reason: "has no samples or no features (shape \(xShape))")
        }
        var dataset = Dataset(name: "\(file.path):/\(name)", features: x, targets: y, featureCount: xShape[1])
        dataset.imageShape = try imageShape(of: file, featureCount: xShape[1])
        return dataset
    }

    /// Whether split `name`'s features carry the fingerprints an importer
    /// stores (`BlockFingerprints`): then streaming them reads nothing at start.
    public static func storesFingerprints(of name: String, in file: HDF5File) throws(StorageError) -> Bool {
        guard try file.exists(BlockFingerprints.object(name)) else { return false }
        return try file.hasAttribute(BlockFingerprints.wholeAttribute, of: "/\(name)/x")
    }

    /// The bytes split `name`'s features take as stored (N × F × the element's
    /// size), from the header alone: what decides whether it is streamed.
    public static func featureBytes(of name: String, in file: HDF5File) throws(StorageError) -> Int {
        let object = "/\(name)/x"
        let shape = try file.shape(of: object)
        let element = try file.storesFloats(object) ? MemoryLayout<Float>.size : 1
        return shape.reduce(element) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
    }

    /// Split `name` with its features left in the file, read by rows on
    /// demand (`FeatureStream`, by pread at the offsets libhdf5 reports):
    /// x uint8 with a scale or float32 [N, F], N < 2³¹, contiguous or chunked
    /// by whole rows, without filters. The targets are read whole; every
    /// feature row is read once, in blocks, for the fingerprint (and float
    /// features checked finite), so that the split is the one `split` reads.
    /// - Throws: `StorageError` naming the file, the object and the rows at fault.
    public static func streamedSplit(_ name: String, of file: HDF5File) throws(StorageError) -> Dataset {
        let xName = "/\(name)/x", yName = "/\(name)/y"
        let shape = try file.shape(of: xName)
        guard shape.count == 2 else { throw .wrongRank(path: file.path, object: xName, expected: 2, found: shape.count) }
        guard shape[0] > 0, shape[1] > 0 else {
            throw .invalidContent(path: file.path, object: xName, reason: "has no samples or no features (shape \(shape))")
        }
        guard shape[0] <= Int(Int32.max) else {
            throw .invalidContent(path: file.path, object: xName, reason: "has \(shape[0]) rows; a split holds at most \(Int32.max) samples")
        }
        let floats = try file.storesFloats(xName)
        if floats { try file.requireNativeElements(xName, Float.self) } else { try file.requireNativeElements(xName, UInt8.self) }
        let storage: FeatureStream.Storage = floats ? .floats : .bytes(scale: try scale(of: xName, in: file))
        let layout = try file.rowLayout(of: xName, shape: shape, elementSize: floats ? MemoryLayout<Float>.size : 1)
        let stored = try BlockFingerprints.read(from: file, split: name, rows: shape[0])
        // Float rows are checked finite as they are read, block by block, like a loaded split's whole.
        let reader = try FileRowReader(file: file, object: xName, layout: layout, fingerprints: stored,
                                       finiteColumns: floats ? shape[1] : nil)
        let (y, rows) = try targets(yName, of: file)
        guard rows == shape[0] else {
            throw .wrongShape(path: file.path, object: yName, expected: "\(shape[0]) rows (one per row of \(xName))", found: "\(rows)")
        }
        let blockRows = stored?.blockRows ?? layout.rowsPerChunk ?? max(1, (1 << 20) / layout.rowBytes)
        if let stored {
            // Fingerprinted at import: nothing to read now; each block is checked as it is read.
            let stream = FeatureStream(storage: storage, count: shape[0], featureCount: shape[1], reader: reader,
                                       readRows: blockRows, featureHash: stored.whole, featureHashIsStored: true)
            var dataset = Dataset(name: "\(file.path):/\(name)", features: .streamed(stream), targets: y, featureCount: shape[1])
            dataset.imageShape = try imageShape(of: file, featureCount: shape[1])
            return dataset
        }
        // One pass over the rows, a block at a time: the fingerprint, and the floats' check.
        var hash = Fingerprint()
        let block = UnsafeMutableRawBufferPointer.allocate(byteCount: blockRows * layout.rowBytes, alignment: 64)
        defer { block.deallocate() }
        for start in stride(from: 0, to: shape[0], by: blockRows) {
            let range = start..<min(start + blockRows, shape[0])
            let part = UnsafeMutableRawBufferPointer(rebasing: block[0..<(range.count * layout.rowBytes)])
            try reader.readRows(range, into: part)
            hash.mix(bytes: UnsafeRawBufferPointer(part))
        }
        hash.finishArray()
        let stream = FeatureStream(storage: storage, count: shape[0], featureCount: shape[1], reader: reader,
                                   readRows: blockRows, featureHash: hash.hash)
        var dataset = Dataset(name: "\(file.path):/\(name)", features: .streamed(stream), targets: y, featureCount: shape[1])
        dataset.imageShape = try imageShape(of: file, featureCount: shape[1])
        return dataset
    }

    static let imageAttributes = (height: "image_height", width: "image_width", channels: "image_channels")

    /// The images' shape from the root attributes, checked against the
    /// `featureCount` features of a row; nil when the file records none.
    /// - Throws: `StorageError` naming the file and the attribute when one is missing, not an integer, or does not fit.
    public static func imageShape(of file: HDF5File, featureCount: Int) throws(StorageError) -> ImageShape? {
        let names = imageAttributes
        var present: [String] = []
        for name in [names.height, names.width, names.channels] where try file.hasAttribute(name) { present.append(name) }
        guard !present.isEmpty else { return nil }
        var values: [Int] = []
        for name in [names.height, names.width, names.channels] {
            guard present.contains(name) else {
                guard name == names.channels else {
                    throw .missingObject(path: file.path, object: "attribute '\(name)' of / (the images' shape has \(present.joined(separator: " and ")) only)")
                }
                values.append(1)
                continue
            }
            let value = try file.attribute(name, as: Int64.self)
            guard value >= 1, value <= 1 << 20 else {
                throw .invalidContent(path: file.path, object: "attribute '\(name)' of /", reason: "is \(value); it must be 1 … 1048576")
            }
            values.append(Int(value))
        }
        let shape = ImageShape(height: values[0], width: values[1], channels: values[2])
        guard shape.featureCount == featureCount else {
            throw .invalidContent(path: file.path, object: "attributes '\(names.height)', '\(names.width)', '\(names.channels)' of /",
                                  reason: "give an image of \(shape.description) = \(shape.featureCount) values, but a row holds \(featureCount) features")
        }
        return shape
    }

    /// x = scale · byte for the training split's byte features; nil when they are stored as floats.
    /// - Throws: `StorageError` naming the file and the attribute when the scale is missing or unusable.
    public static func featureScale(of file: HDF5File) throws(StorageError) -> Float? {
        try file.storesFloats("/train/x") ? nil : try scale(of: "/train/x", in: file)
    }

    /// The checked `scale` attribute of byte features `object`.
    private static func scale(of object: String, in file: HDF5File) throws(StorageError) -> Float {
        guard try file.hasAttribute("scale", of: object) else {
            throw .missingObject(path: file.path, object: "attribute 'scale' of \(object) (x = scale · byte; 1/255 for images)")
        }
        let scale = try file.attribute("scale", of: object, as: Float.self)
        guard scale.isFinite, scale > 0 else {
            throw .invalidContent(path: file.path, object: "attribute 'scale' of \(object)", reason: "is \(scale); it must be a finite number > 0")
        }
        // The largest feature, 255 · scale, must be a Float too.
        guard (255 * scale).isFinite else {
            throw .invalidContent(path: file.path, object: "attribute 'scale' of \(object)",
                                  reason: "is \(scale), so a byte of 255 stands for \(255 * Double(scale)), beyond float32; it must be at most \(Float.greatestFiniteMagnitude / 255)")
        }
        return scale
    }

    /// The features of a split and their shape [N, F].
    private static func features(_ object: String, of file: HDF5File) throws(StorageError) -> (Dataset.Features, [Int]) {
        if try file.storesFloats(object) {
            let (x, shape) = try finiteFloats(object, of: file)
            return (.floats(x), shape)
        }
        let (x, shape) = try file.read(object, as: UInt8.self, rank: 2)
        return (.bytes(x, scale: try scale(of: object, in: file)), shape)
    }

    /// The targets of a split (class labels or rows of real values) and their
    /// number of rows.
    private static func targets(_ object: String, of file: HDF5File) throws(StorageError) -> (Dataset.Targets, Int) {
        if try file.storesFloats(object) {
            let (t, shape) = try finiteFloats(object, of: file)
            guard shape[1] > 0 else { throw .invalidContent(path: file.path, object: object, reason: "has no target columns (shape \(shape))") }
            return (.values(t, width: shape[1]), shape[0])
        }
        let labels = try file.read(object, as: UInt8.self, rank: 1).values
        return (.classes(labels), labels.count)
    }

    /// A float32 [rows, columns] dataset whose every value is finite.
    private static func finiteFloats(_ object: String, of file: HDF5File) throws(StorageError) -> ([Float], [Int]) {
        let (values, shape) = try file.read(object, as: Float.self, rank: 2)
        try values.withUnsafeBufferPointer { (values) throws(StorageError) in
            try requireFinite(values, columns: shape[1], firstRow: 0, path: file.path, object: object)
        }
        return (values, shape)
    }

    /// The one check of float data, loaded or streamed: every value finite.
    /// - Parameters:
    ///   - values: rows of `columns` values, the first of them row `firstRow` of `object`.
    ///   - columns: values per row.
    ///   - firstRow: the row of `object` the values start at.
    ///   - path: the file, for the error.
    ///   - object: the dataset, for the error.
    /// - Throws: `StorageError.invalidContent` naming the file, the object, the row and the column of the first NaN or ±∞.
    static func requireFinite(_ values: UnsafeBufferPointer<Float>, columns: Int, firstRow: Int, path: String,
                              object: String) throws(StorageError) {
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw .invalidContent(path: path, object: object, reason: "holds \(values[i]) at row \(firstRow + i / columns), column \(i % columns)")
        }
    }

    /// Rows per chunk of the feature datasets the importers write: the
    /// largest power of two of whole rows in `chunkBytes` (at least one), so
    /// that a streaming reader reads a chunk with one pread, libhdf5's chunk
    /// cache (1 MiB) holds one, and `--shuffle-blocks` has a round number to
    /// match (1,024 rows of Fashion-MNIST's 784 bytes).
    public static func chunkRows(rowBytes: Int) -> Int {
        let fit = max(1, chunkBytes / max(rowBytes, 1))
        return 1 << (Int.bitWidth - 1 - fit.leadingZeroBitCount)
    }

    /// The target size of a feature chunk (measured in docs/performance-log.md, 2026-12-03).
    public static let chunkBytes = 1 << 20

    /// The most chunks a feature dataset is split into.
    public static let chunkLimit = 4096

    /// Rows per HDF5 chunk of a split of `rows` rows: `chunkRows(rowBytes:)`
    /// (the rows of a fingerprint block), doubled until the split takes at
    /// most `chunkLimit` chunks. libhdf5 1.10 finds a chunk's address only by
    /// walking the chunk index (`H5Dget_chunk_info`, even `…_by_coord`), so
    /// opening a split costs time quadratic in its chunks: 12 s for the
    /// 24,912 chunks of 20 GB in 1 MiB chunks, 0.24 s for its 3,114 of 6 MiB (8,192 rows).
    /// - Parameters:
    ///   - rowBytes: the bytes of a row.
    ///   - rows: the split's rows.
    ///   - chunkLimit: the most chunks.
    public static func storageChunkRows(rowBytes: Int, rows: Int, chunkLimit: Int = chunkLimit) -> Int {
        var chunk = chunkRows(rowBytes: rowBytes)
        while Epochs.batches(of: rows, in: chunk) > chunkLimit && chunk <= Int(Int32.max) / 2 { chunk *= 2 }
        return chunk
    }

    /// Writes a dataset file atomically (temporary file, then rename), after
    /// reading its image back with `load`: a file the readers would refuse
    /// (an empty split, say) is refused here, with the same error, and never written.
    /// - Parameters:
    ///   - train: the training split.
    ///   - validation: a validation split held out of the training data, written as /validation; nil for none.
    ///   - test: the test split.
    ///   - attributes: extra root attributes, e.g. the source.
    ///   - classNames: the classes' names, stored as `class_names`.
    ///   - path: the file to write.
    public static func write(
        train: Dataset, validation: Dataset? = nil, test: Dataset, attributes: [String: String], classNames: [String]? = nil,
        to path: String
    ) throws(StorageError) {
        let verify = { (file: HDF5File) throws(StorageError) in
            _ = try load(file)
            _ = try self.validation(of: file)
            _ = try self.classNames(of: file)
        }
        try HDF5File.createAtomically(path, verify: verify) { (file) throws(StorageError) in
            try writeHeader(to: file, attributes: attributes, classNames: classNames, imageShape: train.imageShape)
            for (name, data) in [("train", train), ("test", test)] + (validation.map { [("validation", $0)] } ?? []) {
                try writeSplit(name, data, to: file)
            }
        }
    }

    /// The root attributes: the format, the class names, `attributes`, the images' shape.
    private static func writeHeader(to file: HDF5File, attributes: [String: String], classNames: [String]?,
                                    imageShape: ImageShape?) throws(StorageError) {
        try file.setAttribute("format", format)
        try ClassNames.write(classNames, to: file, object: "/")
        for (key, value) in attributes.sorted(by: { $0.key < $1.key }) { try file.setAttribute(key, value) }
        if let shape = imageShape {
            try file.setAttribute(imageAttributes.height, Int64(shape.height))
            try file.setAttribute(imageAttributes.width, Int64(shape.width))
            if shape.channels != 1 { try file.setAttribute(imageAttributes.channels, Int64(shape.channels)) }
        }
    }

    /// Split `name` (x chunked, with its fingerprints, and y) from memory.
    private static func writeSplit(_ name: String, _ data: Dataset, to file: HDF5File) throws(StorageError) {
        let x = "/\(name)/x"
        switch data.features {
        case .bytes(let bytes, let scale):
            let rows = chunkRows(rowBytes: data.featureCount)
            try file.write(bytes, shape: [data.count, data.featureCount], to: x,
                           chunkRows: storageChunkRows(rowBytes: data.featureCount, rows: data.count))
            try file.setAttribute("scale", scale, on: x)
            try BlockFingerprints.of(bytes, featureCount: data.featureCount, blockRows: rows).write(to: file, split: name)
        case .floats(let values):
            let rows = chunkRows(rowBytes: data.featureCount * MemoryLayout<Float>.size)
            try file.write(values, shape: [data.count, data.featureCount], to: x,
                           chunkRows: storageChunkRows(rowBytes: data.featureCount * MemoryLayout<Float>.size, rows: data.count))
            try BlockFingerprints.of(values, featureCount: data.featureCount, blockRows: rows).write(to: file, split: name)
        case .streamed: preconditionFailure("\(data.name): a streamed split is written by `write(train: SplitRows, …)`")
        }
        try writeTargets(data.targets, of: name, to: file)
    }

    private static func writeTargets(_ targets: Dataset.Targets, of name: String, to file: HDF5File) throws(StorageError) {
        switch targets {
        case .classes(let labels): try file.write(labels, shape: [labels.count], to: "/\(name)/y")
        case .values(let values, let width): try file.write(values, shape: [values.count / width, width], to: "/\(name)/y")
        }
    }

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

        /// The rows of a split, read block by block from its source (`Dataset.source`: memory, or its file).
        /// - Parameter dataset: the split.
        public init(_ dataset: Dataset) {
            let source = dataset.source
            self.init(count: dataset.count, featureCount: dataset.featureCount, storage: source.storage(of: dataset)) { (rows, x) throws(StorageError) in
                let block: Dataset
                do throws(TrainingError) { block = try source.rows(rows, of: dataset) } catch {
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

    /// Writes a dataset file whose splits are too large to hold, on disk
    /// (`HDF5File.createOnDisk`): each split's x a chunk of rows at a time
    /// from its source, with its fingerprints, so that memory holds one block
    /// and the targets. Read back (streamed) before it takes `path`'s place.
    /// - Parameters:
    ///   - train: the training split's rows.
    ///   - validation: a validation split, written as /validation; nil for none.
    ///   - test: the test split's rows.
    ///   - attributes: extra root attributes, e.g. the source.
    ///   - classNames: the classes' names, stored as `class_names`.
    ///   - imageShape: the images' shape, when the features are images.
    ///   - path: the file to write.
    /// - Throws: `StorageError` from the sources, the checks or the file system.
    public static func write(
        train: SplitRows, validation: SplitRows? = nil, test: SplitRows, attributes: [String: String], classNames: [String]? = nil,
        imageShape: ImageShape? = nil, to path: String
    ) throws(StorageError) {
        try write(train: train, validation: validation, test: test, attributes: attributes, classNames: classNames,
                  imageShape: imageShape, to: path, chunkLimit: chunkLimit)
    }

    /// `write(train:validation:test:attributes:classNames:imageShape:to:)` with
    /// another `chunkLimit` (tests: chunks of many fingerprint blocks in a small file).
    static func write(
        train: SplitRows, validation: SplitRows?, test: SplitRows, attributes: [String: String], classNames: [String]?,
        imageShape: ImageShape?, to path: String, chunkLimit: Int
    ) throws(StorageError) {
        let splits = [("train", train), ("test", test)] + (validation.map { [("validation", $0)] } ?? [])
        for (name, split) in splits {
            precondition(split.count > 0 && split.featureCount > 0, "/\(name) of \(split.count) × \(split.featureCount)")
        }
        let verify = { (file: HDF5File) throws(StorageError) in
            _ = try load(file, streamingTrain: true, streamingTest: true)
            _ = try self.validation(of: file, streaming: true)
            _ = try self.classNames(of: file)
        }
        var total = 0
        for (_, split) in splits {
            let (bytes, overflow) = split.count.multipliedReportingOverflow(by: split.rowBytes + 8)
            total = overflow ? Int.max : total.addingReportingOverflow(bytes).overflow ? Int.max : total + bytes
        }
        try HDF5File.createOnDisk(path, expectedBytes: total, verify: verify) { (file) throws(StorageError) in
            try writeHeader(to: file, attributes: attributes, classNames: classNames, imageShape: imageShape)
            for (name, split) in splits { try writeRows(name, split, to: file, path: path, chunkLimit: chunkLimit) }
        }
    }

    /// Split `name` from `source`, a chunk of rows at a time: x chunked, with
    /// its fingerprints, and y.
    private static func writeRows(_ name: String, _ source: SplitRows, to file: HDF5File, path: String, chunkLimit: Int) throws(StorageError) {
        let object = "/\(name)/x"
        // Fingerprint blocks of `blockRows`, filled one at a time; written a whole chunk at a time (a partial
        // write of a chunk not in libhdf5's cache would read it back first).
        let blockRows = chunkRows(rowBytes: source.rowBytes)
        let storageRows = storageChunkRows(rowBytes: source.rowBytes, rows: source.count, chunkLimit: chunkLimit)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: min(storageRows, source.count) * source.rowBytes, alignment: 64)
        defer { chunk.deallocate() }
        var whole = Fingerprint(), blocks: [UInt64] = []
        var labels: [UInt8] = [], values: [Float] = [], width = 0
        let bytes = source.storage == .floats ? nil : try file.createRows(object, of: UInt8.self, rows: source.count,
                                                                           columns: source.featureCount, chunkRows: storageRows)
        let floats = source.storage == .floats ? try file.createRows(object, of: Float.self, rows: source.count,
                                                                      columns: source.featureCount, chunkRows: storageRows) : nil
        for chunkStart in stride(from: 0, to: source.count, by: storageRows) {
            let chunkRows = chunkStart..<min(chunkStart + storageRows, source.count)
            for start in stride(from: chunkStart, to: chunkRows.upperBound, by: blockRows) {
                let rows = start..<min(start + blockRows, chunkRows.upperBound)
                let offset = (start - chunkStart) * source.rowBytes
                let part = UnsafeMutableRawBufferPointer(rebasing: chunk[offset..<(offset + rows.count * source.rowBytes)])
                let targets = try source.rows(rows, part)
                switch targets {
                case .classes(let block) where block.count == rows.count && values.isEmpty: labels += block
                case .values(let block, let w) where block.count == rows.count * w && labels.isEmpty && (width == 0 || w == width):
                    values += block
                    width = w
                default: preconditionFailure("\(path): \(name)'s targets \(targets) for rows \(rows) do not match the rows before them")
                }
                if floats != nil {
                    let values = UnsafeBufferPointer(part.bindMemory(to: Float.self))
                    if let i = values.firstIndex(where: { !$0.isFinite }) {
                        throw .invalidContent(path: path, object: object,
                                              reason: "would hold \(values[i]) at row \(start + i / source.featureCount), column \(i % source.featureCount)")
                    }
                }
                whole.mix(bytes: UnsafeRawBufferPointer(part))
                blocks.append(BlockFingerprints.hash(UnsafeRawBufferPointer(part)))
            }
            let filled = UnsafeMutableRawBufferPointer(rebasing: chunk[0..<(chunkRows.count * source.rowBytes)])
            if let bytes { try bytes.write(UnsafeBufferPointer(filled.bindMemory(to: UInt8.self)), rows: chunkRows) }
            if let floats { try floats.write(UnsafeBufferPointer(filled.bindMemory(to: Float.self)), rows: chunkRows) }
        }
        whole.finishArray()
        if case .bytes(let scale) = source.storage { try file.setAttribute("scale", scale, on: object) }
        try BlockFingerprints(whole: whole.hash, blockRows: blockRows, blocks: blocks).write(to: file, split: name)
        try writeTargets(width == 0 ? .classes(labels) : .values(values, width: width), of: name, to: file)
    }
}
