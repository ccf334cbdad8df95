import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// Issue 54, classes 4 and 8: a domain is checked on the value training
/// uses (float32), and a flag that cannot act is refused.
extension HardeningTests {
    @Test("a real setting is checked in float32, as the network and the optimizer use it: a value that rounds out of its domain is refused by name, with what it rounds to",
          arguments: [
            (["--ema", "0.99999999"], "1.0"), (["--momentum", "0.99999999"], "1.0"), (["--dropout", "0.99999999"], "1.0"),
            (["--input-dropout", "0.99999999"], "1.0"), (["--label-smoothing", "0.99999999"], "1.0"),
            (["--learning-rate", "1e39"], "inf"), (["--clip-norm", "1e-50"], "0.0"), (["--weight-decay", "1e39"], "inf"),
            (["--optimizer", "rmsprop", "--rmsprop-alpha", "0.99999999"], "1.0"),
          ])
    func float32Domains(_ flags: [String], _ image: String) throws {
        let flag = flags[flags.count - 2]
        try expectRefusal(["train"] + model + flags + ["--epochs", "1", "--run-dir", "run"],
                          mentions: [flag + ":", "in float32", "it is \(image)"])
    }

    @Test("the same refusal from a --config file and from Core's validate(), and the values just inside float32's domain train")
    func float32DomainsElsewhere() throws {
        try "ema: 0.99999999\n".write(toFile: path("ema.yaml"), atomically: true, encoding: .utf8)
        try expectRefusal(["train"] + model + ["--config", "ema.yaml", "--epochs", "1", "--run-dir", "run"], mentions: ["--ema", "in float32"])
        var configuration = TrainingConfiguration()
        configuration.ema = 0.99999999
        #expect(throws: TrainingError.outOfDomain("ema", value: "0.99999999", domain: .openUnit)) { try configuration.validate() }
        #expect(TrainingError.outOfDomain("ema", value: "0.99999999", domain: .openUnit).description.contains("it is 1.0"))
        // The largest float32 below 1, and the smallest above 0, are inside.
        let below = Double(Float(1).nextDown), above = Double(Float.leastNonzeroMagnitude)
        #expect(SettingDomain.openUnit.contains(below) && SettingDomain.positive.contains(above) && !SettingDomain.positive.contains(above / 4))
        let trained = try backprop(["train"] + model + ["--ema", "\(below)", "--epochs", "1", "--run-dir", "inside", "--quiet"])
        #expect(trained.status == 0, "\(trained.standardError)")
    }

    @Test("--swa-start after the run's last epoch (by --epochs or by --steps) cannot act and is refused by name; at the last epoch it averages")
    func swaStartThatCannotAct() throws {
        try expectRefusal(["train"] + model + ["--swa-start", "3", "--epochs", "2", "--run-dir", "run"],
                          mentions: ["--swa-start 3", "2 epochs", "never begin"])
        // 4 batches an epoch: 6 steps end 1 epoch.
        try expectRefusal(["train"] + model + ["--swa-start", "2", "--steps", "6", "--run-dir", "run"],
                          mentions: ["--swa-start 2", "1 epoch in"])
        let last = try backprop(["train"] + model + ["--swa-start", "2", "--epochs", "2", "--run-dir", "last", "--quiet"])
        try #require(last.status == 0, "\(last.standardError)")
        #expect(try Checkpoint.load(from: path("last/model.h5")).average?.count == 1)
    }
}

/// Issue 54, class 6: a file that declares more values than it stores is refused before they are allocated.
extension HardeningTests {
    @Test("a teacher or a dataset of a few KB that declares gigabytes of unwritten values is refused by name before any is allocated",
          arguments: ["teacher", "inspect-teacher", "dataset", "evaluate"])
    func declaredBeyondStored(_ door: String) throws {
        let script = """
            import h5py, numpy as np
            with h5py.File('teacher.h5', 'w') as f:
                for k, v in [('format', 'backprop-predictions'), ('split', 'train'), ('data_fingerprint', 'x'), ('trained_on', 'y'), ('members', '["m"]')]:
                    f.attrs[k] = np.bytes_(v)
                f.create_dataset('predictions/outputs', shape=(200000000, 10), dtype='<f4', chunks=(1000, 10))
            with h5py.File('data.h5', 'w') as f:
                f.create_dataset('train/x', shape=(2000000, 784), dtype='u1', chunks=(1000, 784)).attrs['scale'] = np.float32(1 / 255)
                f.create_dataset('train/y', shape=(2000000,), dtype='u1', chunks=(1000,))
                f.create_dataset('test/x', shape=(2000000, 784), dtype='u1', chunks=(1000, 784)).attrs['scale'] = np.float32(1 / 255)
                f.create_dataset('test/y', shape=(2000000,), dtype='u1', chunks=(1000,))
            """
        let made = try run("/usr/bin/python3", ["-c", script], in: directory)
        try #require(made.status == 0, "h5py is needed: \(made.standardError)")
        #expect((try FileManager.default.attributesOfItem(atPath: path("teacher.h5"))[.size] as? Int ?? .max) < 100_000)
        switch door {
        case "teacher":
            try expectRefusal(["train"] + model + ["--teacher", "teacher.h5", "--distill-alpha", "0.5", "--run-dir", "run"],
                              mentions: ["teacher.h5", "/predictions/outputs", "declares 8000000000 bytes", "stores"])
        case "inspect-teacher":
            let inspected = try backprop(["inspect", "teacher.h5"])
            #expect(inspected.status != 0 && inspected.standardOutput.contains("declares 8000000000 bytes"), "\(inspected.standardOutput)")
        case "dataset":
            try expectRefusal(["train", "--data", "data.h5", "--layers", "784,16,10", "--run-dir", "run", "--data-memory", "16G"],
                              mentions: ["data.h5", "/train/x", "declares", "stores"])
        default:
            let trained = try backprop(["train"] + model + ["--epochs", "0", "--run-dir", "run", "--quiet"])
            try #require(trained.status == 0, "\(trained.standardError)")
            try expectRefusal(["evaluate", "--checkpoint", "run/model.h5", "--data", "data.h5", "--data-memory", "16G"],
                              mentions: ["data.h5", "/test/x", "declares", "stores"])
        }
    }
}

/// Issue 54, class 7: a run reads nothing of a split it will not report.
extension HardeningTests {
    @Test("--report-test none reads nothing of /test: a file whose /test is broken or missing trains, and the same file is refused by name when the test split is reported")
    func reportTestNoneReadsNoTest() throws {
        let script = """
            import h5py, shutil
            shutil.copy('\(CLITests.sample)', 'no-test.h5')
            with h5py.File('no-test.h5', 'a') as f:
                del f['test']
            shutil.copy('\(CLITests.sample)', 'bad-test.h5')
            with h5py.File('bad-test.h5', 'a') as f:
                del f['test/y']
                f['test/y'] = [200] * f['test/x'].shape[0]
            """
        let made = try run("/usr/bin/python3", ["-c", script], in: directory)
        try #require(made.status == 0, "h5py is needed: \(made.standardError)")
        for file in ["no-test.h5", "bad-test.h5"] {
            let model = ["--data", file, "--layers", "784,16,10", "--epochs", "1", "--validation-fraction", "0.2"]
            let none = try backprop(["train"] + model + ["--report-test", "none", "--run-dir", "none-\(file)", "--quiet"])
            #expect(none.status == 0, "\(file): \(none.standardError)")
            try expectRefusal(["train"] + model + ["--run-dir", "end-\(file)"], mentions: [file, "/test"])
        }
    }
}

/// Issue 54, class 5: the averaging state is validated with the rest of a checkpoint.
extension HardeningTests {
    @Test("an average's count that its run's position does not give (EMA: one a step; SWA: one an epoch's end from its start) is refused by inspect, evaluate and train --resume, by name",
          arguments: [("--ema", "0.9", 7), ("--swa-start", "2", 1)])
    func averageCount(_ flag: String, _ value: String, _ wrong: Int) throws {
        let trained = try backprop(["train"] + model + ["--epochs", "3", flag, value, "--run-dir", "run", "--quiet"])
        try #require(trained.status == 0, "\(trained.standardError)")
        #expect(try Checkpoint.load(from: path("run/last.h5")).average?.count == (flag == "--ema" ? 12 : 2))
        let edit = try run("/usr/bin/python3", ["-c", "import h5py, numpy as np; f = h5py.File('run/last.h5', 'a'); "
                                                + "f['/training'].attrs['average_count'] = np.int64(\(wrong)); f.close()"], in: directory)
        try #require(edit.status == 0, "h5py is needed: \(edit.standardError)")
        try expectRefusedByEveryReader("run/last.h5", object: "average_count", reason: "has averaged")
    }

    /// `checkpoint` refused by each command that reads it whole, naming `object` and `reason`:
    /// inspect calls it invalid, evaluate and train --resume refuse it, and the resume writes nothing.
    func expectRefusedByEveryReader(_ checkpoint: String, object: String, reason: String,
                                    sourceLocation: SourceLocation = #_sourceLocation) throws {
        let inspected = try backprop(["inspect", checkpoint])
        #expect(inspected.status != 0 && inspected.standardOutput.contains(object), "\(inspected.standardOutput)", sourceLocation: sourceLocation)
        for command in [["evaluate", "--checkpoint", checkpoint, "--data", CLITests.sample],
                        ["train", "--resume", checkpoint, "--epochs", "4", "--override", "--run-dir", "branch"]] {
            let result = try backprop(command)
            #expect(result.status != 0 && result.standardError.contains(object) && result.standardError.contains(reason),
                    "\(result.standardError)", sourceLocation: sourceLocation)
        }
        #expect(!FileManager.default.fileExists(atPath: path("branch")), sourceLocation: sourceLocation)
    }
}

/// Issue 54, class 5: the averaged run's trained parameters are fingerprinted like /model's.
extension HardeningTests {
    @Test("an altered bit of /training/parameters (the parameters the optimizer updates, beside their average) is refused by inspect, evaluate and train --resume, by name",
          arguments: ["--ema", "--swa-start"])
    func trainedParameters(_ flag: String) throws {
        let trained = try backprop(["train"] + model + ["--epochs", "3", flag, flag == "--ema" ? "0.9" : "2", "--run-dir", "run", "--quiet"])
        try #require(trained.status == 0, "\(trained.standardError)")
        try #require(try Checkpoint.load(from: path("run/last.h5")).trainedParameters != nil)
        let edit = try run("/usr/bin/python3", ["-c", "import h5py, numpy as np; f = h5py.File('run/last.h5', 'a'); "
                                                + "w = f['/training/parameters/layers/0/weight']; w[0, 0] = np.nextafter(w[0, 0], np.float32(1)); f.close()"],
                           in: directory)
        try #require(edit.status == 0, "h5py is needed: \(edit.standardError)")
        try expectRefusedByEveryReader("run/last.h5", object: "/training/parameters", reason: "altered")
    }
}
