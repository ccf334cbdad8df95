import BackpropCore
@testable import BackpropHDF5
import BackpropIO
import BackpropTestSupport
import Foundation
import Testing

/// Chunked dataset files, the rows a stream reads from them, and every way
/// such a file can be wrong.
struct StreamedStorageTests {
    let directory = temporaryDirectory("streamed-storage")

    func path(_ name: String) -> String { "\(directory)/\(name)" }

    /// 3,000 train samples of 700 bytes (chunks of 1,024 rows: 3 chunks, the last short) and 40 test samples.
    func writeDataset(_ name: String = "data.h5", floats: Bool = false) throws -> (String, Dataset) {
        var train = randomDataset(count: 3000, featureCount: 700, classCount: 7, seed: 1)
        if floats {
            train = Dataset(name: train.name, features: .floats(train.arrays(outputCount: 7, as: Float.self).inputs.map { $0 - 0.5 }),
                            targets: train.targets, featureCount: 700)
        }
        let test = floats ? train.prefix(40) : randomDataset(count: 40, featureCount: 700, classCount: 7, seed: 2)
        try DatasetFile.write(train: train, test: test, attributes: [:], to: path(name))
        return (path(name), train)
    }

    /// Rows `rows` of split /train as the stream reads them.
    func streamedRows(_ file: String, _ rows: Range<Int>) throws -> [UInt8] {
        let dataset = try DatasetFile.streamedSplit("train", of: HDF5File.open(file))
        let stream = dataset.stream
        var bytes = [UInt8](repeating: 0, count: rows.count * stream.bytesPerRow)
        try bytes.withUnsafeMutableBytes { try stream.reader.read(rows: rows, into: $0) }
        return bytes
    }

    @Test("the importers write features chunked in blocks of whole rows, with their fingerprints; a stream reads any rows exactly")
    func chunkedRoundTrip() throws {
        for floats in [false, true] {
            let (file, train) = try writeDataset(floats: floats)
            let h5 = try HDF5File.open(file)
            let rowBytes = floats ? 2800 : 700
            let layout = try h5.rowLayout(of: "/train/x", shape: [3000, 700], elementSize: floats ? 4 : 1)
            #expect(layout.rowsPerChunk == DatasetFile.chunkRows(rowBytes: rowBytes))
            #expect(DatasetFile.chunkRows(rowBytes: 700) == 1024 && DatasetFile.chunkRows(rowBytes: 2800) == 256)
            let streamed = try DatasetFile.streamedSplit("train", of: h5)
            let inMemory = try DatasetFile.split("train", of: h5)
            #expect(streamed.waitsForRows && streamed.fingerprint == train.fingerprint && streamed.fingerprint == inMemory.fingerprint)
            let all: [UInt8]
            switch train.features {
            case .bytes(let bytes, _): all = bytes
            case .floats(let values): all = values.withUnsafeBytes { Array($0) }
            }
            for rows in [0..<1, 0..<3000, 1000..<1100, 1023..<1025, 2047..<2999, 2999..<3000, 255..<257] {
                #expect(try streamedRows(file, rows) == Array(all[(rows.lowerBound * rowBytes)..<(rows.upperBound * rowBytes)]), "\(floats) \(rows)")
            }
        }
    }

    @Test("a contiguous file of an earlier version streams too, fingerprinted by one pass")
    func contiguousFile() throws {
        let train = randomDataset(count: 500, featureCount: 30, classCount: 3, seed: 4)
        let file = path("old.h5")
        try HDF5File.createAtomically(file) { (h5) throws(StorageError) in
            try h5.setAttribute("format", DatasetFile.format)
            for (split, data) in [("train", train), ("test", train.prefix(10))] {
                guard case .bytes(let bytes, let scale) = data.features, let labels = data.labels else { continue }
                try h5.write(bytes, shape: [data.count, 30], to: "/\(split)/x")
                try h5.setAttribute("scale", scale, on: "/\(split)/x")
                try h5.write(labels, shape: [data.count], to: "/\(split)/y")
            }
        }
        let h5 = try HDF5File.open(file)
        #expect(try h5.rowLayout(of: "/train/x", shape: [500, 30], elementSize: 1).rowsPerChunk == nil)
        #expect(try DatasetFile.streamedSplit("train", of: h5).fingerprint == train.fingerprint)
        guard case .bytes(let bytes, _) = train.features else { return }
        #expect(try streamedRows(file, 17..<333) == Array(bytes[(17 * 30)..<(333 * 30)]))
    }

    @Test("a block with a flipped byte is refused by name, with its rows, when it is read")
    func flippedByte() throws {
        let (file, _) = try writeDataset()
        let layout = try HDF5File.open(file).rowLayout(of: "/train/x", shape: [3000, 700], elementSize: 1)
        guard case .chunked(_, let addresses) = layout.extents else { Issue.record("not chunked"); return }
        // Flip a byte of row 1030 (in block 1: rows 1024 … 2047).
        let handle = try #require(FileHandle(forUpdatingAtPath: file))
        let offset = addresses[1] + UInt64(6 * 700 + 5)
        try handle.seek(toOffset: offset)
        let byte = try #require(try handle.read(upToCount: 1)).first!
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: [byte ^ 0x10])
        try handle.close()
        #expect(try streamedRows(file, 0..<1024).count == 1024 * 700)  // block 0 is intact
        for rows in [1000..<1100, 1024..<2048, 1030..<1031] {
            #expect {
                _ = try streamedRows(file, rows)
            } throws: { error in
                let message = "\(error)"
                return message.contains(file) && message.contains("/train/x") && message.contains("rows 1024 … 2047")
                    && message.contains("fingerprint")
            }
        }
    }

    @Test("a truncated chunked file is refused by name before a step, or when the stream reaches the missing bytes")
    func truncated() throws {
        let (file, _) = try writeDataset()
        let size = try #require(FileSystem.size(of: file))
        let layout = try HDF5File.open(file).rowLayout(of: "/train/x", shape: [3000, 700], elementSize: 1)
        guard case .chunked(_, let addresses) = layout.extents else { Issue.record("not chunked"); return }
        // Cut inside the last chunk: libhdf5 still opens the file (its metadata came first), the layout check does not.
        let cut = Int(addresses.max()!) + 100
        #expect(cut < size)
        #expect(truncate(file, off_t(cut)) == 0)
        #expect {
            _ = try DatasetFile.streamedSplit("train", of: HDF5File.open(file))
        } throws: { error in
            let message = "\(error)"
            return message.contains(file) && (message.contains("truncated") || message.contains("/train"))
        }
    }

    @Test("compressed or column-chunked features are refused for streaming by name; in memory they still load")
    func unstreamable() throws {
        let train = randomDataset(count: 64, featureCount: 16, classCount: 3, seed: 4)
        let file = path("columns.h5")
        try HDF5File.createAtomically(file) { (h5) throws(StorageError) in
            try h5.setAttribute("format", DatasetFile.format)
            for (split, data) in [("train", train), ("test", train.prefix(10))] {
                guard case .bytes(let bytes, let scale) = data.features, let labels = data.labels else { continue }
                try h5.write(bytes, shape: [data.count, 16], to: "/\(split)/x", chunkRows: 8)
                try h5.setAttribute("scale", scale, on: "/\(split)/x")
                try h5.write(labels, shape: [data.count], to: "/\(split)/y")
            }
        }
        // Whole-row chunks stream (fingerprinted by a pass: no stored fingerprints here).
        #expect(try DatasetFile.streamedSplit("train", of: HDF5File.open(file)).fingerprint == train.fingerprint)
        // Chunks of half a row, and gzip: written by h5py.
        let python = "/usr/bin/python3"
        guard FileManager.default.isExecutableFile(atPath: python) else { return }
        let script = """
        import h5py, numpy as np, sys
        with h5py.File(sys.argv[1], 'w') as f:
            for s, n in (('train', 64), ('test', 8)):
                f.create_dataset(s + '/x', data=np.zeros((n, 16), dtype=np.uint8), chunks=(8, 8))
                f[s + '/x'].attrs['scale'] = np.float32(1 / 255)
                f.create_dataset(s + '/y', data=np.zeros(n, dtype=np.uint8))
        with h5py.File(sys.argv[2], 'w') as f:
            for s, n in (('train', 64), ('test', 8)):
                f.create_dataset(s + '/x', data=np.zeros((n, 16), dtype=np.uint8), chunks=(8, 16), compression='gzip')
                f[s + '/x'].attrs['scale'] = np.float32(1 / 255)
                f.create_dataset(s + '/y', data=np.zeros(n, dtype=np.uint8))
        """
        let (columns, gzip) = (path("half.h5"), path("gzip.h5"))
        let result = try run(python, ["-c", script, columns, gzip], in: directory)
        guard result.status == 0 else { return }  // without h5py (CI has it): nothing more to check
        for (file, words) in [(columns, "columns"), (gzip, "filter")] {
            #expect {
                _ = try DatasetFile.streamedSplit("train", of: HDF5File.open(file))
            } throws: { "\($0)".contains(file) && "\($0)".contains("/train/x") && "\($0)".contains(words) }
            _ = try DatasetFile.load(file)  // in memory, fine
        }
    }

    @Test("a split of more than chunkLimit fingerprint blocks is stored in chunks of several blocks; it streams and loads exactly, and a flipped byte is still refused by block")
    func chunksOfBlocks() throws {
        #expect(DatasetFile.storageChunkRows(rowBytes: 784, rows: 60_000) == 1024)
        #expect(DatasetFile.storageChunkRows(rowBytes: 784, rows: 25_510_204) == 8192)
        #expect(DatasetFile.storageChunkRows(rowBytes: 784, rows: 4096 * 1024) == 1024)
        #expect(DatasetFile.storageChunkRows(rowBytes: 784, rows: 4096 * 1024 + 1) == 2048)
        let train = randomDataset(count: 5000, featureCount: 700, classCount: 7, seed: 3)
        let test = randomDataset(count: 40, featureCount: 700, classCount: 7, seed: 4)
        // Chunks of 1,024 rows would be 5; a limit of 2 makes them 4,096 rows (4 fingerprint blocks each).
        try DatasetFile.write(train: .init(train), validation: nil, test: .init(test), attributes: [:], classNames: nil,
                              imageShape: nil, to: path("chunks.h5"), chunkLimit: 2)
        let file = try HDF5File.open(path("chunks.h5"))
        let layout = try file.rowLayout(of: "/train/x", shape: [5000, 700], elementSize: 1)
        #expect(layout.rowsPerChunk == 4096)
        #expect(try BlockFingerprints.read(from: file, split: "train", rows: 5000)?.blockRows == 1024)
        guard case .bytes(let bytes, _) = train.features else { return }
        #expect(try streamedRows(path("chunks.h5"), 0..<5000) == bytes)
        #expect(try streamedRows(path("chunks.h5"), 4000..<4200) == Array(bytes[(4000 * 700)..<(4200 * 700)]))
        #expect(try DatasetFile.split("train", of: file).features == train.features)
        // A flipped byte of row 2,500: the third fingerprint block (rows 2048 … 3071), inside the first chunk.
        guard case .chunked(_, let addresses) = layout.extents else { Issue.record("not chunked"); return }
        let handle = try #require(FileHandle(forUpdatingAtPath: path("chunks.h5")))
        try handle.seek(toOffset: addresses[0] + UInt64(2500 * 700 + 3))
        let byte = try #require(try handle.read(upToCount: 1)).first!
        try handle.seek(toOffset: addresses[0] + UInt64(2500 * 700 + 3))
        try handle.write(contentsOf: [byte ^ 0x10])
        try handle.close()
        #expect(try streamedRows(path("chunks.h5"), 0..<2048).count == 2048 * 700)
        #expect { _ = try streamedRows(path("chunks.h5"), 2400..<2600) } throws: { "\($0)".contains("rows 2048 … 3071") }
    }
}
