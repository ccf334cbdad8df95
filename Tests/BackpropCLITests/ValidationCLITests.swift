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

    @Test("the test split cannot influence the run: datasets that differ only in /test give the same parameters, best.h5, stopping epoch and rates, with or without an average of the weights",
          arguments: [[], ["--ema", "0.9"], ["--swa-start", "2"], ["--distill-alpha", "0.7", "--temperature", "2"]])
    func testChoosesNothing(_ averaging: [String]) throws {
        let tag = averaging.first.map { String($0.dropFirst(2)) } ?? "plain"
        let a = try sampleWithOtherTest("a-\(tag).h5", count: 200, seed: 1), b = try sampleWithOtherTest("b-\(tag).h5", count: 150, seed: 2)
        let (runA, runB) = ("a-\(tag)", "b-\(tag)")
        var averaging = averaging
        if averaging.first == "--distill-alpha" {
            // One teacher for both: a member trained on a's rows and split (its /test never read by the teacher).
            let member = try backprop(["train", "--data", a, "--run-dir", "teacher-member", "--learning-rate", "0.2"] + Self.model)
            try #require(member.status == 0, "\(member.standardError)")
            let ensemble = try backprop(["ensemble", "--checkpoints", path("teacher-member/model.h5"), "--output", path("teacher.h5")])
            try #require(ensemble.status == 0, "\(ensemble.standardError)")
            averaging += ["--teacher", path("teacher.h5")]
        }
        for (data, run) in [(a, runA), (b, runB)] {
            // Every choice a run makes: best.h5, a plateau's reductions, early stopping's epoch.
            let choices = ["--report-test", "every-epoch", "--lr-schedule", "plateau", "--plateau-patience", "1", "--early-stopping", "3",
                           "--monitor", "validation-loss", "--learning-rate", "0.2", "--epochs", "30"]
            let result = try backprop(["train", "--data", data, "--run-dir", run] + Self.model + choices + averaging)
            try #require(result.status == 0, "\(result.standardError)")
        }
        let (modelA, modelB) = (try Checkpoint.load(from: path("\(runA)/model.h5")), try Checkpoint.load(from: path("\(runB)/model.h5")))
        #expect(modelA.network.parameters.map(\.bitPattern) == modelB.network.parameters.map(\.bitPattern))
        let (bestA, bestB) = (try Checkpoint.load(from: path("\(runA)/best.h5")), try Checkpoint.load(from: path("\(runB)/best.h5")))
        #expect(bestA.network.parameters.map(\.bitPattern) == bestB.network.parameters.map(\.bitPattern))
        #expect(bestA.position == bestB.position)
        let (lastA, lastB) = (try Checkpoint.load(from: path("\(runA)/last.h5")), try Checkpoint.load(from: path("\(runB)/last.h5")))
        #expect(lastA.average == lastB.average && (!["--ema", "--swa-start"].contains(averaging.first ?? "") || lastA.average != nil))
        // The same stop (SWA's running mean keeps improving here: it trains all 30 epochs, in both).
        #expect(lastA.position == lastB.position && (lastA.position.epoch < 30 || averaging.first == "--swa-start"), "the same early stop")
        #expect(lastA.history.reductions == lastB.history.reductions && lastA.history.reductions > 0)
        let (metricsA, metricsB) = (try metrics(runA), try metrics(runB))
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

    @Test("a dataset's own /validation: imported with --validation-fraction, chosen on by train, read by evaluate --split validation")
    func storedValidation() throws {
        // 200 rows of 4 features, 4 classes; the importer holds out 20 % as test, then 25 % of the rest as validation.
        var generator = SeededGenerator(seed: 9)
        let rows = (0..<200).map { n in ((0..<4).map { _ in "\(generator.next() % 256)" } + ["\(n % 4)"]).joined(separator: ",") }
        try (["a,b,c,d,label"] + rows).joined(separator: "\n").write(toFile: path("t.csv"), atomically: true, encoding: .utf8)
        let imported = try backprop(["import", "csv", "t.csv", "--validation-fraction", "0.25", "--output", "t.h5"])
        try #require(imported.status == 0, "\(imported.standardError)")
        #expect(imported.standardOutput.contains("120 train, 40 validation and 40 test samples"), "\(imported.standardOutput)")
        // Stratified: each class's share of the rows the test split left, within one sample.
        let counts = try Self.classCounts(DatasetFile.validation(of: HDF5File.open(path("t.h5")))!)
        let kept = try Self.classCounts(DatasetFile.load(path("t.h5")).train)
        #expect(zip(counts, kept).allSatisfy { abs(Double($0) - 0.25 * Double($0 + $1)) <= 1 }, "stratified: \(counts) of \(zip(counts, kept).map { $0 + $1 })")

        let inspected = try backprop(["inspect", "t.h5"])
        #expect(inspected.standardOutput.contains("valid: dataset of 120 train, 40 validation and 40 test samples"), "\(inspected.standardOutput)")
        // A /validation that does not fit /train is refused by name.
        try FileManager.default.copyItem(atPath: path("t.h5"), toPath: path("bad.h5"))
        let edit = try run("/usr/bin/python3", ["-c", "import h5py, numpy; f = h5py.File('\(path("bad.h5"))', 'a'); del f['validation/x']; "
                                                + "f['validation/x'] = numpy.zeros((40, 3), numpy.float32); f.close()"])
        try #require(edit.status == 0, "h5py is needed: \(edit.standardError)")
        let bad = try backprop(["train", "--data", "bad.h5", "--layers", "4,8,4", "--epochs", "1", "--run-dir", "bad"])
        #expect(bad.status != 0 && bad.standardError.contains("/validation/x") && bad.standardError.split(separator: "\n").count == 1,
                "\(bad.standardError)")

        let trained = try backprop(["train", "--data", "t.h5", "--layers", "4,8,4", "--epochs", "2", "--run-dir", "t"])
        try #require(trained.status == 0, "\(trained.standardError)")
        #expect(trained.standardOutput.contains("validation accuracy") && FileManager.default.fileExists(atPath: path("t/best.h5")))
        let twice = try backprop(["train", "--data", "t.h5", "--layers", "4,8,4", "--validation-fraction", "0.1", "--run-dir", "t2"])
        #expect(twice.status != 0 && twice.standardError.contains("--validation-fraction") && twice.standardError.contains("/validation"))
        let evaluated = try backprop(["evaluate", "--checkpoint", "t/model.h5", "--data", "t.h5", "--split", "validation"])
        #expect(evaluated.status == 0 && evaluated.standardOutput.contains(": 40 samples"), "\(evaluated.standardOutput)")

        // A run that held out its own share: evaluate --split validation finds the same 200 of the sample's 1,000.
        let run = try backprop(["train", "--data", CLITests.sample, "--run-dir", "own", "--layers", "784,8,10", "--epochs", "1",
                                "--validation-fraction", "0.2"])
        try #require(run.status == 0, "\(run.standardError)")
        let own = try backprop(["evaluate", "--checkpoint", "own/model.h5", "--data", CLITests.sample, "--split", "validation"])
        #expect(own.status == 0 && own.standardOutput.contains(": 200 samples"), "\(own.standardOutput)")
        let best = try Checkpoint.load(from: path("own/best.h5"))
        let accuracy = try #require(own.standardOutput.components(separatedBy: "accuracy ").dropFirst().first?.split(separator: "%").first)
        #expect(String(format: "%.2f", 100 * best.history.best!.score) == accuracy, "the run's validation accuracy: \(own.standardOutput)")
        let none = try backprop(["evaluate", "--checkpoint", "t/model.h5", "--data", CLITests.sample, "--split", "validation"])
        #expect(none.status != 0 && none.standardError.contains("--validation-fraction"))
    }

    static func classCounts(_ data: Dataset) -> [Int] {
        var counts = [Int](repeating: 0, count: 4)
        for label in data.labels! { counts[Int(label)] += 1 }
        return counts
    }

    static let stopping = ["--data", CLITests.sample, "--layers", "784,32,10", "--epochs", "40", "--validation-fraction", "0.2",
                           "--early-stopping", "2", "--monitor", "validation-loss", "--learning-rate", "0.2", "--workers", "2"]

    @Test("early stopping: stops after N epochs without a better monitor, model.h5 is the best epoch's, and a resume stops at the same epoch with the same bits")
    func earlyStopping() throws {
        let straight = try backprop(["train", "--run-dir", "straight"] + Self.stopping)
        try #require(straight.status == 0, "\(straight.standardError)")
        let last = try Checkpoint.load(from: path("straight/last.h5")), best = try Checkpoint.load(from: path("straight/best.h5"))
        let model = try Checkpoint.load(from: path("straight/model.h5"))
        let stoppedAt = last.position.epoch
        try #require(stoppedAt < 40, "it stopped early")
        #expect(stoppedAt - 1 - best.history.best!.epoch == 2, "two epochs without a lower validation loss")
        #expect(model.network.parameters.map(\.bitPattern) == best.network.parameters.map(\.bitPattern))
        let losses = try metrics("straight")["validation_loss"]!.map { Double($0)! }
        #expect(losses.count == stoppedAt && losses.indices.min { losses[$0] < losses[$1] } == best.history.best!.epoch)
        #expect(straight.standardOutput.contains("holds the weights of epoch \(best.history.best!.epoch + 1)"))

        // Interrupted one epoch before the stop (--epochs), then resumed to 40: the same stop, the same bits.
        let first = try backprop(["train", "--run-dir", "resumed"] + Self.stopping.map { $0 == "40" ? "\(stoppedAt - 1)" : $0 })
        try #require(first.status == 0, "\(first.standardError)")
        let resumed = try backprop(["train", "--resume", "resumed", "--epochs", "40", "--override"])
        try #require(resumed.status == 0, "\(resumed.standardError)")
        let again = try Checkpoint.load(from: path("resumed/model.h5")), againLast = try Checkpoint.load(from: path("resumed/last.h5"))
        #expect(again.network.parameters.map(\.bitPattern) == model.network.parameters.map(\.bitPattern))
        #expect(againLast.position == last.position && againLast.history.best == last.history.best)
        // A stopped run stays stopped.
        let more = try backprop(["train", "--resume", "straight", "--epochs", "50", "--override"])
        #expect(more.status == 0 && more.standardOutput.contains("the run had stopped early"), "\(more.standardOutput)")
        #expect(try Checkpoint.load(from: path("straight/last.h5")).position == last.position)
    }

    @Test("plateau: η is reduced after N epochs without a better monitor, at the same epochs after a resume, with the same bits")
    func plateau() throws {
        let flags = ["--data", CLITests.sample, "--layers", "784,32,10", "--validation-fraction", "0.2", "--lr-schedule", "plateau",
                     "--plateau-patience", "1", "--plateau-factor", "0.5", "--monitor", "validation-loss", "--learning-rate", "0.2",
                     "--workers", "2"]
        let straight = try backprop(["train", "--run-dir", "straight", "--epochs", "10"] + flags)
        try #require(straight.status == 0, "\(straight.standardError)")
        let rates = try metrics("straight")["learning_rate"]!.map { Double($0)! }
        let losses = try metrics("straight")["validation_loss"]!.map { Double($0)! }
        // Replay the rule by hand: after an epoch that is no better than the best for one epoch (since the last reduction), η halves.
        var (η, best, last) = (0.2, Double.infinity, -1)
        var expected: [Double] = []
        var bestEpoch = -1
        for (epoch, loss) in losses.enumerated() {
            expected.append(η)
            if loss < best { (best, bestEpoch) = (loss, epoch) }
            if epoch - max(bestEpoch, last) >= 1 { η *= 0.5; last = epoch }
        }
        #expect(rates == expected && Set(rates).count > 1, "\(rates) vs \(expected)")
        let first = try backprop(["train", "--run-dir", "resumed", "--epochs", "6"] + flags)
        try #require(first.status == 0, "\(first.standardError)")
        let resumed = try backprop(["train", "--resume", "resumed", "--epochs", "10", "--override"])
        try #require(resumed.status == 0, "\(resumed.standardError)")
        #expect(try metrics("resumed")["learning_rate"]! == metrics("straight")["learning_rate"]!)
        let (a, b) = (try Checkpoint.load(from: path("straight/model.h5")), try Checkpoint.load(from: path("resumed/model.h5")))
        #expect(a.network.parameters.map(\.bitPattern) == b.network.parameters.map(\.bitPattern) && a.history.reductions == b.history.reductions)
        let none = try backprop(["train", "--data", CLITests.sample, "--layers", "784,8,10", "--lr-schedule", "plateau", "--run-dir", "x"])
        #expect(none.status != 0 && none.standardError.contains("validation split"), "\(none.standardError)")
        let wrong = try backprop(["train", "--data", CLITests.sample, "--layers", "784,8,10", "--plateau-factor", "0.5", "--run-dir", "x"])
        #expect(wrong.status != 0 && wrong.standardError.contains("--plateau-factor needs --lr-schedule plateau"), "\(wrong.standardError)")
    }

    @Test("--early-stopping needs a validation split; its numbers are refused by name", arguments: [
        (["--early-stopping", "2"], "validation split"), (["--early-stopping", "2"], "--early-stopping 2 is invalid"),
        (["--lr-schedule", "plateau"], "--lr-schedule plateau is invalid: a plateau schedule watches a validation split"),
        (["--early-stopping", "0", "--validation-fraction", "0.2"], "--early-stopping"),
        (["--min-delta", "-1"], "--min-delta"), (["--min-delta", "nan"], "--min-delta"), (["--monitor", "test-loss"], "--monitor"),
    ])
    func stoppingRefused(flags: [String], fragment: String) throws {
        let result = try backprop(["train", "--data", CLITests.sample, "--run-dir", "x", "--layers", "784,16,10"] + flags)
        #expect(result.status != 0 && !result.signalled && result.standardError.contains(fragment), "\(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: path("x/model.h5")))
    }

    @Test("--early-stopping with --no-checkpoint-every-epoch stops early and restores the best epoch from best.h5, which is written whatever the policy")
    func stoppingWithoutEpochCheckpoints() throws {
        let result = try backprop(["train", "--data", CLITests.sample, "--run-dir", "x", "--layers", "784,16,10", "--epochs", "30",
                                   "--learning-rate", "0.5", "--early-stopping", "1", "--validation-fraction", "0.2", "--no-checkpoint-every-epoch"])
        try #require(result.status == 0, "\(result.standardError)")
        let (model, best) = (try Checkpoint.load(from: path("x/model.h5")), try Checkpoint.load(from: path("x/best.h5")))
        #expect(model.history.epochs.count < 30, "early stopping never stopped the run")
        #expect(model.network.parameters.map(\.bitPattern) == best.network.parameters.map(\.bitPattern))
        #expect(model.history.best != nil)
    }

    @Test("--validation-fraction refused by name at 0 < f·N < 1, 1, NaN, ∞ and −1", arguments: ["0.0001", "1", "nan", "inf", "-1", "0.9999"])
    func refused(value: String) throws {
        let result = try backprop(["train", "--data", CLITests.sample, "--run-dir", "x", "--layers", "784,16,10", "--validation-fraction", value])
        #expect(result.status != 0 && !result.signalled && result.standardError.contains("--validation-fraction"), "\(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: path("x/model.h5")))
    }
}

/// Core's fit loop is the CLI's: the same settings give the same bits from
/// `TrainingLoop.fit` as from `backprop train` (issue 34).
struct FitLoopCLITests {
    @Test("TrainingLoop.fit with early stopping and a plateau schedule gives backprop train's model, best epoch, reductions and step-loss digest")
    func libraryMatchesCLI() throws {
        let directory = temporaryDirectory("fit-loop")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let flags = ["--layers", "784,16,10", "--epochs", "30", "--batch-size", "100", "--validation-fraction", "0.2", "--workers", "2",
                     "--lr-schedule", "plateau", "--plateau-patience", "1", "--plateau-factor", "0.5", "--early-stopping", "3",
                     "--monitor", "validation-loss", "--learning-rate", "0.2", "--seed", "7"]
        let result = try run(backpropExecutable(), ["train", "--data", CLITests.sample, "--run-dir", "cli"] + flags, in: directory)
        try #require(result.status == 0, "\(result.standardError)")
        let model = try Checkpoint.load(from: "\(directory)/cli/model.h5")
        let last = try Checkpoint.load(from: "\(directory)/cli/last.h5")

        // The same run from Swift, each setting as the flags give it.
        var configuration = TrainingConfiguration()
        configuration.sizes = [784, 16, 10]
        configuration.epochs = 30
        configuration.batchSize = 100
        configuration.validationFraction = 0.2
        configuration.workers = 1
        configuration.seed = 7
        configuration.monitor = .validationLoss
        configuration.earlyStopping = EarlyStopping(patience: 3)
        configuration.schedule = LearningRateSchedule(base: 0.2, .plateau(factor: 0.5, patience: 1, minimum: 0))
        let (whole, _) = try DatasetFile.load(CLITests.sample)
        let (train, validation) = try whole.split(validationFraction: configuration.validationFraction, seed: configuration.seed)
        let trainer = try Trainer(configuration: configuration, dataset: train)
        let loop = try TrainingLoop(trainer: trainer, validation: validation)
        let fit = try loop.fit()

        var recorded = model.configuration
        recorded.workers = 1
        #expect(recorded == configuration, "the CLI resolved the flags to these settings")
        #expect(fit.reason == .stoppedEarly && fit.isBest && last.position.epoch < 30)
        #expect(fit.best == model.history.best && model.position.epoch == fit.best!.epoch + 1)
        #expect(fit.network.parameters.map(\.bitPattern) == model.network.parameters.map(\.bitPattern))
        #expect(trainer.position == last.position && trainer.history.reductions == last.history.reductions && last.history.reductions > 0)
        #expect(trainer.history.stepLossDigest == last.history.stepLossDigest)
    }
}
