import BackpropCore
import Foundation

/// Datasets from CSV files and NumPy `.npy` arrays. Backprop stores features
/// as bytes with a scale, so feature values must be integers 0…255 (pixels,
/// counts, categories); labels must be class numbers 0…255. Anything else is
/// refused with the file, the row and column (or array) and the value.
public enum TableImport {
    // MARK: - CSV

    /// Reads a CSV of integer features and one label column.
    /// - Parameters:
    ///   - labelColumn: a column name or 0-based index; nil: the column named
    ///     "label", else the last one.
    ///   - header: nil to detect (a first row with any non-number is a header).
    public static func csv(_ path: String, labelColumn: String?, header: Bool?) throws(StorageError) -> Dataset {
        guard let data = FileManager.default.contents(atPath: path) else { throw .missingFile(path: path) }
        guard let text = String(data: data, encoding: .utf8) else {
            throw .invalidContent(path: path, object: "file", reason: "is not UTF-8 text")
        }
        var rows = text.split(whereSeparator: \.isNewline).map { $0.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces) } }
        guard let first = rows.first else { throw .invalidContent(path: path, object: "file", reason: "is empty") }
        let hasHeader = header ?? first.contains { Double($0) == nil }
        let names = hasHeader ? rows.removeFirst() : []
        guard let width = rows.first?.count, width >= 2 else {
            throw .invalidContent(path: path, object: "rows", reason: "need at least one row of a feature and a label")
        }
        let label: Int
        if let labelColumn {
            if let index = Int(labelColumn) {
                guard (0..<width).contains(index) else {
                    throw .invalidContent(path: path, object: "label column", reason: "\(index) is outside the \(width) columns")
                }
                label = index
            } else {
                guard let index = names.firstIndex(of: labelColumn) else {
                    throw .invalidContent(path: path, object: "label column", reason: "no column is named '\(labelColumn)'")
                }
                label = index
            }
        } else {
            label = names.firstIndex(of: "label") ?? width - 1
        }
        var features: [UInt8] = [], labels: [UInt8] = []
        features.reserveCapacity(rows.count * (width - 1))
        for (r, row) in rows.enumerated() {
            let line = r + (hasHeader ? 2 : 1)
            guard row.count == width else {
                throw .invalidContent(path: path, object: "line \(line)", reason: "has \(row.count) columns, the first row \(width)")
            }
            for (c, field) in row.enumerated() {
                guard let value = Int(field), (0...255).contains(value) else {
                    throw .invalidContent(path: path, object: "line \(line), column \(c + 1)",
                                          reason: "'\(field)' is not an integer 0…255 (features are stored as bytes, labels as classes)")
                }
                if c == label { labels.append(UInt8(value)) } else { features.append(UInt8(value)) }
            }
        }
        return Dataset(name: path, features: features, labels: labels, featureCount: width - 1, scale: 1 / 255)
    }

    // MARK: - NumPy

    /// A `.npy` array of integers 0…255 (any integer dtype, or floats holding
    /// such integers), C order: its shape and values.
    public static func npy(_ path: String) throws(StorageError) -> (shape: [Int], values: [UInt8]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw .missingFile(path: path) }
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, bytes[1...5].elementsEqual("NUMPY".utf8) else {
            throw .invalidContent(path: path, object: "header", reason: "is not a NumPy .npy file (no \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let lengthSize = major == 1 ? 2 : 4
        guard [1, 2, 3].contains(major), bytes.count >= 8 + lengthSize else {
            throw .invalidContent(path: path, object: "header", reason: "has unknown .npy version \(major)")
        }
        let headerLength = (0..<lengthSize).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        let start = 8 + lengthSize + headerLength
        guard start <= bytes.count, let header = String(bytes: bytes[(8 + lengthSize)..<start], encoding: .utf8) else {
            throw .invalidContent(path: path, object: "header", reason: "is truncated")
        }
        func field(_ key: String) -> String? {
            guard let range = header.range(of: "'\(key)':") else { return nil }
            let rest = header[range.upperBound...].trimmingCharacters(in: .whitespaces)
            if rest.hasPrefix("(") { return rest.firstIndex(of: ")").map { String(rest[rest.startIndex...$0]) } }
            return rest.split(separator: ",").first.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " '")) }
        }
        guard let descr = field("descr"), let order = field("fortran_order"), let shapeText = field("shape") else {
            throw .invalidContent(path: path, object: "header", reason: "lacks descr, fortran_order or shape")
        }
        guard order == "False" else { throw .invalidContent(path: path, object: "header", reason: "is Fortran order; save with np.ascontiguousarray") }
        let shape = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "()")).split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.compactMap { Int($0) }
        let count = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
        guard shape.allSatisfy({ $0 >= 0 }), count <= HDF5File.elementLimit else {
            throw .invalidContent(path: path, object: "shape", reason: "\(shapeText) is not a valid shape within \(HDF5File.elementLimit) elements")
        }
        // Little-endian or byte types only: '|u1', '<i8', '<f4', …
        guard let kind = descr.dropFirst().first, let size = Int(descr.dropFirst(2)), descr.first != ">",
              ["u", "i", "f"].contains(kind), [1, 2, 4, 8].contains(size), !(kind == "f" && size < 4) else {
            throw .invalidContent(path: path, object: "dtype", reason: "'\(descr)' is not a little-endian integer or float type")
        }
        guard bytes.count - start >= count * size else {
            throw .invalidContent(path: path, object: "data", reason: "holds \(bytes.count - start) bytes, the shape needs \(count * size)")
        }
        var values = [UInt8](repeating: 0, count: count)
        for i in 0..<count {
            let offset = start + i * size
            var raw: UInt64 = 0
            for b in 0..<size { raw |= UInt64(bytes[offset + b]) << (8 * b) }
            let value: Double
            switch (kind, size) {
            case ("u", _): value = Double(raw)
            case ("i", _): value = Double(Int64(bitPattern: raw << (64 - 8 * UInt64(size))) >> (64 - 8 * Int64(size)))
            case ("f", 4): value = Double(Float(bitPattern: UInt32(raw)))
            default: value = Double(bitPattern: raw)
            }
            guard value.rounded() == value, value >= 0, value <= 255 else {
                throw .invalidContent(path: path, object: "element \(i)", reason: "\(value) is not an integer 0…255")
            }
            values[i] = UInt8(value)
        }
        return (shape, values)
    }

    /// x.npy [N, …] and y.npy [N] as a dataset.
    public static func npy(x xPath: String, y yPath: String) throws(StorageError) -> Dataset {
        let (xShape, x) = try npy(xPath)
        let (yShape, y) = try npy(yPath)
        guard xShape.count >= 2, yShape.count == 1, xShape[0] == yShape[0], xShape[0] > 0 else {
            throw .wrongShape(path: yPath, object: "y", expected: "[N] with N = rows of \(xPath) \(xShape)", found: "\(yShape)")
        }
        return Dataset(name: xPath, features: x, labels: y, featureCount: xShape.dropFirst().reduce(1, *), scale: 1 / 255)
    }

    // MARK: - Split

    /// A seeded shuffle of the samples, the last `testFraction` of them held out.
    public static func split(_ dataset: Dataset, testFraction: Double, seed: UInt64) -> (train: Dataset, test: Dataset) {
        var generator = SeededGenerator(seed: seed, stream: 7)
        let order = Array(0..<dataset.count).shuffled(using: &generator)
        let testCount = min(max(Int((Double(dataset.count) * testFraction).rounded()), 1), dataset.count - 1)
        func subset(_ indices: ArraySlice<Int>) -> Dataset {
            var features: [UInt8] = [], labels: [UInt8] = []
            for i in indices {
                features += dataset.features[(i * dataset.featureCount)..<((i + 1) * dataset.featureCount)]
                labels.append(dataset.labels[i])
            }
            return Dataset(name: dataset.name, features: features, labels: labels, featureCount: dataset.featureCount, scale: dataset.scale)
        }
        return (subset(order.dropLast(testCount)), subset(order.suffix(testCount)))
    }
}
