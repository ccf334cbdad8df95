// Reading NumPy `.npy` arrays, per the format's specification
// (numpy.lib.format): the magic "\x93NUMPY", a major and a minor version
// byte, the header's length (2 bytes little-endian in version 1, 4 in 2 and
// 3), the header, then the data. The header is a Python dict literal with
// exactly the keys 'descr' (a dtype string such as '<f4'), 'fortran_order'
// (True or False) and 'shape' (a tuple of integers), padded with spaces and
// ending in a newline; version 3 allows UTF-8 in it.
import BackpropIO
import Foundation
import Glibc

/// A NumPy array read as Float: its shape and its values in C (row-major) order.
public struct NPYArray: Sendable, Equatable {
    public let shape: [Int]
    public let values: [Float]

    /// Reads the `.npy` file at `path`.
    /// - Throws: `StorageError.missingFile`, or `.invalidContent` naming the
    ///   header, dtype, shape or data and what is wrong with it.
    public static func read(_ path: String) throws(StorageError) -> NPYArray {
        guard let data = FileManager.default.contents(atPath: path) else { throw .missingFile(path: path) }
        return try parse([UInt8](data), path: path)
    }

    /// Parses the bytes of a `.npy` file; `path` names it in errors.
    ///
    /// Accepted: dtypes bool ('?', 'b1'), unsigned and signed integers of 1, 2,
    /// 4 and 8 bytes, floats of 2, 4 and 8 bytes, in either byte order; C or
    /// Fortran order (a Fortran-order array is reordered to C order). Refused:
    /// structured, complex, string and object dtypes, a shape whose element
    /// count overflows or passes `HDF5File.elementLimit`, and data shorter or
    /// longer than the shape says. float64 values are rounded to Float;
    /// integers beyond 2²⁴ lose their last bits.
    public static func parse(_ bytes: [UInt8], path: String) throws(StorageError) -> NPYArray {
        let (header, type, start, count) = try layout(bytes, fileBytes: bytes.count, path: path)
        guard count <= HDF5File.elementLimit else {
            throw .invalidContent(path: path, object: "shape", reason: "\(header.shape) holds more than \(HDF5File.elementLimit) elements")
        }
        var values = [Float](repeating: 0, count: count)
        // Element i of the file goes to C-order position `destination(i)`.
        let destination = header.fortranOrder ? Self.cOrderPositions(of: header.shape) : nil
        for i in 0..<count {
            let value = type.value(at: start + i * type.size, in: bytes)
            values[destination?[i] ?? i] = value
        }
        return NPYArray(shape: header.shape, values: values)
    }

    /// What the header at the start of a `.npy` file says: its keys, its
    /// element type, where the data starts and how many elements it holds
    /// (checked against the file's size).
    /// - Parameters:
    ///   - bytes: the file, or its first bytes (at least the header's).
    ///   - fileBytes: the size of the whole file.
    ///   - path: names the file in errors.
    static func layout(_ bytes: [UInt8], fileBytes: Int, path: String) throws(StorageError)
        -> (header: Header, type: ElementType, start: Int, count: Int) {
        func refuse(_ object: String, _ reason: String) -> StorageError { .invalidContent(path: path, object: object, reason: reason) }
        guard bytes.count >= 10, bytes[0] == 0x93, bytes[1...5].elementsEqual("NUMPY".utf8) else {
            throw refuse("header", "is not a NumPy .npy file (no \\x93NUMPY magic)")
        }
        let major = bytes[6]
        guard (1...3).contains(major) else { throw refuse("header", "has unknown .npy version \(major).\(bytes[7])") }
        let lengthSize = major == 1 ? 2 : 4
        guard bytes.count >= 8 + lengthSize else { throw refuse("header", "is truncated") }
        let headerLength = (0..<lengthSize).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        let start = 8 + lengthSize + headerLength
        guard start <= bytes.count else {
            throw refuse("header", bytes.count < fileBytes
                ? "declares \(headerLength) bytes, more than the \(bytes.count - 8 - lengthSize) this reader takes"
                : "declares \(headerLength) bytes, the file has \(bytes.count - 8 - lengthSize) after the length")
        }
        let headerBytes = bytes[(8 + lengthSize)..<start]
        // Versions 1 and 2 are latin-1 (in practice ASCII); 3 is UTF-8.
        guard let text = major == 3 ? String(validating: headerBytes, as: UTF8.self)
                                    : String(bytes: headerBytes, encoding: .isoLatin1) else {
            throw refuse("header", "is not UTF-8 text")
        }
        let header = try Header(parsing: text, refuse: { refuse("header", $0) })
        let type = try ElementType(descr: header.descr, refuse: { refuse("dtype", $0) })

        // Every size ≥ 0 (the parser reads digits only), their product and its bytes without overflow.
        var count = 1
        for size in header.shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow, !product.multipliedReportingOverflow(by: type.size).overflow else {
                throw refuse("shape", "\(header.shape) holds more than \(Int.max) bytes of '\(header.descr)'")
            }
            count = product
        }
        let available = fileBytes - start
        guard available == count * type.size else {
            throw refuse("data", "holds \(available) bytes, the shape \(header.shape) of '\(header.descr)' needs \(count * type.size)")
        }
        return (header, type, start, count)
    }

    /// For each element of a Fortran-order array (the first index varying
    /// fastest), its position in C order (the last index varying fastest).
    static func cOrderPositions(of shape: [Int]) -> [Int] {
        let count = shape.reduce(1, *)
        // C-order strides: the product of the sizes after each dimension.
        var strides = [Int](repeating: 1, count: shape.count)
        for d in stride(from: shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
        var index = [Int](repeating: 0, count: shape.count)
        var positions = [Int](repeating: 0, count: count)
        for i in 0..<count {
            positions[i] = zip(index, strides).reduce(0) { $0 + $1.0 * $1.1 }
            // The next index, first dimension fastest.
            for d in 0..<shape.count {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
            }
        }
        return positions
    }

    /// The header's three keys.
    struct Header {
        let descr: String
        let fortranOrder: Bool
        let shape: [Int]

        /// Parses the dict literal: `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
        init(parsing text: String, refuse: (String) -> StorageError) throws(StorageError) {
            var scanner = Scanner(Array(text.unicodeScalars))
            var entries: [String: Value] = [:]
            try scanner.expect("{", refuse)
            while !scanner.skipping("}") {
                let key = try scanner.value(refuse)
                guard case .text(let name) = key else { throw refuse("has a key that is not a string") }
                try scanner.expect(":", refuse)
                guard entries[name] == nil else { throw refuse("gives the key '\(name)' twice") }
                entries[name] = try scanner.value(refuse)
                if !scanner.skipping(",") {
                    try scanner.expect("}", refuse)
                    break
                }
            }
            guard scanner.atEnd else { throw refuse("has text after its closing brace") }
            guard Set(entries.keys) == ["descr", "fortran_order", "shape"] else {
                throw refuse("has the keys \(entries.keys.sorted()), not exactly 'descr', 'fortran_order' and 'shape'")
            }
            guard case .text(let descr) = entries["descr"] else {
                throw refuse("'descr' is not a string (structured dtypes are not read)")
            }
            guard case .flag(let fortranOrder) = entries["fortran_order"] else { throw refuse("'fortran_order' is not True or False") }
            guard case .tuple(let shape) = entries["shape"] else { throw refuse("'shape' is not a tuple of integers") }
            (self.descr, self.fortranOrder, self.shape) = (descr, fortranOrder, shape)
        }
    }

    /// A value in the header: a string, True/False, or a tuple of integers.
    enum Value {
        case text(String)
        case flag(Bool)
        case tuple([Int])
        /// A number: no key of the three holds one.
        case other
    }

    /// Reads the few Python literals a header holds.
    struct Scanner {
        let characters: [Unicode.Scalar]
        var position = 0

        init(_ characters: [Unicode.Scalar]) { self.characters = characters }

        var atEnd: Bool {
            mutating get { skipSpace(); return position == characters.count }
        }

        mutating func skipSpace() {
            while position < characters.count, [" ", "\t", "\n", "\r"].contains(characters[position]) { position += 1 }
        }

        /// Consumes `character` if it comes next.
        mutating func skipping(_ character: Unicode.Scalar) -> Bool {
            skipSpace()
            guard position < characters.count, characters[position] == character else { return false }
            position += 1
            return true
        }

        mutating func expect(_ character: Unicode.Scalar, _ refuse: (String) -> StorageError) throws(StorageError) {
            guard skipping(character) else { throw refuse("is not a dict literal ('\(character)' expected at character \(position + 1))") }
        }

        mutating func value(_ refuse: (String) -> StorageError) throws(StorageError) -> Value {
            skipSpace()
            guard position < characters.count else { throw refuse("ends inside the dict") }
            let first = characters[position]
            if first == "'" || first == "\"" {
                position += 1
                var text = ""
                while position < characters.count, characters[position] != first {
                    guard characters[position] != "\\" else { throw refuse("has an escape in a string, which no dtype needs") }
                    text.unicodeScalars.append(characters[position])
                    position += 1
                }
                guard position < characters.count else { throw refuse("has a string that is never closed") }
                position += 1
                return .text(text)
            }
            if first == "(" {
                position += 1
                var sizes: [Int] = []
                while !skipping(")") {
                    let digits = word()
                    // A dimension: decimal digits, at most 18 of them (no overflow).
                    guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ ("0"..."9").contains($0) }),
                          let size = Int(String(String.UnicodeScalarView(digits))) else {
                        throw refuse("'shape' holds '\(String(String.UnicodeScalarView(digits)))', not a size")
                    }
                    sizes.append(size)
                    if !skipping(",") {
                        try expect(")", refuse)
                        break
                    }
                }
                return .tuple(sizes)
            }
            if first == "[" || first == "{" { throw refuse("holds a list or a dict (structured dtypes are not read)") }
            let text = String(String.UnicodeScalarView(word()))
            switch text {
            case "True": return .flag(true)
            case "False": return .flag(false)
            case _ where !text.isEmpty && text.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) }): return .other
            default: throw refuse("holds '\(text)', which is not a string, True, False, a number or a tuple")
            }
        }

        /// The letters and digits that come next.
        mutating func word() -> ArraySlice<Unicode.Scalar> {
            skipSpace()
            let begin = position
            while position < characters.count, characters[position].properties.isAlphabetic
                    || ("0"..."9").contains(characters[position]) || characters[position] == "_" {
                position += 1
            }
            return characters[begin..<position]
        }
    }

    /// An element's kind, size and byte order, from a dtype string such as '<f4'.
    struct ElementType {
        enum Kind { case bool, unsigned, signed, float }
        let kind: Kind
        let size: Int
        let bigEndian: Bool

        init(descr: String, refuse: (String) -> StorageError) throws(StorageError) {
            var rest = Substring(descr)
            let order = rest.first.flatMap { "<>|=".contains($0) ? rest.removeFirst() : nil }
            let kinds: [Character: Kind] = ["b": .bool, "?": .bool, "u": .unsigned, "i": .signed, "f": .float]
            guard let letter = rest.first, let kind = kinds[letter] else {
                throw refuse("'\(descr)' is not a bool, integer or float type (complex, string and object arrays are not read)")
            }
            rest.removeFirst()
            let size = letter == "?" && rest.isEmpty ? 1 : Int(rest) ?? 0
            let sizes: [Kind: [Int]] = [.bool: [1], .unsigned: [1, 2, 4, 8], .signed: [1, 2, 4, 8], .float: [2, 4, 8]]
            guard sizes[kind]!.contains(size) else { throw refuse("'\(descr)' has an element size this reader does not know") }
            (self.kind, self.size) = (kind, size)
            // '=' is the writer's native order: little-endian on every machine Backprop runs on.
            self.bigEndian = order == ">"
        }

        /// The element at `offset` of `bytes`, as Float.
        func value(at offset: Int, in bytes: [UInt8]) -> Float {
            var raw: UInt64 = 0
            for b in 0..<size {
                let byte = bytes[offset + (bigEndian ? size - 1 - b : b)]
                raw |= UInt64(byte) << (8 * b)
            }
            let shift = UInt64(64 - 8 * size)
            switch (kind, size) {
            case (.bool, _): return raw == 0 ? 0 : 1
            case (.unsigned, _): return Float(raw)
            case (.signed, _): return Float(Int64(bitPattern: raw << shift) >> Int64(shift))
            case (.float, 2): return Float(Float16(bitPattern: UInt16(raw)))
            case (.float, 4): return Float(bitPattern: UInt32(raw))
            default: return Float(Double(bitPattern: raw))
            }
        }
    }
}

/// A C-order `.npy` array read a block of rows at a time by pread(2), never
/// whole: for arrays larger than memory. Row r is the elements [r, …] of
/// the first dimension, converted to Float as `NPYArray` converts them.
public final class NPYRows {
    public let path: String
    public let shape: [Int]
    /// Elements in a row: the product of the shape after the first dimension.
    public let rowElements: Int
    let type: NPYArray.ElementType
    let start: Int
    let descriptor: FileDescriptor

    /// The most header bytes read (NumPy writes headers of a few hundred).
    static let headerLimit = 1 << 20

    /// The rows, N: the first dimension.
    public var rows: Int { shape[0] }
    /// Bytes a row takes in the file.
    public var rowBytes: Int { rowElements * type.size }

    /// Opens the array at `path` and checks its header against its size.
    /// - Parameter path: the `.npy` file.
    /// - Throws: `.missingFile`, `.io`, or `.invalidContent` naming the header,
    ///   dtype, shape or data; a Fortran-order or 0-dimensional array is refused.
    public init(_ path: String) throws(StorageError) {
        self.path = path
        do { descriptor = try FileDescriptor(opening: path, O_RDONLY) } catch {
            throw error.code == ENOENT ? .missingFile(path: path) : .io(path: path, reason: error.description)
        }
        var status = stat()
        guard fstat(descriptor.raw, &status) == 0 else { throw .io(path: path, reason: String(cString: strerror(errno))) }
        let size = Int(status.st_size)
        let prefix = try Self.read(descriptor, bytes: min(size, Self.headerLimit), at: 0, path: path)
        let (header, type, start, _) = try NPYArray.layout(prefix, fileBytes: size, path: path)
        guard !header.shape.isEmpty else {
            throw .invalidContent(path: path, object: "shape", reason: "is () — a 0-dimensional array has no rows")
        }
        guard !header.fortranOrder else {
            throw .invalidContent(path: path, object: "header", reason: "is in Fortran order, which cannot be read a block of rows at a time "
                                  + "(save it with numpy.ascontiguousarray, or import it in memory)")
        }
        (self.shape, self.type, self.start) = (header.shape, type, start)
        rowElements = header.shape.dropFirst().reduce(1, *)
    }

    /// Whether every element is a byte by its type (uint8, bool): stored as is, never converted.
    public var elementsAreBytes: Bool { type.size == 1 && (type.kind == .unsigned || type.kind == .bool) }

    /// The bytes of `rows` as the file holds them (for `elementsAreBytes`
    /// arrays: their values; a bool's nonzero byte is read as 1).
    /// - Parameters:
    ///   - rows: rows of the array.
    ///   - buffer: `rows.count · rowBytes` bytes.
    /// - Throws: `.io` when the file cannot be read or has shrunk since it was opened.
    public func readBytes(_ rows: Range<Int>, into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) {
        try readRaw(rows, into: buffer)
        if type.kind == .bool { for i in buffer.indices where buffer[i] > 1 { buffer[i] = 1 } }
    }

    /// The file's bytes of `rows`, all of them, into `buffer`.
    private func readRaw(_ rows: Range<Int>, into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= self.rows && buffer.count == rows.count * rowBytes,
                     "\(buffer.count) bytes for rows \(rows) of \(self.rows)")
        let got: Int
        do { got = try preadFully(descriptor.raw, into: buffer, at: start + rows.lowerBound * rowBytes) } catch {
            throw .io(path: path, reason: error.description)
        }
        guard got == buffer.count else {
            throw .io(path: path, reason: "ends early: rows \(rows) are beyond the end of the file (truncated since it was opened?)")
        }
    }

    /// The elements of `rows`, row-major, as Float.
    /// - Parameter rows: rows of the array.
    /// - Throws: `.io` when the file cannot be read or has shrunk since it was opened.
    public func values(_ rows: Range<Int>) throws(StorageError) -> [Float] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: rows.count * rowBytes, alignment: 16)
        defer { buffer.deallocate() }
        try readRaw(rows, into: buffer)
        let bytes = Array(buffer)
        return (0..<(rows.count * rowElements)).map { type.value(at: $0 * type.size, in: bytes) }
    }

    /// Up to `count` bytes from `offset` on: fewer where the file ends.
    private static func read(_ file: FileDescriptor, bytes count: Int, at offset: Int, path: String) throws(StorageError) -> [UInt8] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        defer { buffer.deallocate() }
        do {
            let got = try preadFully(file.raw, into: buffer, at: offset)
            return Array(UnsafeRawBufferPointer(rebasing: buffer[0..<got]))
        } catch {
            throw .io(path: path, reason: error.description)
        }
    }
}
