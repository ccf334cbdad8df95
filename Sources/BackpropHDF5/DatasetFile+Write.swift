import BackpropCore
import BackpropIO
import Foundation

// Writing dataset files: the layout's chunks, a split held in memory, and a
// split that arrives a block at a time (larger than memory).
extension DatasetFile {
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
        }
        try writeTargets(data.targets, of: name, to: file)
    }

    private static func writeTargets(_ targets: Dataset.Targets, of name: String, to file: HDF5File) throws(StorageError) {
        switch targets {
        case .classes(let labels): try file.write(labels, shape: [labels.count], to: "/\(name)/y")
        case .values(let values, let width): try file.write(values, shape: [values.count / width, width], to: "/\(name)/y")
        }
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
            _ = try DatasetFile.splits(of: file, streamingTrain: true, streamingTest: true)
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
