import BackpropTestSupport
import Foundation
import Testing

/// Every malformed CSV, NPY, IDX, gzip and configuration file of Fuzz/doors
/// (Fuzz/make_doors.py) through the command that reads it: a non-zero exit,
/// not a signal, an error naming the file and the problem, and nothing written.
struct DoorCorpusTests {
    struct Entry: Decodable, CustomTestStringConvertible, Sendable {
        let file: String
        let expect: String
        var testDescription: String { file }
    }

    static let folder = CorpusTests.root.appendingPathComponent("Fuzz/doors").path
    static let entries: [Entry] = {
        guard let data = FileManager.default.contents(atPath: "\(folder)/manifest.json"),
              let entries = try? JSONDecoder().decode([Entry].self, from: data) else { return [] }
        return entries
    }()

    /// IDX bytes: the header (unsigned bytes, `dims`) and `count` data bytes.
    static func idx(_ dims: [UInt32]) -> Data {
        var bytes: [UInt8] = [0, 0, 8, UInt8(dims.count)]
        for d in dims { bytes += [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: d >> $0) } }
        return Data(bytes + [UInt8](repeating: 1, count: Int(dims.reduce(1, *))))
    }

    /// The command that reads `path`, run in `work`, which holds the good files it reads beside it.
    static func command(reading path: String, in work: String) throws -> [String] {
        let name = URL(fileURLWithPath: path).lastPathComponent
        if name.hasPrefix("csv-") { return ["import", "csv", path, "--output", "out.h5"] }
        if name.hasPrefix("npy-") {
            // y.npy: 4 labels ('<i8', shape (4,)), the rows the good x would have.
            var header = Array("{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }".utf8)
            header += [UInt8](repeating: 0x20, count: 63 - (10 + header.count) % 64) + [0x0A]
            let y = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count), 0] + header + [UInt8](repeating: 0, count: 32)
            try Data(y).write(to: URL(fileURLWithPath: "\(work)/y.npy"))
            return ["import", "npy", "--x", path, "--y", "y.npy", "--output", "out.h5"]
        }
        if name.hasPrefix("idx-") {
            // The file as the training images, beside good labels and test files.
            let images = "\(work)/idx/train-images-idx3-ubyte" + (name.hasSuffix(".gz") ? ".gz" : "")
            try FileManager.default.createDirectory(atPath: "\(work)/idx", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: path, toPath: images)
            try idx([4]).write(to: URL(fileURLWithPath: "\(work)/idx/train-labels-idx1-ubyte"))
            try idx([4, 2, 2]).write(to: URL(fileURLWithPath: "\(work)/idx/t10k-images-idx3-ubyte"))
            try idx([4]).write(to: URL(fileURLWithPath: "\(work)/idx/t10k-labels-idx1-ubyte"))
            return ["import", "idx", "--from", "idx", "--output", "out.h5"]
        }
        return ["train", "--config", path, "--data", CLITests.sample, "--layers", "784,4,10", "--epochs", "1", "--run-dir", "run"]
    }

    @Test("every file of Fuzz/doors is listed in its manifest, and the manifest covers every door")
    func manifestIsComplete() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.folder).filter { $0 != "manifest.json" }
        #expect(Set(files) == Set(Self.entries.map(\.file)))
        for door in ["csv-", "npy-", "idx-", "idx-gzip-", "config-"] {
            #expect(Self.entries.filter { $0.file.hasPrefix(door) }.count >= 3, "\(door)")
        }
    }

    @Test("a malformed input is refused cleanly by the command that reads it", arguments: entries)
    func refused(entry: Entry) throws {
        let work = temporaryDirectory("door")
        let path = "\(Self.folder)/\(entry.file)"
        let arguments = try Self.command(reading: path, in: work)
        let before = Set(try FileManager.default.contentsOfDirectory(atPath: work))
        let result = try run(backpropExecutable(), arguments, in: work)
        #expect(result.status != 0 && !result.signalled, "status \(result.status): \(result.standardError)")
        let named = entry.file.hasPrefix("idx-") ? "train-images-idx3-ubyte" : path
        #expect(result.standardError.contains(named), "the file is not named: \(result.standardError)")
        #expect(result.standardError.contains(entry.expect), "'\(entry.expect)' not in: \(result.standardError)")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: work)) == before, "files were written")
    }
}
