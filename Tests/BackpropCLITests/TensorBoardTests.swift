import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// TensorBoard event files: written by default, read by TensorBoard's own
/// reader, one curve per tag across a resume, none with --no-tensorboard.
struct TensorBoardTests {
    let directory = temporaryDirectory("tensorboard")
    let executable = backpropExecutable()
    /// The test split read each epoch, so that its columns are logged too.
    let model = ["--data", CLITests.sample, "--layers", "784,16,10", "--batch-size", "100", "--workers", "2", "--report-test", "every-epoch"]

    func backprop(_ arguments: [String]) throws -> ProcessResult { try run(executable, arguments, in: directory) }

    /// Per tag, the steps and values TensorBoard reads from `run`'s event files.
    func read(_ run: String) throws -> (files: Int, tags: [String: (steps: [Int], values: [Double])]) {
        try #require(FileManager.default.isExecutableFile(atPath: CLITests.onnxPython),
                     "no Python with tensorboard at \(CLITests.onnxPython): run .ci/run's setup (.venv with onnxruntime and tensorboard)")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("check_tensorboard.py").path
        let result = try BackpropTestSupport.run(CLITests.onnxPython, [script, "\(directory)/\(run)/tensorboard"], in: directory)
        try #require(result.status == 0, "\(result.standardOutput) \(result.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let tags = try #require(object["tags"] as? [String: [String: [Any]]])
        return (object["files"] as? Int ?? 0, tags.mapValues { ($0["steps"]!.compactMap { $0 as? Int }, $0["values"]!.compactMap { ($0 as? NSNumber)?.doubleValue }) })
    }

    @Test("every epoch's metrics and every --log-every step loss reach TensorBoard; a resumed run continues each curve without a step twice")
    func eventsAcrossAResume() throws {
        // 10 steps an epoch; a stop mid-run is simulated by --steps, which leaves steps 11-14 logged past the last epoch's checkpoint.
        let first = try backprop(["train"] + model + ["--epochs", "3", "--steps", "14", "--log-every", "2", "--checkpoint-every-epoch",
                                                       "--run-dir", "r"])
        try #require(first.status == 0, "\(first.standardError)")
        let before = try read("r")
        #expect(before.tags["epoch/train_loss"]?.steps == [10], "\(before.tags.keys.sorted())")
        #expect(before.tags["step/loss"]?.steps == [2, 4, 6, 8, 10, 12, 14])
        for tag in ["epoch/test_loss", "epoch/test_accuracy", "epoch/learning_rate", "epoch/samples_per_second", "step/learning_rate"] {
            #expect(before.tags[tag] != nil, "missing \(tag)")
        }
        // As if killed after step 14 was logged but before its checkpoint: the resume starts at step 10,
        // and steps 12 and 14 run and are logged again.
        try FileManager.default.removeItem(atPath: "\(directory)/r/checkpoint-00000014.h5")
        let longer = try backprop(["train", "--resume", "r", "--epochs", "3", "--steps", "30", "--override", "--log-every", "2"])
        try #require(longer.status == 0, "\(longer.standardError)")
        let after = try read("r")
        #expect(after.files == 2)
        #expect(after.tags["epoch/train_loss"]?.steps == [10, 20, 30])
        #expect(after.tags["step/loss"]?.steps == Array(stride(from: 2, through: 30, by: 2)))
        try expectEqualToMetrics("r", after.tags)
    }

    /// Every metrics.csv column but the counts and wall time is a tag of its own, equal row for row (to float32).
    func expectEqualToMetrics(_ run: String, _ tags: [String: (steps: [Int], values: [Double])],
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let lines = try String(contentsOfFile: "\(directory)/\(run)/metrics.csv", encoding: .utf8).split(separator: "\n")
        let header = lines[0].split(separator: ",").map(String.init)
        let rows = lines.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map { Double($0) } }
        // A split's columns the run did not measure (empty) are no tags.
        for (c, name) in header.enumerated() where !["epoch", "step", "wall_time"].contains(name) && rows.allSatisfy({ $0[c] != nil }) {
            let logged = try #require(tags["epoch/\(name)"], "no tag epoch/\(name)", sourceLocation: sourceLocation)
            #expect(logged.steps == rows.map { Int($0[1]!) }, "epoch/\(name)", sourceLocation: sourceLocation)
            let expected = rows.map { Double(Float($0[c]!)) }
            #expect(zip(expected, logged.values).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($0)) },
                    "epoch/\(name): \(expected) vs \(logged.values)", sourceLocation: sourceLocation)
        }
    }

    @Test("a run stopped by SIGINT and resumed gives one unbroken series per tag, equal to metrics.csv row for row")
    func stoppedAndResumed() throws {
        let log = "\(directory)/log.txt"
        let process = try start(executable, ["train"] + model + ["--epochs", "100000", "--log-every", "3", "--run-dir", "r"],
                                in: directory, outputFile: log)
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: "\(directory)/r/checkpoint-00000020.h5") && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        try #require(process.terminationStatus == 130, "\(output)")
        let stopped = try Checkpoint.load(from: "\(directory)/r/last.h5")
        let epochs = stopped.position.epoch + 2
        let resumed = try backprop(["train", "--resume", "r", "--epochs", "\(epochs)", "--override", "--log-every", "3"])
        try #require(resumed.status == 0, "\(resumed.standardError)")
        let tags = try read("r").tags
        #expect(tags["epoch/train_loss"]?.steps == (1...epochs).map { $0 * 10 })
        let steps = try #require(tags["step/loss"]?.steps)
        #expect(steps == Array(stride(from: 3, through: epochs * 10, by: 3)), "\(steps)")
        try expectEqualToMetrics("r", tags)
    }

    @Test("an event file that cannot be written fails the run in one line naming it, like any output")
    func unwritable() throws {
        try FileManager.default.createDirectory(atPath: "\(directory)/r", withIntermediateDirectories: true)
        try Data("not a directory".utf8).write(to: URL(fileURLWithPath: "\(directory)/r/tensorboard"))
        let result = try backprop(["train"] + model + ["--epochs", "1", "--run-dir", "r"])
        #expect(result.status == 1 && !result.signalled && result.standardError.split(separator: "\n").count == 1
                && result.standardError.contains("r/tensorboard"), "\(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/r/model.h5"))
    }

    @Test("--no-tensorboard writes no event file; the events are the run's own files no output may name")
    func off() throws {
        let result = try backprop(["train"] + model + ["--epochs", "1", "--no-tensorboard", "--run-dir", "quiet"])
        try #require(result.status == 0, "\(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/quiet/tensorboard"))
        let on = try backprop(["train"] + model + ["--epochs", "1", "--run-dir", "on"])
        try #require(on.status == 0, "\(on.standardError)")
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: "\(directory)/on/tensorboard").first)
        #expect(file.hasPrefix("events.out.tfevents."))
        #expect(RunDirectory.isManagedFile("\(directory)/on/tensorboard/\(file)"))
    }
}
