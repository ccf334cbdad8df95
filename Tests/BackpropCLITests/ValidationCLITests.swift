import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// The validation split chooses; the test split never does (issue 23, item 1).
struct ValidationCLITests {
    let directory = temporaryDirectory("validation")
    let executable = backpropExecutable()

    func backprop(_ arguments: [String]) throws -> ProcessResult {
        try run(executable, arguments, in: directory)
    }

    func path(_ name: String) -> String { "\(directory)/\(name)" }

    /// The committed sample with another /test: `count` other samples (training rows) with shuffled labels.
    func sampleWithOtherTest(_ name: String, count: Int, seed: UInt64) throws -> String {
        let (train, _) = try DatasetFile.load(CLITests.sample)
        var generator = SeededGenerator(seed: seed)
        let rows = Array((0..<train.count).shuffled(using: &generator).prefix(count))
        let picked = train.subset(rows)
        guard case .bytes(let bytes, let scale) = picked.features, let labels = picked.labels else { throw CocoaError(.featureUnsupported) }
        let test = Dataset(name: "other", features: bytes, labels: labels.shuffled(using: &generator),
                           featureCount: picked.featureCount, scale: scale)
        try DatasetFile.write(train: train, test: test, attributes: ["source": "test"], to: path(name))
        return path(name)
    }

    /// metrics.csv as columns by name.
    func metrics(_ run: String) throws -> [String: [String]] {
        let lines = try String(contentsOfFile: path("\(run)/metrics.csv"), encoding: .utf8).split(separator: "\n")
        let header = lines[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let rows = lines.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        return Dictionary(uniqueKeysWithValues: header.enumerated().map { i, name in (name, rows.map { $0[i] }) })
    }

    static let model = ["--layers", "784,16,10", "--epochs", "4", "--batch-size", "100", "--validation-fraction", "0.2", "--workers", "2"]

    @Test("the test split cannot influence the run: datasets that differ only in /test give the same parameters, best.h5 and rates")
    func testChoosesNothing() throws {
        let a = try sampleWithOtherTest("a.h5", count: 200, seed: 1), b = try sampleWithOtherTest("b.h5", count: 150, seed: 2)
        for (data, run) in [(a, "a"), (b, "b")] {
            let result = try backprop(["train", "--data", data, "--run-dir", run] + Self.model + ["--report-test", "every-epoch"])
            try #require(result.status == 0, "\(result.standardError)")
        }
        let (modelA, modelB) = (try Checkpoint.load(from: path("a/model.h5")), try Checkpoint.load(from: path("b/model.h5")))
        #expect(modelA.network.parameters.map(\.bitPattern) == modelB.network.parameters.map(\.bitPattern))
        let (bestA, bestB) = (try Checkpoint.load(from: path("a/best.h5")), try Checkpoint.load(from: path("b/best.h5")))
        #expect(bestA.network.parameters.map(\.bitPattern) == bestB.network.parameters.map(\.bitPattern))
        #expect(bestA.position == bestB.position)
        let (metricsA, metricsB) = (try metrics("a"), try metrics("b"))
        for column in ["train_loss", "validation_loss", "validation_accuracy", "learning_rate"] {
            #expect(metricsA[column] == metricsB[column], "\(column)")
        }
        // The test columns were read each epoch (and differ), yet chose nothing.
        #expect(metricsA["test_accuracy"] != metricsB["test_accuracy"] && metricsA["test_accuracy"]!.allSatisfy { !$0.isEmpty })
    }

    @Test("best.h5 is the epoch of best validation accuracy; the test split is read once, at the end; without a validation split there is no best.h5")
    func bestByValidation() throws {
        let result = try backprop(["train", "--data", CLITests.sample, "--run-dir", "v"] + Self.model)
        try #require(result.status == 0, "\(result.standardError)")
        let columns = try metrics("v")
        let accuracies = columns["validation_accuracy"]!.map { Double($0)! }
        let best = try Checkpoint.load(from: path("v/best.h5"))
        let bestEpoch = accuracies.indices.first { accuracies[$0] == accuracies.max() }!
        #expect(best.position.epoch == bestEpoch + 1 && best.history.best == History.Best(epoch: bestEpoch, score: accuracies[bestEpoch]))
        let testCells = columns["test_accuracy"]!
        #expect(testCells.allSatisfy { $0.isEmpty }, "not read per epoch")
        let lines = result.standardOutput.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("epoch ") }.allSatisfy { $0.contains("validation accuracy") && !$0.contains("test") })
        #expect(lines.filter { $0.contains("test accuracy") }.count == 1 && result.standardOutput.contains("chosen on the validation split"))
        // 800 of the sample's 1,000 training samples train: 8 batches of 100 per epoch.
        #expect(result.standardOutput.contains("on 800 samples") && result.standardOutput.contains("8 batches of 100"))

        let plain = try backprop(["train", "--data", CLITests.sample, "--run-dir", "plain", "--layers", "784,16,10", "--epochs", "2"])
        try #require(plain.status == 0, "\(plain.standardError)")
        #expect(!FileManager.default.fileExists(atPath: path("plain/best.h5")))
        #expect(plain.standardOutput.contains("no best.h5: without a validation split"))
    }

    @Test("the split is part of the run: recorded, covered by the fingerprint, fixed on resume; a resumed run stops with the same bits")
    func splitOnResume() throws {
        let first = try backprop(["train", "--data", CLITests.sample, "--run-dir", "r"] + Self.model.map { $0 == "4" ? "2" : $0 })
        try #require(first.status == 0, "\(first.standardError)")
        let settings = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("r/config.json")))) as? [String: Any]
        #expect((settings?["validation-fraction"] as? Double) == 0.2)
        let checkpoint = try Checkpoint.load(from: path("r/last.h5"))
        #expect(checkpoint.configuration.validationFraction == 0.2 && checkpoint.dataFingerprint.contains("; validation 200x784"))
        let changed = try backprop(["train", "--resume", "r", "--validation-fraction", "0.3"])
        #expect(changed.status != 0 && changed.standardError.contains("--validation-fraction"), "\(changed.standardError)")
        let resumed = try backprop(["train", "--resume", "r", "--epochs", "4", "--override"])
        try #require(resumed.status == 0, "\(resumed.standardError)")
        let straight = try backprop(["train", "--data", CLITests.sample, "--run-dir", "s"] + Self.model)
        try #require(straight.status == 0, "\(straight.standardError)")
        let (a, b) = (try Checkpoint.load(from: path("r/model.h5")), try Checkpoint.load(from: path("s/model.h5")))
        #expect(a.network.parameters.map(\.bitPattern) == b.network.parameters.map(\.bitPattern) && a.history.best == b.history.best)
    }

    @Test("--validation-fraction refused by name at 0 < f·N < 1, 1, NaN, ∞ and −1", arguments: ["0.0001", "1", "nan", "inf", "-1", "0.9999"])
    func refused(value: String) throws {
        let result = try backprop(["train", "--data", CLITests.sample, "--run-dir", "x", "--layers", "784,16,10", "--validation-fraction", value])
        #expect(result.status != 0 && !result.signalled && result.standardError.contains("--validation-fraction"), "\(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: path("x/model.h5")))
    }
}
