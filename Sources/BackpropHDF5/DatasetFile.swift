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

    /// Reads and validates both splits, into memory.
    /// - Throws: `StorageError` naming the file and the object at fault.
    public static func load(_ path: String) throws(StorageError) -> (train: Dataset, test: Dataset) {
        try load(HDF5File.open(path))
    }

    /// Reads and validates both splits of an open file (a path or a memory image), into memory.
    public static func load(_ file: HDF5File) throws(StorageError) -> (train: Dataset, test: Dataset) {
        try checkFormat(of: file)
        let train = try split("train", of: file), test = try split("test", of: file)
        try check(test, "test", like: (train.featureCount, train.targets), in: file)
        return (train, test)
    }

    /// Both splits of an open file, validated; with `streamingTrain` or
    /// `streamingTest`, that split's features stay in the file (`streamedSplit`).
    public static func splits(of file: HDF5File, streamingTrain: Bool, streamingTest: Bool = false) throws(StorageError)
        -> (train: any RowSource, test: any RowSource) {
        let train = try training(of: file, streaming: streamingTrain)
        let test: any RowSource = streamingTest ? try streamedSplit("test", of: file) : try split("test", of: file)
        try check(test, "test", like: (train.featureCount, train.targets), in: file)
        return (train, test)
    }

    /// /train alone, of a file whose format is checked; nothing of /test is
    /// read (a run that reports no test score reads none of it). With
    /// `streaming`, its features stay in the file.
    public static func training(of file: HDF5File, streaming: Bool) throws(StorageError) -> any RowSource {
        try checkFormat(of: file)
        return streaming ? try streamedSplit("train", of: file) : try split("train", of: file)
    }

    /// Refuses a file whose `format` attribute names another format.
    private static func checkFormat(of file: HDF5File) throws(StorageError) {
        guard try file.hasAttribute("format") else { return }
        let format = try file.stringAttribute("format")
        guard format == DatasetFile.format else { throw .wrongFormat(path: file.path, found: format, expected: DatasetFile.format) }
    }

    /// The file's own validation split (/validation) in memory, checked like /test; nil when it has none.
    public static func validation(of file: HDF5File) throws(StorageError) -> Dataset? {
        guard try file.exists("/validation") else { return nil }
        return try checkedValidation(split("validation", of: file), in: file)
    }

    /// The file's own validation split (/validation), checked like /test; nil
    /// when it has none. With `streaming`, its features stay in the file.
    public static func validation(of file: HDF5File, streaming: Bool) throws(StorageError) -> (any RowSource)? {
        guard streaming else { return try validation(of: file) }
        guard try file.exists("/validation") else { return nil }
        return try checkedValidation(streamedSplit("validation", of: file), in: file)
    }

    /// `validation`, checked against /train's header and targets (not its features, which may be larger than memory).
    private static func checkedValidation<Split: RowSource>(_ validation: Split, in file: HDF5File) throws(StorageError) -> Split {
        let xShape = try file.shape(of: "/train/x")
        try check(validation, "validation", like: (xShape.count == 2 ? xShape[1] : 0, try targets("/train/y", of: file).0), in: file)
        return validation
    }

    /// A split other than /train must fit the model /train trains: as many features, targets of its kind.
    private static func check(_ data: some RowSource, _ name: String, like train: (featureCount: Int, targets: Dataset.Targets),
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
    public static func streamedSplit(_ name: String, of file: HDF5File) throws(StorageError) -> StreamedDataset {
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
            var dataset = StreamedDataset(name: "\(file.path):/\(name)", stream: stream, targets: y)
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
        var dataset = StreamedDataset(name: "\(file.path):/\(name)", stream: stream, targets: y)
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
}
