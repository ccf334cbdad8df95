import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// The third hardening round (issue 35): the doors streaming and the run's
/// new outputs opened, each case as it was reproduced.
extension HardeningTests {
    @Test("a learning-rate floor (--min-lr) above the base rate is refused by name, for plateau and cosine, fresh and on resume", arguments: [
        ["--lr-schedule", "plateau", "--validation-fraction", "0.2", "--min-lr", "1", "--learning-rate", "0.05"],
        ["--lr-schedule", "cosine", "--min-lr", "0.5", "--learning-rate", "0.1"],
    ])
    func floorAboveRate(_ flags: [String]) throws {
        try expectRefusal(["train"] + model + flags + ["--run-dir", "r"], mentions: ["--min-lr", "must not exceed the base learning rate"])
        // A resume that lowers η under the run's floor is the same mistake.
        let floor = flags[flags.firstIndex(of: "--min-lr")! + 1]
        let valid = flags.map { $0 == floor ? "0.001" : $0 }
        let first = try backprop(["train"] + model + valid + ["--epochs", "1", "--run-dir", "floor"])
        try #require(first.status == 0, "\(first.standardError)")
        try expectRefusal(["train", "--resume", "floor", "--learning-rate", "0.0001", "--override"],
                          mentions: ["--min-lr", "must not exceed the base learning rate"])
    }
}

extension HardeningTests {
    @Test("a run directory's tensorboard/ planted as a symbolic link is refused by name, and nothing is written where it points")
    func tensorboardThroughLink() throws {
        let target = path("elsewhere")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: path("linked"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: path("linked/tensorboard"), withDestinationPath: target)
        let result = try backprop(["train"] + model + ["--epochs", "1", "--run-dir", "linked"])
        #expect(result.status != 0 && result.standardError.split(separator: "\n").count == 1, "\(result.standardError)")
        #expect(result.standardError.contains("linked/tensorboard") && result.standardError.contains("symbolic link"), "\(result.standardError)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: target).isEmpty, "nothing written through the link")
        #expect(!FileManager.default.fileExists(atPath: path("linked/config.json")))
        // Without TensorBoard the run needs no such directory.
        let without = try backprop(["train"] + model + ["--epochs", "1", "--run-dir", "linked", "--no-tensorboard"])
        #expect(without.status == 0, "\(without.standardError)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: target).isEmpty)
    }
}

extension HardeningTests {
    @Test("a flag that cannot act is refused by name, saying what it needs: --monitor and --min-delta without a validation split, --shuffle-window without --shuffle-blocks",
          arguments: [
              (["--monitor", "validation-loss"], "--monitor", "a validation split"),
              (["--min-delta", "0.01"], "--min-delta", "a validation split"),
              (["--early-stopping", "3", "--min-delta", "0.01"], "--early-stopping", "validation split"),
              (["--shuffle-window", "4"], "--shuffle-window", "--shuffle-blocks"),
              (["--shuffle-blocks", "0", "--shuffle-window", "4"], "--shuffle-window", "--shuffle-blocks"),
          ])
    func flagsThatCannotAct(_ flags: [String], _ flag: String, _ needs: String) throws {
        try expectRefusal(["train"] + model + flags + ["--run-dir", "r"], mentions: [flag, needs])
    }

    @Test("the same flags act where what they need is there")
    func flagsThatAct() throws {
        for (index, flags) in [["--monitor", "validation-loss", "--min-delta", "0.01", "--validation-fraction", "0.2"],
                               ["--shuffle-blocks", "64", "--shuffle-window", "4"]].enumerated() {
            let result = try backprop(["train"] + model + flags + ["--epochs", "1", "--run-dir", "acts-\(index)"])
            #expect(result.status == 0, "\(flags): \(result.standardError)")
        }
    }
}

extension HardeningTests {
    /// Python that sets `split`/x[row, column] to NaN in a float dataset file and
    /// recomputes its stored fingerprints (every block's and the whole's), as a
    /// hostile writer would, so that only the values can give it away.
    static let poison = """
    import sys, h5py, numpy as np
    path, split, row, column = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    M, MASK = 0x100000001B3, (1 << 64) - 1
    def fingerprint(data):
        h = 0xCBF29CE484222325
        words = len(data) // 8
        for i in range(words): h = ((h ^ int.from_bytes(data[8 * i:8 * i + 8], "little")) * M) & MASK
        for b in data[8 * words:]: h = ((h ^ b) * M) & MASK
        return ((h ^ len(data)) * M) & MASK
    with h5py.File(path, "r+") as f:
        x = f[split + "/x"]
        values = x[()]
        values[row, column] = np.nan
        x[row, column] = np.float32(np.nan)
        blocks = f[split + "/x_blocks"]
        n = int(blocks.attrs["block_rows"])
        for b in range(blocks.shape[0]):
            blocks[b] = np.uint64(fingerprint(values[b * n:(b + 1) * n].astype("<f4").tobytes()))
        x.attrs["fingerprint_fnv1a64"] = np.uint64(fingerprint(values.astype("<f4").tobytes()))
    """

    /// A float dataset (20 features, 3 classes) with /validation, whose `split` holds a NaN at row 5, column 3, fingerprints recomputed.
    func poisonedFile(_ split: String) throws -> String {
        let whole = randomDataset(count: 360, featureCount: 20, classCount: 3, seed: 4)
        let floats = Dataset(name: "floats", features: .floats(whole.arrays(outputCount: 3, as: Float.self).inputs.map { $0 - 0.5 }),
                             targets: whole.targets, featureCount: 20)
        let file = path("poisoned-\(split).h5")
        try DatasetFile.write(train: floats.subset(0..<240), validation: floats.subset(240..<300), test: floats.subset(300..<360),
                              attributes: [:], to: file)
        let poisoned = try run("/usr/bin/python3", ["-c", Self.poison, file, split, "5", "3"])
        try #require(poisoned.status == 0, "\(poisoned.standardError)")
        return file
    }

    @Test("a streamed split's NaN is refused as a loaded one's is, by file, split, row and column, before anything is computed from it: train, evaluate --stream, predict --stream",
          arguments: ["test", "validation"])
    func streamedNaN(split: String) throws {
        let file = try poisonedFile(split)
        let small = ["--data", file, "--layers", "20,8,3", "--batch-size", "40", "--workers", "2"]
        let where_ = "/\(split)/x"
        // /test streams at the end (it carries fingerprints); --stream makes /validation stream too.
        let train = try backprop(["train"] + small + ["--epochs", "1", "--stream", "--shuffle-blocks", "16", "--run-dir", "refused-\(split)"])
        #expect(train.status != 0 && train.standardError.contains(file) && train.standardError.contains(where_)
                && train.standardError.contains("holds nan at row 5, column 3"), "\(train.standardOutput)\(train.standardError)")
        #expect(!train.standardOutput.contains("loss nan") && !train.standardOutput.contains("loss -nan"),
                "nothing computed from the NaN is printed: \(train.standardOutput)")
        // A model of the same shape, from a clean file, asked about the poisoned split.
        let cleanFile = path("clean-\(split).h5")
        let whole = randomDataset(count: 90, featureCount: 20, classCount: 3, seed: 5)
        let floats = Dataset(name: "clean", features: .floats(whole.arrays(outputCount: 3, as: Float.self).inputs), targets: whole.targets,
                             featureCount: 20)
        try DatasetFile.write(train: floats.subset(0..<60), test: floats.subset(60..<90), attributes: [:], to: cleanFile)
        let model = try backprop(["train", "--data", cleanFile, "--layers", "20,8,3", "--epochs", "1", "--run-dir", "model-\(split)"])
        try #require(model.status == 0, "\(model.standardError)")
        let checkpoint = "model-\(split)/model.h5"
        let evaluate = try backprop(["evaluate", "--checkpoint", checkpoint, "--data", file, "--split", split, "--stream"])
        #expect(evaluate.status != 0 && evaluate.standardError.contains("holds nan at row 5, column 3") && !evaluate.standardOutput.contains("loss"),
                "\(evaluate.standardOutput)\(evaluate.standardError)")
        let predict = try backprop(["predict", "--checkpoint", checkpoint, "--input", file, "--split", split, "--stream", "--output", "p-\(split).csv"])
        #expect(predict.status != 0 && predict.standardError.contains("holds nan at row 5, column 3"), "\(predict.standardError)")
        #expect(!FileManager.default.fileExists(atPath: path("p-\(split).csv")), "no predictions written")
    }
}

extension HardeningTests {
    @Test("a file written a block at a time asks for the space it needs (with a margin in proportion), not 64 MiB more: on a 2 MiB file system small outputs are written, a large one is refused saying how much is missing")
    func freeSpaceInProportion() throws {
        let small = path("small-fs")
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        let mounted = try run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", small])
        try #require(mounted.status == 0, "the test mounts a 2 MiB tmpfs (as CI's root does): \(mounted.standardError)")
        defer { _ = try? run("/usr/bin/umount", [small]) }
        let rows = (0..<300).map { "\($0 % 256),\(($0 * 7) % 256),\($0 % 3)" }
        try Data((["a,b,label"] + rows).joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: path("t.csv")))
        for arguments in [["import", "csv", "t.csv", "--stream", "--output", "small-fs/csv.h5"],
                          ["generate", "--samples", "200", "--features", "16", "--output", "small-fs/generated.h5"],
                          ["rechunk", "small-fs/csv.h5", "--output", "small-fs/rechunked.h5"]] {
            let result = try backprop(arguments)
            #expect(result.status == 0, "\(arguments): \(result.standardError)")
        }
        let large = try backprop(["generate", "--samples", "4000", "--features", "784", "--output", "small-fs/large.h5"])
        #expect(large.status != 0 && large.standardError.contains("small-fs/large.h5") && large.standardError.contains("more are needed"),
                "\(large.standardError)")
        #expect(!FileManager.default.fileExists(atPath: path("small-fs/large.h5")))
    }
}

extension HardeningTests {
    @Test("--augment shift=S with S at or past an image's shorter side is refused by name, with the image shape; one pixel less trains", arguments: [28, 29, 1000])
    func shiftPastTheImage(shift: Int) throws {
        try expectRefusal(["train"] + model + ["--augment", "shift=\(shift)", "--run-dir", "r"], mentions: ["--augment", "28x28", "less than 28"])
    }

    @Test("--augment shift=27 on 28x28 images trains")
    func shiftInsideTheImage() throws {
        let result = try backprop(["train"] + model + ["--augment", "shift=27", "--epochs", "1", "--run-dir", "shift"])
        #expect(result.status == 0, "\(result.standardError)")
    }

    @Test("--data-memory takes one grammar (a whole number of bytes, or a number with K, M, G or T) on train and import; anything else is refused with the grammar",
          arguments: ["1P", "0x10", "1.5", "1e9", "-1", "12 MB extra", "99999999999T", "nan"])
    func dataMemoryGrammar(value: String) throws {
        for command in [["train"] + model + ["--run-dir", "r"], ["import", "npy", "--x", "x.npy", "--y", "y.npy", "--output", "x.h5"]] {
            try expectRefusal(command + ["--data-memory=\(value)"], mentions: ["--data-memory", "'\(value)'", "a number with K, M, G or T"])
        }
    }

    @Test("--data-memory's grammar: sizes it takes", arguments: ["512M", "1.5G", "8GiB", "64m", "104857600", "2TB"])
    func dataMemoryAccepted(value: String) throws {
        let result = try backprop(["train"] + model + ["--data-memory", value, "--print-config"])
        #expect(result.status == 0, "\(value): \(result.standardError)")
    }
}

extension HardeningTests {
    @Test("with a validation split, best.h5 is written at every new best epoch whatever the checkpoint policy (--no-checkpoint-every-epoch too), and the final line names the epoch it holds")
    func bestWrittenWithoutEpochCheckpoints() throws {
        let result = try backprop(["train"] + model + ["--validation-fraction", "0.2", "--epochs", "4", "--no-checkpoint-every-epoch",
                                                       "--learning-rate", "0.3", "--run-dir", "best"])
        try #require(result.status == 0, "\(result.standardError)")
        let lines = try String(contentsOfFile: path("best/metrics.csv"), encoding: .utf8).split(separator: "\n")
        let header = lines[0].split(separator: ",").map(String.init)
        let column = try #require(header.firstIndex(of: "validation_accuracy"))
        let accuracies = lines.dropFirst().map { Double($0.split(separator: ",", omittingEmptySubsequences: false)[column])! }
        let bestEpoch = accuracies.firstIndex(of: accuracies.max()!)!
        let best = try Checkpoint.load(from: path("best/best.h5"))
        #expect(best.position.epoch == bestEpoch + 1 && best.position.batch == 0)
        #expect(result.standardOutput.contains("best.h5 is epoch \(bestEpoch + 1), chosen on the validation split"), "\(result.standardOutput)")
    }
}

extension HardeningTests {
    @Test("--print-config prints every setting given, the free ones too (after a comment in YAML), and what it prints, given back as --config, prints the same", arguments: [false, true])
    func printConfigIsTheRun(json: Bool) throws {
        let given = ["--stream", "--shuffle-blocks", "64", "--data-memory", "1G", "--log-every", "5", "--report-test", "every-epoch",
                     "--no-tensorboard", "--kernel", "portable", "--log-grad-norms"]
        let format = ["--format", json ? "json" : "yaml"]
        let printed = try backprop(["train"] + model + given + ["--print-config"] + format)
        try #require(printed.status == 0, "\(printed.standardError)")
        for key in ["stream", "data-memory", "log-every", "report-test", "tensorboard", "kernel", "log-grad-norms", "shuffle-blocks", "workers"] {
            #expect(printed.standardOutput.contains(json ? "\"\(key)\"" : "\n\(key):"), "\(key) missing: \(printed.standardOutput)")
        }
        #expect(json || printed.standardOutput.contains("# Free: these never change a result"))
        let file = path(json ? "printed.json" : "printed.yaml")
        try printed.standardOutput.write(toFile: file, atomically: true, encoding: .utf8)
        let again = try backprop(["train", "--config", file, "--print-config"] + format)
        #expect(again.status == 0 && again.standardOutput == printed.standardOutput, "\(again.standardError)")
    }
}

extension CLITests {
    /// The fenced code block of the README that contains `marker`, as written.
    static func readmeSnippet(containing marker: String) throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let blocks = readme.components(separatedBy: "```").enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        guard let block = blocks.first(where: { $0.contains(marker) }) else { throw CocoaError(.fileReadCorruptFile) }
        return String(block.drop { $0 != "\n" }.dropFirst())  // past the fence's info string
    }

    @Test("the README's ONNX snippet runs as written on a model of the committed sample, which has no class names")
    func readmeONNXSnippet() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.onnxPython), "no .venv with ONNX Runtime (as .ci/run makes)")
        let trained = try backprop("train", "--data", Self.sample, "--layers", "784,16,10", "--epochs", "1", "--run-dir", "readme")
        try #require(trained.status == 0, "\(trained.standardError)")
        let exported = try backprop("export", "--format", "onnx", "readme/model.h5", "--output", "model")
        try #require(exported.status == 0, "\(exported.standardError)")
        // The snippet names .venv/bin/python3 from the project's root: the same one, from here.
        try FileManager.default.createSymbolicLink(atPath: "\(directory)/.venv",
                                                   withDestinationPath: URL(fileURLWithPath: Self.onnxPython).deletingLastPathComponent()
                                                       .deletingLastPathComponent().path)
        let snippet = try Self.readmeSnippet(containing: "import onnxruntime")
        let result = try run("/bin/bash", ["-c", snippet], in: directory)
        #expect(result.status == 0 && result.standardOutput.contains("no class names"), "\(snippet)\n\(result.standardError)")
    }
}

extension HardeningTests {
    @Test("a file whose stored whole fingerprint was copied from other data cannot resume a run as that data, streamed or not: the stored fingerprint is checked against the rows first")
    func forgedWholeFingerprint() throws {
        // A: the run's data; B: other data of the same shape, its whole fingerprint forged to A's.
        let (a, b) = (path("a.h5"), path("b.h5"))
        for (file, seed) in [(a, UInt64(1)), (b, 2)] {
            try DatasetFile.write(train: randomDataset(count: 600, featureCount: 784, classCount: 10, seed: seed),
                                  test: randomDataset(count: 100, featureCount: 784, classCount: 10, seed: seed + 10), attributes: [:], to: file)
        }
        let forge = """
        import h5py, sys
        with h5py.File(sys.argv[1], "r") as source, h5py.File(sys.argv[2], "r+") as target:
            target["train/x"].attrs["fingerprint_fnv1a64"] = source["train/x"].attrs["fingerprint_fnv1a64"]
        """
        let forged = try run("/usr/bin/python3", ["-c", forge, a, b])
        try #require(forged.status == 0, "\(forged.standardError)")
        let first = try backprop(["train", "--data", a, "--layers", "784,16,10", "--shuffle-blocks", "64", "--epochs", "1", "--run-dir", "run"])
        try #require(first.status == 0, "\(first.standardError)")
        for extra in [["--stream"], []] {
            let resumed = try backprop(["train", "--resume", "run", "--data", b, "--epochs", "2", "--override"] + extra)
            #expect(resumed.status != 0 && resumed.standardError.contains(b), "\(extra): \(resumed.standardOutput)\(resumed.standardError)")
            #expect(resumed.standardError.contains(extra.isEmpty ? "is not the data" : "does not match their bytes"), "\(extra): \(resumed.standardError)")
        }
        // The genuine file resumes streamed, after the one pass that checks it.
        let genuine = try backprop(["train", "--resume", "run", "--data", a, "--epochs", "2", "--override", "--stream"])
        #expect(genuine.status == 0, "\(genuine.standardError)")
    }
}

extension HardeningTests {
    /// The flags of `command --help` that take a value.
    func valueFlags(_ command: [String]) throws -> [String] {
        let help = try backprop(command + ["--help"]).standardOutput
        return help.split(separator: "\n").compactMap { line -> String? in
            let text = line.trimmingCharacters(in: .whitespaces)
            guard let match = text.firstMatch(of: /^(--[a-z0-9-]+) <[a-z0-9-]+>/) else { return nil }
            return String(match.1)
        }
    }

    /// Each command with the arguments it requires, valid up to the files they name.
    static let commands: [[String]] = [
        ["train"], ["privacy", "--noise", "1", "--sample-rate", "0.01", "--steps", "100", "--delta", "1e-5"],
        ["evaluate", "--checkpoint", "m.h5"], ["predict", "--checkpoint", "m.h5", "--input", "d.h5"], ["bench"],
        ["generate", "--samples", "10", "--output", "g.h5"], ["gradcheck"], ["import", "csv", "t.csv", "--output", "o.h5"],
        ["import", "npy", "--x", "x.npy", "--y", "y.npy", "--output", "o.h5"],
    ]

    @Test("every real-valued flag of every command refuses NaN and ±∞ by name (a flag is real-valued when it takes 0.5 and refuses a word): exit 64, one line naming the flag and the value",
          arguments: commands)
    func nonFiniteRealFlags(_ command: [String]) throws {
        let name = command.prefix(command.first == "import" ? 2 : 1).map { $0 }
        var reals: [String] = []
        for flag in try valueFlags(name) {
            // An unknown flag after it: the probe never runs the command.
            let half = try backprop(command + ["\(flag)=0.5", "--no-such-probe"]), word = try backprop(command + ["\(flag)=abc", "--no-such-probe"])
            if !half.standardError.contains("The value '0.5' is invalid for '\(flag)") && word.standardError.contains("The value 'abc' is invalid for '\(flag)") {
                reals.append(flag)
            }
        }
        for flag in reals {
            for value in ["nan", "inf", "-inf"] {
                let result = try backprop(command + ["\(flag)=\(value)"])
                let lines = result.standardError.split(separator: "\n")
                #expect(result.status == 64 && lines.count == 1 && lines[0].contains(flag) && lines[0].contains(value),
                        "\(name) \(flag)=\(value): \(result.standardError)")
                // A real number option says so in one form.
                if !result.standardError.contains("The value") {
                    #expect(result.standardError.hasPrefix("error: \(flag): \(value) is not a ") && result.standardError.contains("number"),
                            "\(name) \(flag)=\(value): \(result.standardError)")
                }
            }
        }
        if ["train", "privacy", "gradcheck", "import"].contains(name[0]) { #expect(!reals.isEmpty, "\(name): no real-valued flag found") }
    }
}
