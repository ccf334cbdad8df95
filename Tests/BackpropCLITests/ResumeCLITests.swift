import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// Stopping and resuming `backprop train` as users do: signals, SIGKILL at
/// random moments, and every way a resume can be refused.
struct ResumeCLITests {
    let directory = temporaryDirectory("resume-cli")
    let executable = backpropExecutable()
    /// A small model on the committed sample: 16 steps of 64 per epoch.
    let model = ["--data", CLITests.sample, "--layers", "784,32,10", "--batch-size", "64", "--workers", "2"]

    func backprop(_ arguments: [String]) throws -> ProcessResult {
        try run(executable, arguments, in: directory)
    }

    /// Trains a complete run into `runDirectory` and returns its final model.
    @discardableResult
    func train(_ runDirectory: String, epochs: Int, _ extra: [String] = []) throws -> Checkpoint {
        let result = try backprop(["train"] + model + ["--epochs", "\(epochs)", "--run-dir", runDirectory] + extra)
        try #require(result.status == 0, "\(result.standardError)")
        return try Checkpoint.load(from: "\(directory)/\(runDirectory)/model.h5")
    }

    /// Asserts a clean refusal: non-zero exit (not a signal), one line on
    /// stderr containing every fragment, and no file created, changed or removed.
    func expectRefusal(_ arguments: [String], mentions fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = snapshot(directory)
        let result = try backprop(arguments)
        #expect(result.status != 0 && !result.signalled, sourceLocation: sourceLocation)
        #expect(result.standardError.split(separator: "\n").count == 1, "stderr: \(result.standardError)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(result.standardError.contains(fragment), "stderr: \(result.standardError)", sourceLocation: sourceLocation)
        }
        #expect(snapshot(directory) == before, "files changed", sourceLocation: sourceLocation)
    }

    func expectSameRun(_ a: Checkpoint, _ b: Checkpoint, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.network.parameters.map(\.bitPattern) == b.network.parameters.map(\.bitPattern), sourceLocation: sourceLocation)
        #expect(a.optimizerState == b.optimizerState && a.position == b.position, sourceLocation: sourceLocation)
        #expect(a.history.stepLossDigest == b.history.stepLossDigest, "every step's loss", sourceLocation: sourceLocation)
        #expect(a.history.stepLosses.map(\.bitPattern) == b.history.stepLosses.map(\.bitPattern), sourceLocation: sourceLocation)
    }

    /// Waits (up to 60 s) until `path` exists.
    func waitFor(_ path: String) throws {
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: path) {
            try #require(Date() < deadline, "\(path) never appeared")
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    @Test("a gradient-norm clip is part of the run: one epoch, then a resume to two, ends with the bits of two straight through; without the clip the bits differ")
    func clippedRunResumes() throws {
        let clip = ["--clip-norm", "0.2"]
        _ = try train("stopped", epochs: 1, clip)
        let resumed = try backprop(["train", "--resume", "stopped", "--epochs", "2", "--override"])
        try #require(resumed.status == 0, "\(resumed.standardError)")
        let finished = try Checkpoint.load(from: "\(directory)/stopped/model.h5")
        expectSameRun(finished, try train("straight", epochs: 2, clip))
        #expect(finished.configuration.clipNorm == 0.2)
        let unclipped = try train("unclipped", epochs: 2)
        #expect(unclipped.network.parameters != finished.network.parameters, "the clip acted")
    }

    @Test("SIGINT, SIGTERM and SIGHUP: checkpoint, exit 130/143/129, and resume finishes the same run", arguments: [SIGINT, SIGTERM, SIGHUP])
    func signalStopsCleanly(_ signal: Int32) throws {
        let log = "\(directory)/log.txt"
        let process = try start(executable, ["train"] + model + ["--epochs", "100000", "--run-dir", "run"],
                                in: directory, outputFile: log)
        try waitFor("\(directory)/run/last.h5")
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 128 + signal)
        let output = try String(contentsOfFile: log, encoding: .utf8)
        #expect(output.contains("resume with: backprop train --resume run"), "\(output)")

        let stopped = try Checkpoint.load(from: "\(directory)/run/last.h5")
        #expect(stopped.position.step > 0)
        // Finish the epoch it stopped in, then compare with a run straight through.
        let epochs = stopped.position.epoch + 1
        let resumed = try backprop(["train", "--resume", "run", "--epochs", "\(epochs)", "--override"])
        #expect(resumed.status == 0, "\(resumed.standardError)")
        #expect(resumed.standardOutput.contains("resuming run/"))
        let finished = try Checkpoint.load(from: "\(directory)/run/model.h5")
        expectSameRun(finished, try train("straight", epochs: epochs))
    }

    @Test("a run directory has one writer: a second train or a resume of a live run is refused with the holder's pid")
    func oneWriterPerRunDirectory() throws {
        let process = try start(executable, ["train"] + model + ["--epochs", "100000", "--run-dir", "live"], in: directory)
        try waitFor("\(directory)/live/last.h5")
        for arguments in [["train"] + model + ["--run-dir", "live", "--epochs", "1"], ["train", "--resume", "live"]] {
            let refused = try backprop(arguments)
            #expect(refused.status == 1 && !refused.signalled, "\(arguments): \(refused.standardError)")
            #expect(refused.standardError.split(separator: "\n").count == 1)
            #expect(refused.standardError.contains("live: is in use by another backprop train (pid \(process.processIdentifier))"),
                    "\(refused.standardError)")
        }
        #expect(process.isRunning, "the refused commands must not disturb the live run")
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        // The lock went with the process: the run resumes.
        let resumed = try backprop(["train", "--resume", "live", "--steps", "\(try Checkpoint.load(from: "\(directory)/live/last.h5").position.step + 1)", "--override"])
        #expect(resumed.status == 0, "\(resumed.standardError)")
    }

    @Test("a run directory that holds another run is refused without --resume; default run directories never collide")
    func runDirectoriesAreNotShared() throws {
        try train("done", epochs: 1)
        try expectRefusal(["train"] + model + ["--run-dir", "done", "--epochs", "1"],
                          mentions: ["done: already holds a run", "--resume done"])
        // Nor does a resume of another run write into it.
        try train("other", epochs: 1)
        try expectRefusal(["train", "--resume", "other", "--run-dir", "done", "--epochs", "2", "--override"],
                          mentions: ["done: already holds a run"])
        let moved = try backprop(["train", "--resume", "other", "--run-dir", "fresh", "--epochs", "2", "--override"])
        #expect(moved.status == 0, "\(moved.standardError)")
        // Two runs started together without --run-dir get a directory each.
        let runs = try (0..<2).map { _ in
            try start(executable, ["train"] + model + ["--epochs", "1", "--steps", "2"], in: directory)
        }
        for run in runs { run.waitUntilExit() }
        #expect(runs.allSatisfy { $0.terminationStatus == 0 })
        let made = try FileManager.default.contentsOfDirectory(atPath: "\(directory)/runs")
        #expect(made.count == 2, "\(made)")
        for name in made { #expect(FileManager.default.fileExists(atPath: "\(directory)/runs/\(name)/model.h5")) }
    }

    @Test("standard output closed by its reader (train | head -1): a checkpoint, exit 141, and the run resumes")
    func closedStandardOutput() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["train"] + model + ["--epochs", "100000", "--run-dir", "piped", "--log-every", "1"]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Read the first line, then go away, as `head -1` does.
        var first = Data()
        while !first.contains(UInt8(ascii: "\n")), let byte = try pipe.fileHandleForReading.read(upToCount: 1), !byte.isEmpty {
            first.append(byte)
        }
        try pipe.fileHandleForReading.close()
        process.waitUntilExit()
        #expect(String(decoding: first, as: UTF8.self).hasPrefix("training 784-32-10"))
        #expect(process.terminationReason == .exit && process.terminationStatus == 128 + SIGPIPE)
        let saved = try Checkpoint.load(from: "\(directory)/piped/last.h5")
        #expect(saved.position.step >= 1)
        let resumed = try backprop(["train", "--resume", "piped", "--steps", "\(saved.position.step + 1)", "--override"])
        #expect(resumed.status == 0, "\(resumed.standardError)")
    }

    @Test("a second SIGINT exits at once with 130, and every checkpoint left validates")
    func secondSignal() throws {
        let process = try start(executable, ["train"] + model + ["--epochs", "100000", "--run-dir", "run", "--checkpoint-every", "1"],
                                in: directory)
        try waitFor("\(directory)/run/last.h5")
        kill(process.processIdentifier, SIGINT)
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 130)
        let run = RunDirectory("\(directory)/run")
        for name in try FileManager.default.contentsOfDirectory(atPath: run.path) where name.hasSuffix(".h5") {
            #expect(throws: Never.self, "\(name)") { try Checkpoint.load(from: "\(run.path)/\(name)") }
        }
        let resumed = try backprop(["train", "--resume", "run", "--epochs", "1", "--override"])
        #expect(resumed.status == 0, "\(resumed.standardError)")
    }

    @Test("SIGKILL at random moments: every checkpoint left validates, and resume ends bit-identical")
    func killTest() throws {
        let kills = ProcessInfo.processInfo.environment["BACKPROP_KILL_TESTS"].flatMap(Int.init) ?? 20
        let epochs = 4 * kills
        let policy = ["--checkpoint-every", "1", "--keep", "3"]
        let reference = try train("reference", epochs: epochs)

        var generator = SystemRandomNumberGenerator()
        var killed = 0
        let runDirectory = RunDirectory("\(directory)/killed")
        while killed < kills {
            let resumable = (try? runDirectory.newestValidCheckpoint { _ in }) != nil
            let workers = ["--workers", killed % 2 == 0 ? "1" : "2"]
            let arguments = resumable ? ["train", "--resume", "killed"] + policy + workers
                                      : ["train"] + model + ["--epochs", "\(epochs)", "--run-dir", "killed"] + policy
            let process = try start(executable, arguments, in: directory)
            Thread.sleep(forTimeInterval: Double.random(in: 0.02...0.5, using: &generator))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try #require(process.terminationReason == .uncaughtSignal,
                         "the run ended by itself after \(killed) kills (status \(process.terminationStatus)); make it longer")
            killed += 1
            // Whatever the moment, every checkpoint file present is whole.
            for name in (try? FileManager.default.contentsOfDirectory(atPath: runDirectory.path)) ?? [] where name.hasSuffix(".h5") {
                #expect(throws: Never.self, "after kill \(killed): \(name)") { try Checkpoint.load(from: "\(runDirectory.path)/\(name)") }
            }
        }
        let finished = try backprop(["train", "--resume", "killed"])
        #expect(finished.status == 0, "\(finished.standardError)")
        expectSameRun(try Checkpoint.load(from: "\(runDirectory.path)/model.h5"), reference)
    }

    @Test("resume refuses flags that would change the run, naming the flag", arguments: [
        (["--layers", "784,16,10"], "--layers"),
        (["--batch-size", "32"], "--batch-size"),
        (["--optimizer", "adam"], "--optimizer"),
        (["--seed", "7"], "--seed"),
        (["--clip-norm", "1"], "--clip-norm"),
        (["--epochs", "5"], "--override"),
        (["--learning-rate", "0.1"], "--override"),
        (["--lr-schedule", "cosine"], "--override"),
    ])
    func refusesChanges(_ flags: [String], _ fragment: String) throws {
        try train("run", epochs: 1)
        try expectRefusal(["train", "--resume", "run"] + flags, mentions: [fragment, "run/"])
    }

    @Test("the same run on any kernel path and worker count ends with the same parameters and fingerprint; resume across them too")
    func fingerprintAcrossPathsAndWorkers() throws {
        var fingerprints: Set<String> = []
        for (index, kernel) in Kernel.allCases.filter(\.isAvailable).enumerated() {
            for workers in ["1", "3"] {
                let result = try backprop(["train"] + model + ["--epochs", "1", "--steps", "5", "--run-dir", "run-\(index)-\(workers)",
                                                               "--kernel", kernel.rawValue, "--workers", workers, "--verbose"])
                try #require(result.status == 0, "\(result.standardError)")
                #expect(result.standardOutput.contains("kernel: \(kernel.rawValue) ("), "\(result.standardOutput)")
                let printed = try #require(result.standardOutput.firstMatch(of: /parameters ([0-9a-f]{16});/).map { String($0.1) })
                let saved = try Checkpoint.load(from: "\(directory)/run-\(index)-\(workers)/model.h5")
                #expect(printed == saved.network.fingerprint)
                fingerprints.insert(printed)
            }
        }
        #expect(fingerprints.count == 1, "\(fingerprints)")
        // Stopped at step 2 on one path and worker count, resumed on another: the same bits.
        let paths = Kernel.allCases.filter(\.isAvailable)
        let first = try backprop(["train"] + model + ["--epochs", "1", "--steps", "2", "--run-dir", "mixed",
                                                      "--kernel", paths.last!.rawValue, "--workers", "1"])
        try #require(first.status == 0, "\(first.standardError)")
        let second = try backprop(["train", "--resume", "mixed", "--steps", "5", "--override",
                                   "--kernel", paths.first!.rawValue, "--workers", "2"])
        #expect(second.status == 0, "\(second.standardError)")
        #expect(try Checkpoint.load(from: "\(directory)/mixed/model.h5").network.fingerprint == fingerprints.first)
    }

    @Test("a checkpoint from before the own kernel (no parameter fingerprint) resumes")
    func resumesOldCheckpoint() throws {
        let first = try backprop(["train"] + model + ["--epochs", "1", "--steps", "2", "--run-dir", "old"])
        try #require(first.status == 0, "\(first.standardError)")
        for file in try FileManager.default.contentsOfDirectory(atPath: "\(directory)/old") where file.hasSuffix(".h5") {
            let edit = try run("/usr/bin/python3", ["-c", "import h5py; f = h5py.File('\(directory)/old/\(file)', 'a'); a = f['model'].attrs; "
                                                    + "a.__delitem__('parameter_fingerprint') if 'parameter_fingerprint' in a else None; "
                                                    + "f.attrs['program_version'] = '0.3.0'"])
            try #require(edit.status == 0, "h5py is needed: \(edit.standardError)")
        }
        let resumed = try backprop(["train", "--resume", "old", "--steps", "4", "--override"])
        #expect(resumed.status == 0, "\(resumed.standardError)")
        #expect(try Checkpoint.load(from: "\(directory)/old/model.h5").position.step == 4)
    }

    @Test("resume allows the same values, and --override for epochs")
    func allowsSafeChanges() throws {
        try train("run", epochs: 1)
        let same = try backprop(["train", "--resume", "run"] + model + ["--epochs", "1", "--workers", "1"])
        #expect(same.status == 0 && same.standardOutput.contains("already finished"), "\(same.standardError)")
        let longer = try backprop(["train", "--resume", "run", "--epochs", "2", "--override"])
        #expect(longer.status == 0, "\(longer.standardError)")
        #expect(try Checkpoint.load(from: "\(directory)/run/model.h5").position.epoch == 2)
    }

    @Test("bad checkpoints and directories are refused with the file named")
    func badInputs() throws {
        try train("run", epochs: 1)
        let good = "\(directory)/run/last.h5"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: "\(directory)/truncated.h5"))
        try expectRefusal(["train", "--resume", "truncated.h5"], mentions: ["truncated.h5"])

        try expectRefusal(["train", "--resume", "nowhere"], mentions: ["nowhere", "no such"])

        try FileManager.default.copyItem(atPath: good, toPath: "\(directory)/newer.h5")
        let python = try run("/usr/bin/python3", ["-c", "import h5py, numpy as np; f = h5py.File('\(directory)/newer.h5', 'a'); f.attrs['format_version'] = np.int64(99)"])
        try #require(python.status == 0, "h5py is needed: \(python.standardError)")
        try expectRefusal(["train", "--resume", "newer.h5"], mentions: ["newer.h5", "version 99"])

        // The same shape of data, other contents.
        let (train, test) = try DatasetFile.load(CLITests.sample)
        try DatasetFile.write(train: train.prefix(500), test: test, attributes: [:], to: "\(directory)/other.h5")
        try expectRefusal(["train", "--resume", "run", "--data", "other.h5"], mentions: ["--data", "other.h5", "fingerprint"])

        // A run directory under a regular file can never be created.
        try expectRefusal(["train"] + model + ["--run-dir", "other.h5/run"], mentions: ["other.h5/run"])
    }

    @Test("a truncated newest checkpoint in a run directory is skipped with a warning")
    func skipsBrokenNewest() throws {
        try train("run", epochs: 2)
        let run = RunDirectory("\(directory)/run")
        let newest = try #require(run.checkpoints().first)
        unlink(run.lastPath)
        unlink(run.bestPath)
        let handle = try #require(FileHandle(forUpdatingAtPath: newest.path))
        try handle.truncate(atOffset: 4096)
        try handle.close()
        let result = try backprop(["train", "--resume", "run", "--epochs", "2", "--override"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardError.contains("warning: skipping run/checkpoint-00000032.h5"), "\(result.standardError)")
        #expect(result.standardOutput.contains("resuming run/checkpoint-00000016.h5"), "\(result.standardOutput)")
    }

    @Test("a full disk (ulimit -f) fails the save cleanly and leaves every checkpoint as it was")
    func diskFull() throws {
        try train("run", epochs: 1)
        let before = snapshot(directory)
        let command = "ulimit -f 40; exec '\(executable)' train --resume run --epochs 2 --override"
        let result = try run("/bin/sh", ["-c", command], in: directory)
        #expect(result.status == 1 && !result.signalled, "\(result.standardError)")
        #expect(result.standardError.contains("File too large") && result.standardError.contains("run/checkpoint-"),
                "\(result.standardError)")
        // config.json may be rewritten (the run's epochs changed); no checkpoint is.
        func checkpoints(_ files: [String: Data]) -> [String: Data] { files.filter { $0.key.hasSuffix(".h5") } }
        #expect(checkpoints(snapshot(directory)) == checkpoints(before))
    }

    @Test("the run directory holds config.json, metrics.csv and curves.svg, which a resume continues")
    func configurationAndMetrics() throws {
        try train("run", epochs: 2, ["--validation-fraction", "0.2"])
        let resumed = try backprop(["train", "--resume", "run", "--epochs", "3", "--override"])
        #expect(resumed.status == 0, "\(resumed.standardError)")
        let csv = try String(contentsOfFile: "\(directory)/run/metrics.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.first == "epoch,step,train_loss,validation_loss,validation_accuracy,test_loss,test_accuracy,learning_rate,samples_per_second,wall_time")
        // 800 samples train, in batches of 64: 13 steps an epoch.
        #expect(csv.dropFirst().map { $0.split(separator: ",").prefix(2).joined(separator: ",") } == ["1,13", "2,26", "3,39"])
        // curves.svg is well-formed XML with one point per epoch in each series.
        let check = "import sys, xml.etree.ElementTree as ET; root = ET.parse(sys.argv[1]).getroot(); "
            + "print(','.join(str(len(g.findall('{http://www.w3.org/2000/svg}circle'))) for g in root.iter('{http://www.w3.org/2000/svg}g')))"
        let points = try run("/usr/bin/python3", ["-c", check, "\(directory)/run/curves.svg"])
        #expect(points.status == 0 && points.standardOutput == "3,3,3\n", "\(points.standardOutput) \(points.standardError)")
        let configuration = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(directory)/run/config.json")))
        let settings = try #require(configuration as? [String: Any])
        #expect(settings["epochs"] as? Int == 3 && settings["layers"] as? [Int] == [784, 32, 10])
        #expect((settings["recorded"] as? [String: String])?["program-version"] == Checkpoint.programVersion)
    }

    @Test("a run's config.json is a --config that runs it again: the same parameters, bit for bit")
    func configReproducesRun() throws {
        let first = try backprop(["train", "--data", CLITests.sample, "--layers", "784,24,10", "--epochs", "2", "--batch-size", "100",
                                  "--optimizer", "adagrad", "--learning-rate", "0.05", "--lr-decay", "0.01", "--initial-accumulator", "0.1",
                                  "--lr-schedule", "step", "--lr-step-size", "7", "--lr-gamma", "0.5", "--shard-size", "32",
                                  "--seed", "9", "--no-shuffle", "--weight-decay", "0.001", "--output-activation", "softmax",
                                  "--checkpoint-every", "4", "--keep", "2", "--clip-norm", "0.3", "--run-dir", "first"])
        try #require(first.status == 0, "\(first.standardError)")
        let again = try backprop(["train", "--config", "first/config.json", "--run-dir", "again"])
        try #require(again.status == 0, "\(again.standardError)")
        let (a, b) = (try Checkpoint.load(from: "\(directory)/first/model.h5"), try Checkpoint.load(from: "\(directory)/again/model.h5"))
        #expect(a.network.parameters.map(\.bitPattern) == b.network.parameters.map(\.bitPattern))
        #expect(a.configuration == b.configuration && a.optimizerState == b.optimizerState)
        // A DP-SGD run too: its σ (found for --dp-epsilon) and sampling come back as they were.
        let dp = try backprop(["train", "--data", CLITests.sample, "--layers", "784,16,10", "--epochs", "1", "--batch-size", "50",
                               "--optimizer", "rmsprop", "--centered", "--momentum", "0.2", "--dp-clip", "1", "--dp-epsilon", "8",
                               "--seed", "3", "--run-dir", "dp"])
        try #require(dp.status == 0, "\(dp.standardError)")
        let dpAgain = try backprop(["train", "--config", "dp/config.json", "--run-dir", "dp-again"])
        try #require(dpAgain.status == 0, "\(dpAgain.standardError)")
        let (c, d) = (try Checkpoint.load(from: "\(directory)/dp/model.h5"), try Checkpoint.load(from: "\(directory)/dp-again/model.h5"))
        #expect(c.network.parameters.map(\.bitPattern) == d.network.parameters.map(\.bitPattern) && c.configuration == d.configuration)
    }

    @Test("a cosine schedule spans the run's steps, with the batch size given on the command line")
    func cosineSchedule() throws {
        let checkpoint = try train("run", epochs: 2, ["--batch-size", "100", "--lr-schedule", "cosine", "--warmup-steps", "3",
                                                      "--min-lr", "0.001"])
        // 1,000 samples in batches of 100: 10 steps per epoch, 20 in all.
        #expect(checkpoint.configuration.schedule.shape == .cosine(warmupSteps: 3, totalSteps: 20, minimum: 0.001))
        let csv = try String(contentsOfFile: "\(directory)/run/metrics.csv", encoding: .utf8).split(separator: "\n")
        let rates = csv.dropFirst().map { Double($0.split(separator: ",", omittingEmptySubsequences: false)[7])! }
        #expect(rates.count == 2 && isClose(rates[1], 0.001, .textRoundTrip), "η after the last step is η_min: \(rates)")
    }

    @Test("--checkpoint-interval saves by wall time; --no-checkpoint-every-epoch turns the epoch saves off")
    func intervalCheckpoints() throws {
        // 125 steps per epoch; with a 20 ms interval some saves fall inside epochs.
        let result = try backprop(["train", "--data", CLITests.sample, "--layers", "784,16,10", "--batch-size", "8",
                                   "--epochs", "2", "--run-dir", "run", "--no-checkpoint-every-epoch",
                                   "--checkpoint-interval", "0.02s", "--keep", "1000"])
        #expect(result.status == 0, "\(result.standardError)")
        let steps = RunDirectory("\(directory)/run").checkpoints().map(\.step)
        #expect(steps.contains { $0 % 125 != 0 }, "\(steps)")
        #expect(steps.first == 250, "the final state is always saved: \(steps)")
        let none = try backprop(["train", "--data", CLITests.sample, "--layers", "784,16,10", "--epochs", "2",
                                 "--run-dir", "run2", "--no-checkpoint-every-epoch"])
        #expect(none.status == 0)
        #expect(RunDirectory("\(directory)/run2").checkpoints().map(\.step) == [8], "only the final state")
    }

    @Test("divergence names the step and the last checkpoint")
    func divergence() throws {
        let before = try backprop(["train"] + model + ["--epochs", "5", "--learning-rate", "1e30", "--run-dir", "run",
                                                       "--checkpoint-every", "1"])
        #expect(before.status == 1 && !before.signalled)
        #expect(before.standardError.contains("diverged at step") && before.standardError.contains("run/checkpoint-"),
                "\(before.standardError)")
    }
}
