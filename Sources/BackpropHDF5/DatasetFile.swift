import BackpropCore

/// The HDF5 layout of a dataset file:
///
///     /            attributes: format = "backprop-dataset", source, …
///     /train/x     uint8 [N, F], attribute scale (float32): x = scale · byte
///     /train/y     uint8 [N], class labels
///     /test/x      uint8 [M, F], attribute scale
///     /test/y      uint8 [M]
public enum DatasetFile {
    public static let format = "backprop-dataset"
    public static let splits = ["train", "test"]

    /// Reads and validates both splits.
    /// - Throws: `StorageError` naming the file and the object at fault.
    public static func load(_ path: String) throws(StorageError) -> (train: Dataset, test: Dataset) {
        try load(HDF5File.open(path))
    }

    /// Reads and validates both splits of an open file (a path or a memory image).
    public static func load(_ file: HDF5File) throws(StorageError) -> (train: Dataset, test: Dataset) {
        let path = file.path
        if file.hasAttribute("format") {
            let format = try file.stringAttribute("format")
            guard format == DatasetFile.format else { throw .wrongFormat(path: path, found: format, expected: DatasetFile.format) }
        }
        let train = try split("train", of: file)
        let test = try split("test", of: file)
        guard train.featureCount == test.featureCount else {
            throw .wrongShape(path: path, object: "/test/x", expected: "[M, \(train.featureCount)] like /train/x",
                              found: "[\(test.count), \(test.featureCount)]")
        }
        return (train, test)
    }

    /// Reads one split ("/train" or "/test"): x uint8 rank 2, y uint8 rank 1 of the same length.
    /// - Throws: `StorageError` naming the file and the object at fault.
    public static func split(_ name: String, of file: HDF5File) throws(StorageError) -> Dataset {
        let xName = "/\(name)/x", yName = "/\(name)/y"
        let (x, xShape) = try file.read(xName, as: UInt8.self, rank: 2)
        let (y, yShape) = try file.read(yName, as: UInt8.self, rank: 1)
        guard xShape[0] == yShape[0] else {
            throw .wrongShape(path: file.path, object: yName, expected: "[\(xShape[0])] (one label per row of \(xName))",
                              found: "[\(yShape[0])]")
        }
        guard xShape[0] > 0, xShape[1] > 0 else {
            throw .invalidContent(path: file.path, object: xName, reason: "has no samples or no features (shape [\(xShape[0]), \(xShape[1])])")
        }
        guard file.hasAttribute("scale", of: xName) else {
            throw .missingObject(path: file.path, object: "attribute 'scale' of \(xName) (x = scale · byte; 1/255 for images)")
        }
        let scale = try file.attribute("scale", of: xName, as: Float.self)
        guard scale.isFinite, scale > 0 else {
            throw .invalidContent(path: file.path, object: "attribute 'scale' of \(xName)", reason: "is \(scale); it must be a finite number > 0")
        }
        return Dataset(name: "\(file.path):/\(name)", features: x, labels: y, featureCount: xShape[1], scale: scale)
    }

    /// Writes a dataset file atomically (temporary file, then rename).
    /// - Parameter attributes: extra root attributes, e.g. the source.
    public static func write(
        train: Dataset, test: Dataset, attributes: [String: String], to path: String
    ) throws(StorageError) {
        try HDF5File.writeAtomically(path) { (file) throws(StorageError) in
            try file.setAttribute("format", format)
            for (key, value) in attributes.sorted(by: { $0.key < $1.key }) { try file.setAttribute(key, value) }
            for (name, data) in [("train", train), ("test", test)] {
                try file.write(data.features, shape: [data.count, data.featureCount], to: "/\(name)/x")
                try file.setAttribute("scale", data.scale, on: "/\(name)/x")
                try file.write(data.labels, shape: [data.count], to: "/\(name)/y")
            }
        }
    }
}
