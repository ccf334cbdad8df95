import BackpropConfig
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// `backprop sweep`: the same table and the same trial chosen for any
/// --parallel and across a SIGKILL and a second run; successive halving's
/// promotions as worked by hand; best.yaml trains the chosen settings to the
/// same bits; the test split chooses nothing; and bad sweeps are refused by name.
struct SweepTests {
    let directory = temporaryDirectory("sweep")
    let executable = backpropExecutable()

    func backprop(_ arguments: [String]) throws -> ProcessResult {
        try run(executable, arguments, in: directory)
    }

    /// A sweep file: 6 random trials of learning rate × dropout on the committed sample, halved over 1 and 3 epochs.
    func sweepFile(_ name: String = "sweep.yaml", data: String = CLITests.sample, extra: String = "") throws -> String {
        let text = """
        base:
          data: \(data)
          layers: [784, 16, 10]
          validation-fraction: 0.2
          batch-size: 100
        search: random
        trials: 6
        seed: 3
        space:
          learning-rate: {log-uniform: [0.02, 0.5]}
          dropout: [0, 0.2]
        halving:
          epochs: [1, 3]
          keep: 3
        \(extra)
        """
        try text.write(toFile: "\(directory)/\(name)", atomically: true, encoding: .utf8)
        return name
    }

    /// sweep.csv without its wall-time column: what must not depend on how the sweep ran.
    func table(_ run: String) throws -> [String] {
        let text = try String(contentsOfFile: "\(directory)/\(run)/sweep.csv", encoding: .utf8)
        return text.split(separator: "\n").map { line in
            var cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            cells.remove(at: cells.count - 3)  // seconds
            return cells.joined(separator: ",")
        }
    }

    func contents(_ path: String) throws -> String { try String(contentsOfFile: "\(directory)/\(path)", encoding: .utf8) }

    @Test("the same sweep gives the same table (every column but the wall time) and the same best.yaml for --parallel 1, 2 and 3")
    func parallelism() throws {
        let file = try sweepFile()
        for parallel in [1, 2, 3] {
            let result = try backprop(["sweep", "--config", file, "--run-dir", "p\(parallel)", "--parallel", "\(parallel)"])
            try #require(result.status == 0, "\(result.standardError)")
            #expect(result.standardOutput.contains("chosen: trial") && result.standardOutput.contains("test accuracy"))
        }
        let reference = try table("p1")
        #expect(reference.count == 1 + 6 + 2, "six trials at rung 1, two promoted: \(reference)")
        // sweep.svg: a panel a searched setting, a dot a trial and rung, the chosen one ringed.
        let plot = try contents("p1/sweep.svg")
        #expect(plot.components(separatedBy: "class=\"panel\"").count - 1 == 2)
        #expect(plot.components(separatedBy: "class=\"trial\"").count - 1 == 2 * 8 && plot.contains("stroke=\"#d62728\""))
        for parallel in [2, 3] {
            #expect(try table("p\(parallel)") == reference, "--parallel \(parallel)")
            #expect(try contents("p\(parallel)/best.yaml").split(separator: "\n").dropFirst() == contents("p1/best.yaml").split(separator: "\n").dropFirst())
        }
        // Only the chosen run read the test split: no trial's metrics hold a test score.
        let trialMetrics = try contents("p1/trials/000/metrics.csv")
        let testColumn = trialMetrics.split(separator: "\n")[0].split(separator: ",").firstIndex(of: "test_accuracy")
        for row in trialMetrics.split(separator: "\n").dropFirst() {
            #expect(testColumn.map { row.split(separator: ",", omittingEmptySubsequences: false)[$0].isEmpty } ?? true, "\(row)")
        }
    }

    @Test("under mpirun the ranks share every rung's trials and give the table and best.yaml of one process, for 2 and 3 ranks")
    func ranks() throws {
        let file = try sweepFile()
        let single = try backprop(["sweep", "--config", file, "--run-dir", "one", "--parallel", "1", "--quiet"])
        try #require(single.status == 0, "\(single.standardError)")
        for ranks in [2, 3] {
            let job = try run(MPITests.mpirun, ["--bind-to", "none", "-np", "\(ranks)", executable, "sweep", "--config", file,
                                                "--run-dir", "ranks-\(ranks)", "--quiet"], in: directory, environment: MPITests.environment)
            try #require(job.status == 0, "\(ranks) ranks: \(job.standardError)")
            #expect(try table("ranks-\(ranks)") == table("one"), "\(ranks) ranks")
            #expect(try contents("ranks-\(ranks)/best.yaml").split(separator: "\n").dropFirst() == contents("one/best.yaml").split(separator: "\n").dropFirst())
        }
    }

    @Test("a sweep killed (SIGKILL) mid-rung and run again continues to the same table and best.yaml")
    func killAndResume() throws {
        let file = try sweepFile()
        let straight = try backprop(["sweep", "--config", file, "--run-dir", "straight", "--parallel", "2"])
        try #require(straight.status == 0, "\(straight.standardError)")
        // Killed once the first trials' results are written, before the rung ends.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["sweep", "--config", file, "--run-dir", "killed", "--parallel", "1"]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let results = (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/killed/results")) ?? []
            if results.count >= 2 { break }
            usleep(20_000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let written = try FileManager.default.contentsOfDirectory(atPath: "\(directory)/killed/results").count
        #expect(written >= 2 && written < 8, "\(written) results when killed")
        sleep(2)  // its trial sees its parent gone and stops at its next step
        let again = try backprop(["sweep", "--config", file, "--run-dir", "killed", "--parallel", "2"])
        try #require(again.status == 0, "\(again.standardError)")
        #expect(try table("killed") == table("straight"))
        #expect(try contents("killed/best.yaml").split(separator: "\n").dropFirst() == contents("straight/best.yaml").split(separator: "\n").dropFirst())
    }

    @Test("successive halving's promotions, worked by hand: the best ⌊n/η⌋ (at least one) by score, ties to the lower trial, failures never")
    func promotions() {
        // Accuracies of 9 trials, η = 3: the best three are 0.9 (trial 4), then 0.8 twice (trials 2 and 7), not 0.8 of trial 8.
        let accuracies: [Int: Double] = [0: 0.5, 1: 0.7, 2: 0.8, 3: .nan, 4: 0.9, 5: 0.1, 6: 0.75, 7: 0.8, 8: 0.8]
        #expect(SweepPlan.promoted(accuracies, keep: 3, higherIsBetter: true) == [2, 4, 7])
        // Losses: lower is better.
        #expect(SweepPlan.promoted([0: 0.3, 1: 0.2, 2: 0.9, 3: 0.25], keep: 2, higherIsBetter: false) == [1, 3])
        // Two trials, η = 3: one goes on.
        #expect(SweepPlan.promoted([5: 0.4, 9: 0.6], keep: 3, higherIsBetter: true) == [9])
        #expect(SweepPlan.promoted([0: .nan, 1: .nan], keep: 2, higherIsBetter: true) == [])
    }

    @Test("best.yaml given to train --config trains the chosen settings to the bits of the sweep's final run, and, with a constant schedule, of the trial itself")
    func bestReproduces() throws {
        let file = try sweepFile()
        let sweep = try backprop(["sweep", "--config", file, "--run-dir", "s", "--parallel", "2"])
        try #require(sweep.status == 0, "\(sweep.standardError)")
        let again = try backprop(["train", "--config", "s/best.yaml", "--run-dir", "again", "--workers", "1"])
        try #require(again.status == 0, "\(again.standardError)")
        let (final, retrained) = (try Checkpoint.load(from: "\(directory)/s/best/model.h5"), try Checkpoint.load(from: "\(directory)/again/model.h5"))
        #expect(final.network.fingerprint == retrained.network.fingerprint)
        let rows = try table("s").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let lastRung = rows.filter { $0[1] == "2" }
        #expect(lastRung.contains { $0[$0.count - 2] == retrained.network.fingerprint }, "\(lastRung)")
    }

    @Test("datasets that differ only in /test give the same table and choose the same trial")
    func testChoosesNothing() throws {
        let validation = ValidationCLITests()
        let a = try validation.sampleWithOtherTest("sweep-a.h5", count: 200, seed: 1)
        let b = try validation.sampleWithOtherTest("sweep-b.h5", count: 150, seed: 2)
        for (data, run) in [(a, "a"), (b, "b")] {
            let result = try backprop(["sweep", "--config", try sweepFile("\(run).yaml", data: data), "--run-dir", run])
            try #require(result.status == 0, "\(result.standardError)")
        }
        #expect(try table("a") == table("b"))
        #expect(try contents("a/best.yaml").split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasPrefix("data:") }
                == contents("b/best.yaml").split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasPrefix("data:") })
    }

    @Test("a bad sweep is refused in one line naming the file and the key, before any trial runs", arguments: [
        ("space: {}", "the search space is empty"),
        ("space:\n  momentum-typo: [0.5]", "momentum-typo\": is not a setting of train; the settings a sweep searches: "),
        ("space:\n  workers: [1, 2]", "workers\": cannot be searched"),
        ("space:\n  learning-rate: {uniform: [-1, 0.5]}", "-1 is not a finite number ≥ 0"),
        ("space:\n  dropout: {uniform: [0, 1.5]}", "1.5 is not a number in [0, 1)"),
        ("space:\n  learning-rate: {gaussian: [0, 1]}", "gaussian is not a distribution"),
        ("space:\n  learning-rate: [0.1]\ntrials: 4\nhalving:\n  epochs: [3, 1]", "the rungs' epochs must grow"),
        ("space:\n  learning-rate: [0.1]\ntrials: 4\nhalving:\n  epochs: [1, 3]\n  keep: 1", "keep must be a whole number ≥ 2"),
        ("space:\n  learning-rate: [0.1]\nsearch: random", "a random search needs the number of trials"),
        ("space:\n  learning-rate: {log-uniform: [0.01, 0.1]}\nsearch: grid", "a grid searches choices only"),
        ("space:\n  activation: [relu, sigmoid, swish]\nsearch: grid", "expected one of relu"),
        // Issue 54, class 3: every trial through train's own check, before anything is written.
        ("space:\n  batch-size: {uniform: [16, 64]}\nsearch: random\ntrials: 3", "expected a whole number"),
        ("space:\n  dropout: [0, \"a\"]\nsearch: grid", "trial 1 (dropout=a)"),
        ("space:\n  seed: [-1, 2]\nsearch: grid", "trial 0 (seed=-1)"),
        ("space:\n  dp-epsilon: [-1, 0]\nsearch: grid", "key \"dp-epsilon\": -1 is not a finite number > 0"),
        ("space:\n  activation: [softmax]\nsearch: grid", "softmax cannot be a hidden activation"),
        ("space:\n  monitor: [validation-loss, validation-score]\nsearch: grid", "could not be ranked on one scale"),
        ("space:\n  loss: [cross-entropy, sum-of-squares]\nsearch: grid", "could not be ranked on one scale"),
    ])
    func refusals(_ text: String, _ fragment: String) throws {
        try "base:\n  data: \(CLITests.sample)\n  validation-fraction: 0.2\n\(text)\n".write(toFile: "\(directory)/bad.yaml", atomically: true, encoding: .utf8)
        let result = try backprop(["sweep", "--config", "bad.yaml", "--run-dir", "bad"])
        let lines = result.standardError.split(separator: "\n")
        #expect(result.status == 64 && lines.count == 1 && lines[0].contains("bad.yaml") && lines[0].contains(fragment),
                "\(result.status) \(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/bad"))
    }

    @Test("a base of steps: steps under halving are refused (halving sets the epochs), and steps that end before the first epoch (no validation score to rank) by name; enough steps run")
    func baseSteps() throws {
        func write(_ extra: String, halving: Bool) throws {
            let text = "base:\n  data: \(CLITests.sample)\n  layers: [784, 8, 10]\n  validation-fraction: 0.2\n  batch-size: 100\n\(extra)\n"
                + "space:\n  learning-rate: [0.1, 0.2]\n" + (halving ? "trials: 2\nsearch: random\nhalving:\n  epochs: [1, 2]\n  keep: 2\n" : "search: grid\n")
            try text.write(toFile: "\(directory)/steps.yaml", atomically: true, encoding: .utf8)
        }
        for (extra, halving, fragment) in [("  steps: 5", true, "leave steps out"), ("  steps: 5", false, "5 steps end before the first epoch")] {
            try write(extra, halving: halving)
            let result = try backprop(["sweep", "--config", "steps.yaml", "--run-dir", "steps"])
            #expect(result.status == 64 && result.standardError.contains("steps.yaml") && result.standardError.contains(fragment), "\(result.standardError)")
            #expect(!FileManager.default.fileExists(atPath: "\(directory)/steps"))
        }
        try write("  steps: 8", halving: false)
        let enough = try backprop(["sweep", "--config", "steps.yaml", "--run-dir", "steps", "--quiet"])
        #expect(enough.status == 0, "\(enough.standardError)")
    }

    @Test("a sweep directory of another sweep, or of something else, is refused and left as it was")
    func otherSweepDirectory() throws {
        let first = try backprop(["sweep", "--config", try sweepFile(), "--run-dir", "mine", "--quiet"])
        try #require(first.status == 0, "\(first.standardError)")
        let other = try sweepFile("other.yaml", extra: "")
        try contents("other.yaml").replacingOccurrences(of: "seed: 3", with: "seed: 4").write(toFile: "\(directory)/other.yaml", atomically: true, encoding: .utf8)
        let before = try contents("mine/sweep.csv")
        let refused = try backprop(["sweep", "--config", other, "--run-dir", "mine"])
        #expect(refused.status == 64 && refused.standardError.contains("holds another sweep"), "\(refused.standardError)")
        #expect(try contents("mine/sweep.csv") == before)
        try FileManager.default.createDirectory(atPath: "\(directory)/busy", withIntermediateDirectories: true)
        try "x".write(toFile: "\(directory)/busy/file", atomically: true, encoding: .utf8)
        let busy = try backprop(["sweep", "--config", other, "--run-dir", "busy"])
        #expect(busy.status == 64 && busy.standardError.contains("holds no sweep"), "\(busy.standardError)")
    }
}
