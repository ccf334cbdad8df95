import BackpropCore
@testable import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// `import npy` a block of rows at a time: which rows go where, how they are
/// stored, and what it refuses.
struct StreamedImportTests {
    let directory = temporaryDirectory("streamed-import")

    func path(_ name: String) -> String { "\(directory)/\(name)" }

    /// A version-1 `.npy` file of `descr` with `shape` holding `data`.
    static func npy(descr: String, shape: [Int], data: [UInt8], fortran: Bool = false) -> Data {
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(dims), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var file: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        file += Array(header.utf8) + data
        return Data(file)
    }

    /// x: n rows of 6 bytes, row r holding r mod 256 in its first byte and (r / 256) in its second; y: labels r mod 3.
    func write(rows n: Int, scale: Int = 1) throws -> (x: String, y: String) {
        var x: [UInt8] = []
        for r in 0..<n { x += [UInt8(r % 256), UInt8(r / 256 % 256), 1, 2, 3, UInt8(scale % 256)] }
        try Self.npy(descr: "|u1", shape: [n, 2, 3], data: x).write(to: URL(fileURLWithPath: path("x.npy")))
        let y = (0..<n).flatMap { r in withUnsafeBytes(of: Int64(r % 3).littleEndian, Array.init) }
        try Self.npy(descr: "<i8", shape: [n], data: y).write(to: URL(fileURLWithPath: path("y.npy")))
        return (path("x.npy"), path("y.npy"))
    }

    /// The row numbers of a split written from `write(rows:)`'s x.
    func rowNumbers(_ name: String, in file: String) throws -> [Int] {
        let split = try DatasetFile.split(name, of: HDF5File.open(file))
        guard case .bytes(let bytes, _) = split.features else { return [] }
        return stride(from: 0, to: bytes.count, by: 6).map { Int(bytes[$0]) + 256 * Int(bytes[$0 + 1]) }
    }

    @Test("the splits partition x's rows, each in file order; the test split holds round(f·N) seeded rows, /validation the rows Dataset.split holds out")
    func partition() throws {
        let (x, y) = try write(rows: 5000)
        let splits = try TableImport.npyRows(x: x, y: y, testFraction: 0.2, validationFraction: 0.1, seed: 4)
        try DatasetFile.write(train: splits.train, validation: splits.validation, test: splits.test, attributes: [:],
                              imageShape: splits.imageShape, to: path("out.h5"))
        let (train, validation, test) = (try rowNumbers("train", in: path("out.h5")), try rowNumbers("validation", in: path("out.h5")),
                                         try rowNumbers("test", in: path("out.h5")))
        #expect(test.count == 1000 && validation.count == 400 && train.count == 3600)
        #expect(Set(train + validation + test) == Set(0..<5000))
        for split in [train, validation, test] { #expect(split == split.sorted()) }
        // /validation: the rows Dataset.split(validationFraction:) holds out of the rows left after the test split.
        let kept = (0..<5000).filter { !Set(test).contains($0) }
        let held = try Dataset.validationRows(labels: kept.map { UInt8($0 % 3) }, count: kept.count, fraction: 0.1, seed: 4)
        #expect(held.map { kept[$0] } == validation)
        // Targets travel with their rows; the image shape comes from x's [N, 2, 3].
        let file = try HDF5File.open(path("out.h5"))
        #expect(try DatasetFile.split("test", of: file).labels == test.map { UInt8($0 % 3) })
        #expect(try DatasetFile.imageShape(of: file, featureCount: 6) == ImageShape(height: 2, width: 3))
        // Another seed, other test rows; the same seed, the same ones.
        let again = try TableImport.npyRows(x: x, y: y, testFraction: 0.2, seed: 4)
        let other = try TableImport.npyRows(x: x, y: y, testFraction: 0.2, seed: 5)
        #expect(again.test.count == 1000 && other.test.count == 1000)
        try DatasetFile.write(train: other.train, test: other.test, attributes: [:], to: path("other.h5"))
        #expect(try rowNumbers("test", in: path("other.h5")) != test)
    }

    @Test("features: bytes when every value is one (auto), else float32; a value bytes cannot hold is refused by file and element")
    func storage() throws {
        let (x, y) = try write(rows: 300, scale: 256)
        let auto = try TableImport.npyRows(x: x, y: y)
        #expect(auto.train.storage == .bytes(scale: 1 / 255))
        let floats = try Data(Self.npy(descr: "<f4", shape: [3, 2], data: [Float(0.5), 1, 2, 3, 4, 300].flatMap { withUnsafeBytes(of: $0, Array.init) }))
        try floats.write(to: URL(fileURLWithPath: path("xf.npy")))
        try Self.npy(descr: "|u1", shape: [3], data: [0, 1, 0]).write(to: URL(fileURLWithPath: path("y3.npy")))
        #expect(try TableImport.npyRows(x: path("xf.npy"), y: path("y3.npy")).train.storage == .floats)
        let bytes = try TableImport.npyRows(x: path("xf.npy"), y: path("y3.npy"), features: .bytes)
        #expect { try DatasetFile.write(train: bytes.train, test: bytes.test, attributes: [:], to: path("bytes.h5")) } throws: {
            "\($0)".contains("xf.npy") && "\($0)".contains("element") && "\($0)".contains("integer 0…255")
        }
        #expect(!FileManager.default.fileExists(atPath: path("bytes.h5")))
    }

    @Test("refused by name: a Fortran-order x, a truncated x, labels that are not class numbers, y of another length")
    func refusals() throws {
        let (x, y) = try write(rows: 50)
        try Self.npy(descr: "|u1", shape: [50, 6], data: [UInt8](repeating: 1, count: 300), fortran: true)
            .write(to: URL(fileURLWithPath: path("fortran.npy")))
        #expect { _ = try TableImport.npyRows(x: path("fortran.npy"), y: y) } throws: { "\($0)".contains("fortran.npy") && "\($0)".contains("Fortran order") }
        let whole = try Data(contentsOf: URL(fileURLWithPath: x))
        try whole.prefix(whole.count - 7).write(to: URL(fileURLWithPath: path("short.npy")))
        #expect { _ = try TableImport.npyRows(x: path("short.npy"), y: y) } throws: { "\($0)".contains("short.npy") && "\($0)".contains("needs 300") }
        try Self.npy(descr: "<f4", shape: [50], data: (0..<50).flatMap { withUnsafeBytes(of: Float($0) + 0.5, Array.init) })
            .write(to: URL(fileURLWithPath: path("halves.npy")))
        #expect { _ = try TableImport.npyRows(x: x, y: path("halves.npy")) } throws: { "\($0)".contains("halves.npy") && "\($0)".contains("class number") }
        try Self.npy(descr: "|u1", shape: [49], data: [UInt8](repeating: 0, count: 49)).write(to: URL(fileURLWithPath: path("y49.npy")))
        #expect { _ = try TableImport.npyRows(x: x, y: path("y49.npy")) } throws: { "\($0)".contains("y49.npy") }
    }

    @Test("the CSV parser fed in chunks of any size gives the records of the whole file: a BOM, CRLF, quotes, \"\", line breaks and UTF-8 cut anywhere")
    func csvChunks() throws {
        let text = "\u{FEFF}name,\"note\"\r\n1,\"a \"\"b\"\"\r\nc\"\r\n\r\n2, ünïcødé ✓ \r3,\"\"\n4,5"
        let bytes = Array(text.utf8)
        let whole = try TableImport.csvRecords(Data(bytes), path: "t.csv")
        #expect(whole.map { $0.map(\.text) } == [["name", "note"], ["1", "a \"b\"\r\nc"], ["2", "ünïcødé ✓"], ["3", ""], ["4", "5"]])
        #expect(whole.map { $0.map(\.line) } == [[1, 1], [2, 2], [5, 5], [6, 6], [7, 7]])
        for size in 1...9 {
            var parser = TableImport.CSVParser(path: "t.csv"), records: [[TableImport.CSVField]] = []
            for start in stride(from: 0, to: bytes.count, by: size) {
                try parser.feed(bytes[start..<min(start + size, bytes.count)]) { records.append($0) }
            }
            try parser.finish { records.append($0) }
            #expect(records.map { $0.map(\.text) } == whole.map { $0.map(\.text) }, "chunks of \(size)")
            #expect(records.map { $0.map(\.line) } == whole.map { $0.map(\.line) }, "chunks of \(size)")
        }
        // Not UTF-8, and a quote left open, refused by line whatever the chunks.
        for (bad, reason) in [(Array("a,b\n1,".utf8) + [0xC3], "UTF-8"), (Array("a,b\n1,\"2\n".utf8), "never closed")] {
            for size in [1, 2, 64] {
                var parser = TableImport.CSVParser(path: "t.csv")
                #expect {
                    for start in stride(from: 0, to: bad.count, by: size) { try parser.feed(bad[start..<min(start + size, bad.count)]) { _ in } }
                    try parser.finish { _ in }
                } throws: { "\($0)".contains("t.csv") && "\($0)".contains("line 2") && "\($0)".contains(reason) }
            }
        }
    }

    @Test("import csv streamed: the rows, targets and splits of the npy import of the same table; a bad value refused by line and column")
    func csvStreamed() throws {
        let (x, y) = try write(rows: 3000)
        var csv = "a,b,c,d,e,f,label\n"
        for r in 0..<3000 { csv += "\(r % 256),\(r / 256),1,2,3,1,\(r % 3)\n" }
        try csv.write(toFile: path("t.csv"), atomically: true, encoding: .utf8)
        let fromCSV = try TableImport.csvRows(path("t.csv"), header: nil, testFraction: 0.2, validationFraction: 0.1, seed: 4)
        let fromNPY = try TableImport.npyRows(x: x, y: y, testFraction: 0.2, validationFraction: 0.1, seed: 4)
        try DatasetFile.write(train: fromCSV.train, validation: fromCSV.validation, test: fromCSV.test, attributes: [:], to: path("csv.h5"))
        try DatasetFile.write(train: fromNPY.train, validation: fromNPY.validation, test: fromNPY.test, attributes: [:], to: path("npy.h5"))
        for split in ["train", "validation", "test"] {
            let a = try DatasetFile.split(split, of: HDF5File.open(path("csv.h5"))), b = try DatasetFile.split(split, of: HDF5File.open(path("npy.h5")))
            #expect(a.features == b.features && a.targets == b.targets && a.count > 0, "\(split)")
        }
        try (csv + "7,x,1,2,3,1,0\n").write(toFile: path("bad.csv"), atomically: true, encoding: .utf8)
        #expect { _ = try TableImport.csvRows(path("bad.csv"), header: nil) } throws: { "\($0)".contains("line 3002, column 2") }
        try (csv + "7,300.5,1,2,3,1,0\n").write(toFile: path("float.csv"), atomically: true, encoding: .utf8)
        #expect(try TableImport.csvRows(path("float.csv"), header: nil).train.storage == .floats)
    }
}
