import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// The cases of the second hardening round (issue 26), each as a user or an
/// attacker met it: loops that must end, counts that must not overflow,
/// integers printed whole, a run directory that cannot be turned against its
/// owner, resumes that keep what the run chose, and inputs checked by name.
struct HardeningTests {
    let directory = temporaryDirectory("hardening")
    let executable = backpropExecutable()
    /// A small model on the committed sample: 4 steps of 256 per epoch.
    let model = ["--data", CLITests.sample, "--layers", "784,16,10", "--workers", "2"]

    func backprop(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
        try run(executable, arguments, in: directory, environment: environment)
    }

    /// A clean refusal: non-zero exit, one line naming every fragment, and no file created, changed or removed.
    func expectRefusal(_ arguments: [String], mentions fragments: [String], environment: [String: String] = [:],
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = snapshot(directory)
        let result = try backprop(arguments, environment: environment)
        #expect(result.status != 0 && !result.signalled, "status \(result.status)", sourceLocation: sourceLocation)
        #expect(result.standardError.split(separator: "\n").count == 1, "stderr: \(result.standardError)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(result.standardError.contains(fragment), "stderr: \(result.standardError)", sourceLocation: sourceLocation)
        }
        #expect(snapshot(directory) == before, "files changed", sourceLocation: sourceLocation)
    }

    func path(_ name: String) -> String { "\(directory)/\(name)" }

    // MARK: - Loops and arithmetic

    @Test("the accountant ends for any σ: a noise below 1e-154 is ε = ∞, not a hang")
    func tinyNoise() throws {
        for σ in [1e-160, 1e-200, 5e-324] {
            #expect(PrivacyAccountant.epsilon(samplingRate: 0.01, noise: σ, steps: 100, delta: 1e-5).epsilon == .infinity)
            #expect(PrivacyAccountant.rdp(samplingRate: 0.01, noise: σ, order: 1.5) == .infinity)
        }
        let result = try backprop(["privacy", "--noise", "1e-160", "--sample-rate", "0.01", "--steps", "100", "--delta", "1e-5"])
        #expect(result.status == 0 && result.standardOutput.contains("ε = ∞") && result.standardOutput.contains("no privacy guarantee"),
                "\(result.standardOutput)\(result.standardError)")
        let dp = try backprop(["train"] + model + ["--epochs", "1", "--dp-clip", "1", "--dp-noise", "1e-200", "--seed", "7", "--run-dir", "dp"])
        #expect(dp.status == 0 && dp.standardOutput.contains("ε ∞ (no guarantee)"), "\(dp.standardOutput)\(dp.standardError)")
    }

    @Test("epochs × batches beyond what a run can count is refused by name before anything is written", arguments: [
        ["--epochs", "9223372036854775807", "--lr-schedule", "cosine"],
        ["--epochs", "9223372036854775807", "--dp-clip", "1", "--dp-epsilon", "3"],
        ["--epochs", "2305843009213693952", "--dp-clip", "1", "--dp-noise", "1"],
    ])
    func stepCountOverflow(_ flags: [String]) throws {
        try expectRefusal(["train"] + model + flags + ["--run-dir", "r"], mentions: ["--epochs", "more steps than a run can count"])
    }

    @Test("integers past 2³¹ are printed whole")
    func wholeIntegers() throws {
        let privacy = try backprop(["privacy", "--noise", "1", "--sample-rate", "0.01", "--steps", "3000000000", "--delta", "1e-5"])
        #expect(privacy.standardOutput.contains("after 3000000000 steps"), "\(privacy.standardOutput)")
        let train = try backprop(["train"] + model + ["--epochs", "3000000000", "--steps", "5", "--run-dir", "long"])
        #expect(train.status == 0 && train.standardOutput.contains("epoch 1/3000000000 "), "\(train.standardOutput)\(train.standardError)")
    }

    // MARK: - A run directory is the run's own

    @Test("a .lock planted as a symbolic or hard link is refused, and the file it points at is untouched")
    func plantedLock() throws {
        let victim = path("victim")
        let text = (1...1000).map(String.init).joined(separator: "\n")
        try text.write(toFile: victim, atomically: true, encoding: .utf8)
        for (name, plant) in [("symbolic", { (lock: String) in try FileManager.default.createSymbolicLink(atPath: lock, withDestinationPath: victim) }),
                              ("hard", { (lock: String) in try FileManager.default.linkItem(atPath: victim, toPath: lock) })] {
            let run = path("r-\(name)")
            try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
            try plant("\(run)/.lock")
            let result = try backprop(["train"] + model + ["--epochs", "1", "--run-dir", run])
            #expect(result.status == 1 && result.standardError.contains(".lock") && result.standardError.contains("link"),
                    "\(name): \(result.standardError)")
            #expect(try String(contentsOfFile: victim, encoding: .utf8) == text, "\(name) link: the victim changed")
            #expect(try FileManager.default.contentsOfDirectory(atPath: run) == [".lock"], "\(name): the run wrote files")
        }
    }

    @Test("no output flag may name a file train manages in a run directory")
    func managedFilesAreNoOutputs() throws {
        let result = try backprop(["train"] + model + ["--epochs", "1", "--run-dir", "r", "--validation-fraction", "0.2"])
        try #require(result.status == 0, "\(result.standardError)")
        let run = path("r")
        for name in ["last.h5", "best.h5", "checkpoint-00000004.h5", "metrics.csv"] {
            let target = "\(run)/\(name)"
            let before = try Data(contentsOf: URL(fileURLWithPath: target))
            let predict = try backprop(["predict", "--checkpoint", "\(run)/model.h5", "--input", CLITests.sample, "--output", target])
            #expect(predict.status != 0 && predict.standardError.contains("manages in a run directory"), "predict \(name): \(predict.standardError)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == before, "\(name) changed")
        }
        let train = try backprop(["train"] + model + ["--epochs", "1", "--run-dir", "r2", "--output", "r2/config.json"])
        #expect(train.status == 64 && train.standardError.contains("--output r2/config.json names a file that train manages"),
                "\(train.standardError)")
        let export = try backprop(["export", "--format", "npz", "\(run)/model.h5", "--output", "\(run)/.backprop-x"])
        #expect(export.status != 0, "\(export.standardError)")
    }

    @Test("resuming an older checkpoint where the run went on is refused, unless a new run directory branches from it")
    func anotherTimeline() throws {
        let result = try backprop(["train"] + model + ["--epochs", "2", "--checkpoint-every", "1", "--keep", "10", "--run-dir", "r"])
        try #require(result.status == 0, "\(result.standardError)")
        try expectRefusal(["train", "--resume", "r/checkpoint-00000003.h5"], mentions: ["step 3", "went on to step 8", "--run-dir"])
        let branch = try backprop(["train", "--resume", "r/checkpoint-00000003.h5", "--run-dir", "branch"])
        #expect(branch.status == 0, "\(branch.standardError)")
        let straight = try Checkpoint.load(from: path("r/model.h5")), branched = try Checkpoint.load(from: path("branch/model.h5"))
        #expect(straight.network.fingerprint == branched.network.fingerprint)
    }

    // MARK: - A resume keeps what the run chose

    @Test("a resumed run keeps its checkpoint policy (from config.json) unless a flag changes it, and config.json records the change")
    func policyKept() throws {
        let first = try backprop(["train"] + model + ["--epochs", "1", "--checkpoint-every", "1", "--keep", "10", "--run-dir", "r"])
        try #require(first.status == 0, "\(first.standardError)")
        let resumed = try backprop(["train", "--resume", "r", "--epochs", "2", "--override"])
        try #require(resumed.status == 0, "\(resumed.standardError)")
        let steps = RunDirectory(path("r")).checkpoints().map(\.step)
        #expect(steps == Array((1...8).reversed()), "\(steps)")
        let changed = try backprop(["train", "--resume", "r", "--epochs", "3", "--override", "--keep", "2"])
        try #require(changed.status == 0, "\(changed.standardError)")
        #expect(RunDirectory(path("r")).checkpoints().count == 2)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("r/config.json")))) as? [String: Any]
        #expect(config?["keep"] as? Int == 2 && config?["checkpoint-every"] as? Int == 1)
    }

    @Test("a cosine run made longer on resume stretches its schedule to the new end instead of training on at η_min")
    func cosineStretched() throws {
        let first = try backprop(["train"] + model + ["--epochs", "1", "--lr-schedule", "cosine", "--run-dir", "r"])
        try #require(first.status == 0, "\(first.standardError)")
        let before = try Checkpoint.load(from: path("r/model.h5"))
        let resumed = try backprop(["train", "--resume", "r", "--epochs", "3", "--override"])
        try #require(resumed.status == 0, "\(resumed.standardError)")
        let after = try Checkpoint.load(from: path("r/model.h5"))
        #expect(after.position.step == 12 && after.network.fingerprint != before.network.fingerprint)
        #expect(after.configuration.schedule.shape == .cosine(warmupSteps: 0, totalSteps: 12, minimum: 0))
        let rates = after.history.epochs.map(\.learningRate)
        #expect(rates.count == 3 && rates[1] > 0 && rates[2] == 0, "\(rates)")
    }

    @Test("DP-SGD on resume: its flags cannot change σ, and planning more steps warns of the ε it then spends")
    func privacyOnResume() throws {
        let dp = ["--dp-clip", "1", "--dp-epsilon", "3", "--seed", "11"]
        let first = try backprop(["train"] + model + dp + ["--epochs", "1", "--run-dir", "r"])
        try #require(first.status == 0, "\(first.standardError)")
        try expectRefusal(["train", "--resume", "r", "--epochs", "2", "--override"] + dp, mentions: ["--dp-epsilon", "has σ", "cannot change on resume"])
        let longer = try backprop(["train", "--resume", "r", "--epochs", "2", "--override"])
        #expect(longer.status == 0 && longer.standardError.contains("plans 8 steps where the run planned 4")
                && longer.standardError.contains("spends ε"), "\(longer.standardError)")
    }

    // MARK: - Every input is checked and named

    @Test("BACKPROP_MEMORY_LIMIT_MB: a value it cannot use is refused by name; a limit too small for the work says so", arguments: [
        ("abc", "BACKPROP_MEMORY_LIMIT_MB=abc is invalid"), ("-5", "BACKPROP_MEMORY_LIMIT_MB=-5 is invalid"),
        ("10", "BACKPROP_MEMORY_LIMIT_MB=10 is too small"), ("72", "BACKPROP_MEMORY_LIMIT_MB=72 may be too small"),
    ])
    func memoryLimit(_ value: String, _ message: String) throws {
        let result = try backprop(["train"] + model + ["--epochs", "1", "--run-dir", "r"], environment: ["BACKPROP_MEMORY_LIMIT_MB": value])
        #expect(result.status != 0 && !result.signalled && result.standardError.contains(message), "\(result.standardError)")
        #expect(!result.standardError.contains("damaged"))
    }

    @Test("every command runs under the memory cap: a malformed BACKPROP_MEMORY_LIMIT_MB is refused by name before anything is read or written, the readers of untrusted files among them",
          arguments: [["inspect", "datasets-sample.h5"], ["settings"], ["privacy", "--noise", "1", "--sample-rate", "0.01", "--steps", "10", "--delta", "1e-5"],
                      ["export", "--format", "onnx", "m.h5", "--output", "out.onnx"], ["import", "csv", "t.csv", "--output", "out.h5"],
                      ["import", "npy", "--x", "x.npy", "--y", "y.npy", "--output", "out.h5"], ["import", "idx", "--from", ".", "--output", "out.h5"],
                      ["evaluate", "--checkpoint", "m.h5"], ["predict", "--checkpoint", "m.h5", "--input", "x.h5", "--output", "out.csv"],
                      ["sweep", "--config", "s.yaml", "--run-dir", "out"], ["generate", "--samples", "10", "--output", "out.h5"]])
    func memoryCapEverywhere(_ arguments: [String]) throws {
        let result = try backprop(arguments, environment: ["BACKPROP_MEMORY_LIMIT_MB": "abc"])
        #expect(result.status == 64 && result.standardError.contains("BACKPROP_MEMORY_LIMIT_MB=abc is invalid"), "\(arguments): \(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: path("out.onnx")) && !FileManager.default.fileExists(atPath: path("out.h5"))
                && !FileManager.default.fileExists(atPath: path("out.csv")) && !FileManager.default.fileExists(atPath: path("out")))
    }

    @Test("a settings file value of the wrong type names the file and the key")
    func configValueType() throws {
        try #"{"epochs": "ten"}"#.write(toFile: path("bad.json"), atomically: true, encoding: .utf8)
        try expectRefusal(["train", "--config", "bad.json"] + model, mentions: ["bad.json", "epochs"])
    }

    // MARK: - Non-finite values never reach an output as text

    @Test("inputs so large that a gradient overflows stop the run by name; no checkpoint of non-finite weights is written")
    func overflowingInputs() throws {
        let script = """
        import h5py, numpy as np, sys
        f = h5py.File(sys.argv[1], "a")
        f["train/x"].attrs["scale"] = np.float32(1e36)
        f["test/x"].attrs["scale"] = np.float32(1e36)
        """
        try FileManager.default.copyItem(atPath: CLITests.sample, toPath: path("huge.h5"))
        let edit = try run("/usr/bin/python3", ["-c", script, path("huge.h5")], in: directory)
        try #require(edit.status == 0, "\(edit.standardError)")
        let result = try backprop(["train", "--data", "huge.h5", "--layers", "784,16,10", "--epochs", "2", "--run-dir", "r"])
        #expect(result.status == 1 && result.standardError.contains("diverged"), "\(result.standardOutput)\(result.standardError)")
        #expect(!result.standardOutput.contains("nan") && !result.standardOutput.contains("inf"), "\(result.standardOutput)")
        for (_, checkpoint) in RunDirectory(path("r")).checkpoints() {
            #expect(throws: Never.self) { try Checkpoint.load(from: checkpoint) }
        }
    }

    // MARK: - Long runs cost the same per epoch

    /// A run directory's metrics.csv, line by line.
    func metrics(_ run: String) throws -> [String] {
        try String(contentsOfFile: path("\(run)/metrics.csv"), encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test("metrics.csv on resume: the rows up to the checkpoint (from the run a branch leaves too); a cut or linked file is rebuilt from the checkpoint's log")
    func epochLogOnResume() throws {
        let result = try backprop(["train"] + model + ["--epochs", "3", "--checkpoint-every", "1", "--keep", "20", "--run-dir", "r"])
        try #require(result.status == 0, "\(result.standardError)")
        let original = try metrics("r")
        try #require(original.count == 4)
        // Epoch, step, the losses and scores, η: not the speed or the time.
        func trained(_ line: String) -> ArraySlice<Substring> { line.split(separator: ",", omittingEmptySubsequences: false).prefix(8) }

        // A branch from step 6, inside epoch 2: epoch 1's row comes from r's file; epochs 2 and 3 train again, bit for bit.
        let branch = try backprop(["train", "--resume", "r/checkpoint-00000006.h5", "--run-dir", "branch"])
        try #require(branch.status == 0, "\(branch.standardError)")
        let branched = try metrics("branch")
        #expect(branched.count == 4 && branched[1] == original[1], "\(branched)")
        #expect(branched.map(trained) == original.map(trained))

        // Cut inside epoch 2's row (a crash mid-append): the rows come back from the checkpoint's log, whole.
        try (original[0...1].joined(separator: "\n") + "\n" + original[2].prefix(9)).write(toFile: path("r/metrics.csv"), atomically: true, encoding: .utf8)
        let repaired = try backprop(["train", "--resume", "r", "--epochs", "4", "--override"])
        try #require(repaired.status == 0, "\(repaired.standardError)")
        #expect((repaired.standardOutput + repaired.standardError).contains("lacked the rows of 2 epochs (2–3)"), "\(repaired.standardOutput)")
        let after = try metrics("r")
        #expect(after.count == 5 && Array(after.prefix(4)) == original, "\(after)")

        // A metrics.csv planted as a link is neither read nor written through.
        try "mine\n".write(toFile: path("victim"), atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: path("r/metrics.csv"))
        try FileManager.default.createSymbolicLink(atPath: path("r/metrics.csv"), withDestinationPath: path("victim"))
        let linked = try backprop(["train", "--resume", "r", "--epochs", "5", "--override"])
        try #require(linked.status == 0, "\(linked.standardError)")
        #expect(try String(contentsOfFile: path("victim"), encoding: .utf8) == "mine\n")
        let rebuilt = try metrics("r")
        #expect(rebuilt.count == 6 && Array(rebuilt.prefix(5)) == after, "\(rebuilt)")
        let attributes = try FileManager.default.attributesOfItem(atPath: path("r/metrics.csv"))
        #expect(attributes[.type] as? FileAttributeType == .typeRegular)
    }

    @Test("metrics.csv writes a value that is not finite as nan, inf or -inf")
    func nonFiniteMetrics() {
        var record = EpochRecord(epoch: 0, step: 4, trainLoss: .nan, testLoss: 2, testScore: .infinity, learningRate: -.infinity,
                                 samplesPerSecond: 1, wallTime: 1)
        record.extras["epsilon"] = .infinity
        // The validation columns are empty: not measured (NaN in a split's column means that).
        #expect(RunDirectory.metricsRow(record, task: .classification, extras: ["epsilon"]) == "1,4,nan,,,2.0,inf,-inf,1.0,1.0,inf")
    }
}

/// Issue 54, class 10 (the other way): a dataset written with h5py as docs/file-formats.md lays it out.
struct H5pyDatasetTests {
    let directory = temporaryDirectory("h5py-dataset")
    let executable = backpropExecutable()

    /// Writes a 40-sample dataset with h5py, its string attributes as `strings` makes them.
    func write(_ name: String, strings: String) throws -> String {
        let script = """
        import sys, h5py, numpy as np
        S = \(strings)
        rng = np.random.default_rng(0)
        with h5py.File(sys.argv[1], "w") as f:
            f.attrs["format"] = S("backprop-dataset"); f.attrs["name"] = S("h5py"); f.attrs["source"] = S("a test")
            for split, n in (("train", 40), ("test", 20)):
                x = f.create_dataset(split + "/x", data=rng.integers(0, 256, (n, 12), dtype=np.uint8))
                x.attrs["scale"] = np.float32(1 / 255)
                f.create_dataset(split + "/y", data=(np.arange(n) % 3).astype(np.uint8))
        """
        let made = try run("/usr/bin/python3", ["-c", script, name], in: directory)
        try #require(made.status == 0, "\(made.standardError)")
        return name
    }

    @Test("fixed-length strings (np.bytes_) train; h5py's default variable-length strings are refused unread, by name, with the fix, in one line")
    func strings() throws {
        let fixed = try write("fixed.h5", strings: "np.bytes_")
        let trained = try run(executable, ["train", "--data", fixed, "--layers", "12,3", "--epochs", "1", "--run-dir", "r"], in: directory)
        #expect(trained.status == 0, "\(trained.standardError)")
        let variable = try write("variable.h5", strings: "str")
        let refused = try run(executable, ["train", "--data", variable, "--layers", "12,3", "--epochs", "1", "--run-dir", "refused"], in: directory)
        #expect(refused.status != 0 && refused.standardError.split(separator: "\n").count == 1
                && refused.standardError.contains("variable.h5") && refused.standardError.contains("variable-length string")
                && refused.standardError.contains("numpy.bytes_"), "\(refused.standardError)")
        // inspect lists the file, shows no such string, and calls it invalid for the same reason.
        let inspected = try run(executable, ["inspect", variable], in: directory)
        #expect(inspected.status != 0 && inspected.standardOutput.contains("invalid: variable.h5: attribute 'format' of / holds a variable-length string"),
                "\(inspected.standardOutput)")
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/refused"))
    }
}
