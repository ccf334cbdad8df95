import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// `train --stream` and `--data-memory` from the command line: when a split
/// streams, what it refuses, and that the run is the one in memory.
struct StreamCLITests {
    let cli = CLITests()

    func train(_ runDir: String, _ extra: [String]) throws -> ProcessResult {
        try cli.backprop(["train", "--data", CLITests.sample, "--layers", "784,16,10", "--batch-size", "100", "--epochs", "2",
                          "--run-dir", runDir] + extra)
    }

    @Test("a split larger than --data-memory streams (the epoch line says how long it waited) and ends with the in-memory run's parameters")
    func budget() throws {
        let blocks = ["--shuffle-blocks", "128"]
        let memory = try train("memory", blocks)
        try #require(memory.status == 0, "\(memory.standardError)")
        #expect(!memory.standardOutput.contains("waited for data"))
        let streamed = try train("budget", blocks + ["--data-memory", "64K"])
        try #require(streamed.status == 0, "\(streamed.standardError)")
        #expect(streamed.standardOutput.contains("waited for data"), "\(streamed.standardOutput)")
        func parameters(_ output: String) -> String? {
            output.split(separator: "\n").last.flatMap { $0.split(separator: ";").first { $0.contains("parameters") } }.map(String.init)
        }
        #expect(parameters(memory.standardOutput) != nil && parameters(memory.standardOutput) == parameters(streamed.standardOutput))
        // Under budget: in memory.
        let roomy = try train("roomy", blocks + ["--data-memory", "1G"])
        #expect(roomy.status == 0 && !roomy.standardOutput.contains("waited for data"))
    }

    @Test("streaming refuses what would read at random, by flag, in one line, exit 64", arguments: [
        (["--stream"], "--shuffle-blocks"),
        (["--stream", "--shuffle-blocks", "64", "--sampling", "poisson"], "--shuffle-blocks"),
        (["--stream", "--shuffle-blocks", "64", "--validation-fraction", "0.1"], "--validation-fraction"),
        (["--data-memory", "abc"], "--data-memory"), (["--data-memory", "-1"], "--data-memory"),
        (["--data-memory", "nan"], "--data-memory"), (["--data-memory", "99999999T"], "--data-memory"),
        (["--shuffle-blocks", "64", "--no-shuffle"], "--shuffle-blocks"),
    ])
    func refusals(arguments: [String], flag: String) throws {
        let result = try train("refused", arguments)
        try cli.expectFailure(result, mentions: [flag])
        #expect(result.status == 64)
        #expect(!FileManager.default.fileExists(atPath: "\(cli.directory)/refused/model.h5"))
    }

    /// `backprop` with `arguments`, and its peak resident set in KiB (getrusage of the child, by Python).
    func peakResident(_ arguments: [String]) throws -> (ProcessResult, Int) {
        let script = "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
            + "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)"
        let result = try run("/usr/bin/python3", ["-c", script, cli.executable] + arguments, in: cli.directory)
        let kib = result.standardError.split(separator: "\n").last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? -1
        return (result, kib)
    }

    @Test("generate writes a chunked, fingerprinted file in memory bounded by a block: 8× the samples, the same peak RSS; the same seed, the same data")
    func generate() throws {
        var peaks: [Int] = []
        for samples in [10_000, 80_000] {
            let (result, kib) = try peakResident(["generate", "--samples", "\(samples)", "--features", "256", "--test-samples", "500",
                                                  "--output", "g\(samples).h5"])
            try #require(result.status == 0, "\(result.standardError)")
            peaks.append(kib)
        }
        // 80,000 × 256 bytes is 20 MB of features: none of it may stay.
        #expect(peaks[0] > 0 && peaks[1] - peaks[0] < 4 << 10, "peak RSS \(peaks) KiB")
        let again = try cli.backprop("generate", "--samples", "10000", "--features", "256", "--test-samples", "500", "--output", "again.h5")
        try #require(again.status == 0)
        let (a, b) = (try DatasetFile.load("\(cli.directory)/g10000.h5"), try DatasetFile.load("\(cli.directory)/again.h5"))
        #expect(a.train.fingerprint == b.train.fingerprint && a.test.fingerprint == b.test.fingerprint)
        #expect(Set(a.train.labels ?? []).count > 1, "a teacher that gives one class")
        // Streamed training on the larger file holds no more than on the smaller one.
        var trained: [Int] = []
        for samples in [10_000, 80_000] {
            let (result, kib) = try peakResident(["train", "--data", "g\(samples).h5", "--layers", "256,32,10", "--epochs", "1",
                                                  "--shuffle-blocks", "4096", "--stream", "--run-dir", "t\(samples)", "--quiet"])
            try #require(result.status == 0, "\(result.standardError)")
            trained.append(kib)
        }
        #expect(trained[1] - trained[0] < 4 << 10, "peak RSS of streamed training \(trained) KiB")
        for word in ["abc", "0", "-5", "9223372036854775807"] {
            let fresh = CLITests()
            try fresh.expectFailure(try fresh.backprop("generate", "--samples", word, "--output", "bad.h5"), mentions: ["--samples"])
        }
    }

    @Test("rechunk rewrites a contiguous file chunked and fingerprinted, with the same data fingerprint: a checkpoint of the old file resumes on the new")
    func rechunk() throws {
        let result = try cli.backprop("rechunk", CLITests.sample, "--output", "new.h5")
        try #require(result.status == 0, "\(result.standardError)")
        let (old, new) = (try DatasetFile.load(CLITests.sample), try DatasetFile.load("\(cli.directory)/new.h5"))
        #expect(old.train.fingerprint == new.train.fingerprint && old.test.fingerprint == new.test.fingerprint)
        #expect(try HDF5File.open("\(cli.directory)/new.h5").exists("/train/x_blocks"))
        let first = try train("old", ["--shuffle-blocks", "128", "--steps", "3"])
        try #require(first.status == 0, "\(first.standardError)")
        let resumed = try cli.backprop("train", "--resume", "old", "--data", "new.h5", "--stream", "--override", "--steps", "8", "--quiet")
        #expect(resumed.status == 0, "\(resumed.standardError)")
        let overwrite = try cli.backprop("rechunk", "new.h5", "--output", "new.h5")
        #expect(overwrite.status != 0 && overwrite.standardError.contains("--output") && overwrite.standardError.split(separator: "\n").count == 1)
        let fresh = CLITests()
        try fresh.expectFailure(try fresh.backprop("rechunk", "missing.h5", "--output", "x.h5"), mentions: ["missing.h5"])
        try fresh.expectFailure(try fresh.backprop("rechunk", CLITests.sample, "--output", "no/such/dir/x.h5"), mentions: ["no/such/dir"])
    }
}

extension StreamCLITests {
    @Test("predict --stream writes, a block at a time, the files predict writes in memory (CSV and HDF5, the test and train splits)")
    func streamedPredict() throws {
        let trained = try train("predict-run", ["--shuffle-blocks", "128"])
        try #require(trained.status == 0, "\(trained.standardError)")
        for split in ["test", "train"] {
            for format in ["csv", "h5"] {
                var written: [Data] = []
                for extra in [[], ["--stream"], ["--data-memory", "16K"]] {
                    let name = "p-\(split)-\(extra.count).\(format)"
                    let result = try cli.backprop(["predict", "--checkpoint", "predict-run/model.h5", "--input", CLITests.sample,
                                                   "--split", split, "--output", name] + extra)
                    try #require(result.status == 0, "\(result.standardError)")
                    if format == "csv" {
                        written.append(try Data(contentsOf: URL(fileURLWithPath: "\(cli.directory)/\(name)")))
                    } else {
                        let file = try HDF5File.open("\(cli.directory)/\(name)")
                        let outputs = try file.read("/predictions/outputs", as: Float.self).values
                        let classes = try file.read("/predictions/class", as: Int32.self).values
                        written.append(Data(outputs.flatMap { withUnsafeBytes(of: $0, Array.init) } + classes.flatMap { withUnsafeBytes(of: $0, Array.init) }))
                    }
                }
                #expect(written[0].count > 0 && written[1] == written[0] && written[2] == written[0], "\(split) \(format)")
            }
        }
    }
}

/// `import npy` of an input far larger than its budget, in bounded memory.
struct StreamedImportCLITests {
    let cli = CLITests()

    /// x.npy of `rows` random 784-byte images and y.npy of their labels, in `name`-x.npy and `name`-y.npy.
    func writeArrays(_ name: String, rows: Int) throws {
        // Ten images, repeated: content does not change what memory the import takes.
        var generator = SeededGenerator(seed: 9)
        let images = (0..<(10 * 784)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let y = (0..<rows).map { UInt8($0 % 10) }
        func npy(_ descr: String, _ shape: String, _ data: [UInt8], times: Int = 1) -> Data {
            var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
            while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
            header += "\n"
            var file = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8))
            for _ in 0..<times { file.append(contentsOf: data) }
            return file
        }
        try npy("|u1", "(\(rows), 28, 28)", images, times: rows / 10).write(to: URL(fileURLWithPath: "\(cli.directory)/\(name)-x.npy"))
        try npy("|u1", "(\(rows),)", y).write(to: URL(fileURLWithPath: "\(cli.directory)/\(name)-y.npy"))
    }

    @Test("import npy past --data-memory streams: 63 MB of images (250 MB as float32, 30× the budget) import in RSS within 32 MiB of a 100-image import's, and train")
    func boundedMemory() throws {
        try writeArrays("small", rows: 100)
        try writeArrays("large", rows: 80_000)
        func importPeak(_ name: String) throws -> Int {
            let (status, kib) = try peakResidentKiB(cli.executable, ["import", "npy", "--x", "\(name)-x.npy", "--y", "\(name)-y.npy",
                                                                    "--output", "\(name).h5", "--data-memory", "8M"],
                                                    in: cli.directory, outputFile: "\(cli.directory)/\(name).out")
            let output = (try? String(contentsOfFile: "\(cli.directory)/\(name).out", encoding: .utf8)) ?? ""
            #expect(status == 0, "\(output)")
            return kib
        }
        let small = try importPeak("small"), large = try importPeak("large")
        let output = try String(contentsOfFile: "\(cli.directory)/large.out", encoding: .utf8)
        #expect(output.contains("64000 train and 16000 test samples of 784 features (bytes × 1/255, images 28x28), streamed"), "\(output)")
        #expect(small > 0 && large - small < 32 << 10, "peak RSS: \(small) KiB for 100 images, \(large) KiB for 80,000")
        let trained = try cli.backprop(["train", "--data", "large.h5", "--layers", "784,10", "--steps", "3", "--stream",
                                        "--shuffle-blocks", "1024", "--run-dir", "large-run"])
        #expect(trained.status == 0, "\(trained.standardError)")
    }

    @Test("import csv past --data-memory streams: a 3 MB CSV (about 35 MiB held whole) imports within 12 MiB of a 10-row CSV's peak RSS")
    func boundedCSV() throws {
        func table(_ rows: Int) -> String {
            "label," + (1..<200).map { "p\($0)" }.joined(separator: ",") + "\n"
                + (0..<rows).map { r in "\(r % 10)," + (1..<200).map { String(($0 * 7 + r) % 256) }.joined(separator: ",") }.joined(separator: "\n")
        }
        try table(10).write(toFile: "\(cli.directory)/small.csv", atomically: true, encoding: .utf8)
        try table(4000).write(toFile: "\(cli.directory)/large.csv", atomically: true, encoding: .utf8)
        func importPeak(_ name: String, budget: String) throws -> Int {
            let (status, kib) = try peakResidentKiB(cli.executable, ["import", "csv", "\(name).csv", "--output", "\(name)-\(budget).h5",
                                                                    "--data-memory", budget],
                                                    in: cli.directory, outputFile: "\(cli.directory)/\(name).out")
            let output = (try? String(contentsOfFile: "\(cli.directory)/\(name).out", encoding: .utf8)) ?? ""
            #expect(status == 0, "\(output)")
            return kib
        }
        let small = try importPeak("small", budget: "1M"), streamed = try importPeak("large", budget: "1M")
        let output = try String(contentsOfFile: "\(cli.directory)/large.out", encoding: .utf8)
        #expect(output.contains("3200 train and 800 test samples of 199 features (bytes × 1/255), streamed"), "\(output)")
        let whole = try importPeak("large", budget: "1G")
        #expect(small > 0 && streamed - small < 12 << 10 && whole - small > 20 << 10,
                "peak RSS: \(small) KiB for 10 rows, \(streamed) KiB for 4,000 streamed, \(whole) KiB held whole")
    }
}
