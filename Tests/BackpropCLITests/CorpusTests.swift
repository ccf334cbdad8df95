import BackpropTestSupport
import Foundation
import Testing

/// Every malformed file of the corpus (Fuzz/make_corpus.py) and every input
/// the fuzzer kept (Fuzz/regressions) through the command that reads it:
/// a non-zero exit, not a signal, one line on stderr naming the file and the
/// problem, and nothing written.
struct CorpusTests {
    let directory = temporaryDirectory("corpus")
    let executable = backpropExecutable()
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    struct Entry: Decodable {
        let file: String
        let kind: String
        let expect: String
    }

    /// The command that reads `path` as a dataset or as a checkpoint.
    func command(reading path: String, as kind: String, goodDataset: String) -> [String] {
        kind == "dataset"
            ? ["train", "--data", path, "--layers", "5,4,3", "--epochs", "1", "--batch-size", "8", "--run-dir", "run"]
            : ["evaluate", "--checkpoint", path, "--data", goodDataset]
    }

    /// Runs the reading command in an empty directory of its own and checks a clean refusal.
    func expectRefusal(_ path: String, as kind: String, mentioning fragment: String, goodDataset: String) throws {
        let work = temporaryDirectory("corpus-case")
        // A low memory cap, so that inputs that make libhdf5 allocate without
        // bound fail in a second or two rather than at 3/4 of the machine's memory.
        let result = try run(executable, command(reading: path, as: kind, goodDataset: goodDataset), in: work,
                             environment: ["BACKPROP_MEMORY_LIMIT_MB": "1024"])
        let name = URL(fileURLWithPath: path).lastPathComponent
        #expect(result.status != 0 && !result.signalled, "\(name): status \(result.status)")
        #expect(result.standardError.split(separator: "\n").count == 1, "\(name): \(result.standardError)")
        #expect(result.standardError.contains(path), "\(name) is not named: \(result.standardError)")
        #expect(fragment.isEmpty || result.standardError.contains(fragment), "\(name): '\(fragment)' not in \(result.standardError)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: work).isEmpty, "\(name): files were written")
    }

    @Test("at least 40 malformed datasets and checkpoints are each refused cleanly")
    func corpus() throws {
        let python = "/usr/bin/python3", script = Self.root.appendingPathComponent("Fuzz/make_corpus.py").path
        let good = "\(directory)/good.h5", checkpoint = "\(directory)/checkpoint.h5", out = "\(directory)/corpus"
        let made = try run(python, [script, "dataset", good])
        try #require(made.status == 0, "h5py is needed: \(made.standardError)")
        let trained = try run(executable, ["train", "--data", good, "--layers", "5,4,3", "--epochs", "1", "--batch-size", "8",
                                           "--run-dir", "\(directory)/run", "--output", checkpoint])
        try #require(trained.status == 0, "\(trained.standardError)")
        let corpus = try run(python, [script, "corpus", "--dataset", good, "--checkpoint", checkpoint, "--out", out])
        try #require(corpus.status == 0, "\(corpus.standardError)")

        let manifest = try JSONDecoder().decode([Entry].self, from: Data(contentsOf: URL(fileURLWithPath: "\(out)/manifest.json")))
        #expect(manifest.count >= 40)
        for entry in manifest {
            try expectRefusal("\(out)/\(entry.file)", as: entry.kind, mentioning: entry.expect, goodDataset: good)
        }
        // The valid pair itself is accepted, so the refusals are not for some other reason.
        let accepted = try run(executable, ["evaluate", "--checkpoint", checkpoint, "--data", good])
        #expect(accepted.status == 0, "\(accepted.standardError)")

        // inspect: the contents of each, and the verdict.
        let dataset = try run(executable, ["inspect", good])
        #expect(dataset.status == 0 && dataset.standardOutput.contains("/train/x  dataset uint8 [20, 5]"), "\(dataset.standardOutput)")
        #expect(dataset.standardOutput.contains("@scale = ") && dataset.standardOutput.contains("valid: dataset of 20 train and 6 test samples"))
        let model = try run(executable, ["inspect", checkpoint])
        #expect(model.status == 0 && model.standardOutput.contains("/model/layers/0/weight  dataset float32 [4, 5]"), "\(model.standardOutput)")
        #expect(model.standardOutput.contains("valid: checkpoint format version 2, model 5-4-3"))
        let link = try run(executable, ["inspect", "\(out)/soft-link.h5"])
        #expect(link.status == 1 && !link.signalled)
        #expect(link.standardOutput.contains("/test/x  soft link (not followed)") && link.standardOutput.contains("invalid: "),
                "\(link.standardOutput)")
        let virtual = try run(executable, ["inspect", "\(out)/virtual.h5"])
        #expect(virtual.status == 1 && virtual.standardOutput.contains("/test/y  dataset uint8 [6], virtual"), "\(virtual.standardOutput)")
    }

    @Test("inputs the fuzzer found are refused cleanly, as dataset and as checkpoint")
    func fuzzerRegressions() throws {
        let folder = Self.root.appendingPathComponent("Fuzz/regressions").path
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        #expect(!files.isEmpty)
        let good = "\(directory)/good.h5"
        let made = try run("/usr/bin/python3", [Self.root.appendingPathComponent("Fuzz/make_corpus.py").path, "dataset", good])
        try #require(made.status == 0, "h5py is needed: \(made.standardError)")
        for file in files {
            for kind in ["dataset", "checkpoint"] {
                try expectRefusal("\(folder)/\(file)", as: kind, mentioning: "", goodDataset: good)
            }
        }
    }
}
