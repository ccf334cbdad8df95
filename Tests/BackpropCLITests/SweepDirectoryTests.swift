import BackpropConfig
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// Issue 54, classes 1 and 2: a sweep directory is as safe as a run
/// directory, and a failure the settings did not cause is not a result.
extension SweepTests {
    /// The state a sweep leaves once it has claimed `run` for `file`: what an interrupted sweep leaves.
    func claimed(_ run: String, _ file: String) throws {
        let path = "\(directory)/\(run)"
        for part in ["trials", "results"] { try FileManager.default.createDirectory(atPath: "\(path)/\(part)", withIntermediateDirectories: true) }
        try FileManager.default.copyItem(atPath: "\(directory)/\(file)", toPath: "\(path)/sweep.yaml")
        try "6".write(toFile: "\(path)/trial-count", atomically: true, encoding: .utf8)
    }

    /// The sweep file, run undisturbed into straight/: the table a disturbed sweep must end with.
    func straightSweep() throws -> String {
        let file = try sweepFile()
        let straight = try backprop(["sweep", "--config", file, "--run-dir", "straight", "--quiet"])
        try #require(straight.status == 0, "\(straight.standardError)")
        return file
    }

    /// Every file below `path` (links not followed), with its size: what must not change.
    func tree(_ path: String) -> [String] {
        let items = (try? FileManager.default.subpathsOfDirectory(atPath: path)) ?? []
        return items.sorted().map { "\($0) \((try? FileManager.default.attributesOfItem(atPath: "\(path)/\($0)")[.size] as? Int) ?? -1)" }
    }

    @Test("a sweep takes its directory's lock: a second sweep (or a train) on it is refused by name and changes nothing, and the first's table is an undisturbed sweep's")
    func sweepLock() throws {
        let file = try straightSweep()
        try claimed("held", file)
        var lock: RunLock? = try RunLock(directory: "\(directory)/held", holder: "test")
        let before = tree("\(directory)/held")
        let second = try backprop(["sweep", "--config", file, "--run-dir", "held"])
        #expect(second.status != 0 && second.standardError.contains("held") && second.standardError.contains("in use by another backprop sweep"),
                "\(second.standardError)")
        #expect(tree("\(directory)/held") == before)
        #expect(lock != nil)
        lock = nil  // released: the next run may take it
        let after = try backprop(["sweep", "--config", file, "--run-dir", "held", "--quiet"])
        try #require(after.status == 0, "\(after.standardError)")
        #expect(try table("held") == table("straight"))
    }

    @Test("a planted link in a sweep's directory (trials/, results/, a trial's run directory, best/) is refused by name and its target left untouched",
          arguments: ["trials", "results", "trials/003", "best"])
    func plantedLink(_ link: String) throws {
        let file = try sweepFile()
        try FileManager.default.createDirectory(atPath: "\(directory)/victim/003", withIntermediateDirectories: true)
        try "keep".write(toFile: "\(directory)/victim/003/precious", atomically: true, encoding: .utf8)
        if link == "best" {
            let finished = try backprop(["sweep", "--config", file, "--run-dir", "s", "--quiet"])
            try #require(finished.status == 0, "\(finished.standardError)")
            try FileManager.default.removeItem(atPath: "\(directory)/s/best")
        } else {
            try claimed("s", file)
            try? FileManager.default.removeItem(atPath: "\(directory)/s/\(link)")
        }
        try FileManager.default.createSymbolicLink(atPath: "\(directory)/s/\(link)", withDestinationPath: "\(directory)/victim")
        let victim = tree("\(directory)/victim")
        let result = try backprop(["sweep", "--config", file, "--run-dir", "s", "--quiet"])
        #expect(result.status != 0 && result.standardError.contains("symbolic link") && result.standardError.contains(link == "trials/003" ? "003" : link),
                "\(result.standardError)")
        #expect(tree("\(directory)/victim") == victim && FileManager.default.fileExists(atPath: "\(directory)/victim/003/precious"))
    }

    /// Issue 54, classes 2 and 9: under mpirun (2 ranks) trial 2 is rank 0's and rank 1 waits for its outcome at the end of the rung.
    @Test("a trial stopped by something its settings did not cause (its run directory in use) is not saved as its result: the sweep stops (under mpirun on every rank, none waiting for the outcome), says to run it again, and the next run gives an undisturbed sweep's table",
          arguments: [1, 2])
    func transientFailure(ranks: Int) throws {
        let file = try straightSweep()
        let run = "busy-\(ranks)"
        try claimed(run, file)
        try FileManager.default.createDirectory(atPath: "\(directory)/\(run)/trials/002", withIntermediateDirectories: true)
        var lock: RunLock? = try RunLock(directory: "\(directory)/\(run)/trials/002")
        let arguments = ["sweep", "--config", file, "--run-dir", run, "--quiet"]
        func sweep() throws -> ProcessResult {
            guard ranks > 1 else { return try backprop(arguments) }
            return try BackpropTestSupport.run(MPITests.mpirun, ["--bind-to", "none", "--timeout", "180", "-np", "\(ranks)", executable] + arguments,
                                               in: directory, environment: MPITests.environment)
        }
        let stopped = try sweep()
        #expect(stopped.status != 0 && stopped.standardError.contains("trial 2 did not finish") && stopped.standardError.contains("run the same sweep again"),
                "\(stopped.standardError)")
        let results = try FileManager.default.contentsOfDirectory(atPath: "\(directory)/\(run)/results")
        #expect(!results.contains("002-rung0.json") && results.contains("001-rung0.json"), "\(results)")
        #expect(lock != nil)
        lock = nil  // released: the next run may take it
        let again = try sweep()
        try #require(again.status == 0, "\(again.standardError)")
        #expect(try table(run) == table("straight"))
        // An unfinished outcome told to the other ranks was the first job's alone: the next removed it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(directory)/\(run)/results").allSatisfy { !$0.contains("unfinished") })
    }
}

/// Issue 54, class 4: no number of a sweep file traps or wraps.
extension SweepTests {
    @Test("int-uniform draws low + ⌊u·(high − low + 1)⌋ without overflow for any bounds, as before where that did not overflow; a sweep over every seed runs")
    func wholeUniformBounds() throws {
        let us = [0, 1e-12, 0.25, 0.5, 0.999999, Double(1).nextDown]
        for (low, high) in [(0, 9), (-5, 5), (16, 64), (0, Int.max), (Int.min, Int.max), (Int.max - 1, Int.max), (Int.min, Int.min + 1)] {
            for u in us {
                let x = SweepPlan.whole(u, from: low, to: high)
                #expect(x >= low && x <= high, "\(u) in \(low) … \(high): \(x)")
                let (span, overflow) = high.subtractingReportingOverflow(low)
                if !overflow && span < 1 << 40 { #expect(x == low + min(Int(u * Double(span + 1)), span)) }
            }
            #expect(SweepPlan.whole(0, from: low, to: high) == low)
            // u just below 1 picks the top of the range (within float64's resolution of it).
            let top = SweepPlan.whole(Double(1).nextDown, from: low, to: high)
            #expect(Double(high) - Double(top) <= (Double(high) - Double(low)) * 1e-6 + 1, "\(top) for \(low) … \(high)")
        }
        let text = """
        base: {data: \(CLITests.sample), layers: [784, 8, 10], validation-fraction: 0.2, epochs: 1, batch-size: 500}
        search: random
        trials: 2
        space:
          seed: {int-uniform: [0, 9223372036854775807]}
        """
        try text.write(toFile: "\(directory)/seeds.yaml", atomically: true, encoding: .utf8)
        let result = try backprop(["sweep", "--config", "seeds.yaml", "--run-dir", "seeds", "--quiet"])
        #expect(result.status == 0 && !result.standardError.contains("Fatal"), "\(result.standardError)")
    }
}
