import ArgumentParser
import BackpropConfig
import BackpropCore
import BackpropHDF5
import BackpropIO
import Foundation
import Synchronization

/// What one trial gave at one rung: saved as results/<trial>-rung<r>.json,
/// so that a sweep run again takes it as it is.
struct TrialResult: Codable, Sendable {
    let trial: Int
    let rung: Int
    /// Epochs trained in all (the rung's budget, or the base's).
    let epochs: Int
    /// The monitored validation value of the model the run wrote; nil: the trial failed.
    let score: Double?
    /// "validation_accuracy", "validation_loss", …
    let metric: String
    let higherIsBetter: Bool
    let seconds: Double
    let parameters: String
    /// "ok", or why the trial failed.
    let status: String
}

/// Runs a sweep's trials in its directory:
///
///     <dir>/sweep.yaml                    the sweep file (a sweep run again must match it)
///     <dir>/trials/<trial>.yaml           the trial's settings, a --config file
///     <dir>/trials/<trial>/               the trial's run directory (train --resume continues it)
///     <dir>/results/<trial>-rung<r>.json  each result, written when the trial's run ends
///     <dir>/sweep.csv, sweep.svg          the table, and the metric against each searched setting
///     <dir>/best.yaml, best/              the chosen settings, and the chosen run trained again
final class SweepRunner: @unchecked Sendable {
    /// Settings the sweep sets itself and never searches.
    static let owned: Set<String> = ["data", "epochs", "steps"]
    /// Settings that change what a trial's score is (its monitor, its loss): the same for every trial, in the base.
    static let measures: Set<String> = ["monitor", "loss"]
    /// Settings the sweep places itself: not in a sweep file at all.
    static let placed: Set<String> = ["run-dir", "output", "resume", "config", "print-config", "format", "report-test", "override",
                                      "quiet", "verbose", "workers"]

    let plan: SweepPlan
    let directory: String
    let parallel: Int
    let cores: Int
    let quiet: Bool
    /// This process's part under `mpirun`: rank r of n takes the r-th, (r + n)-th, … trial of each rung;
    /// (0, 1) alone. The ranks meet at each rung's results, on the shared file system.
    let rank: Int, ranks: Int
    /// Where each trial's result goes, and where the ranks learn every trial's outcome.
    let results: SweepResults
    /// The processes of this machine under `mpirun`, which share its cores.
    static let localRanks = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) ?? 1
    /// Workers of each trial: the cores shared among the trials that run at once.
    var workers: Int { max(1, cores / parallel) }
    private let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]

    init(plan: SweepPlan, directory: String, parallel: Int, cores: Int, quiet: Bool) {
        let environment = ProcessInfo.processInfo.environment
        rank = environment["OMPI_COMM_WORLD_RANK"].flatMap(Int.init) ?? 0
        ranks = max(environment["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init) ?? 1, 1)
        (self.plan, self.directory, self.parallel, self.quiet) = (plan, directory, parallel, quiet || rank > 0)
        results = SweepResults(directory: directory)
        self.cores = max(1, cores / Self.localRanks)
    }

    /// The sweep's hold on its directory (rank 0's), for the sweep's life.
    private var lock: RunLock?

    /// Takes the directory for this sweep: a new one, or one that holds this
    /// very sweep (the same file's plan). A sweep directory is a run
    /// directory: one sweep at a time holds its lock, and it and the
    /// directories the sweep writes (trials/, results/, best/) are opened
    /// without following a link.
    /// - Throws: `ValidationError` for a directory of another sweep, or of
    ///   something else; `StorageError` for one in use or reached through a link.
    func claim(sweepFile: String) throws {
        let (stored, count) = (directory + "/sweep.yaml", directory + "/trial-count")
        // Rank 0 takes the directory; the others find it taken, by this sweep.
        var lock: RunLock?
        if rank > 0 {
            waitFor([count])
        } else {
            _ = try FileSystem.openDirectory(directory)
            // Nothing, not even the lock, is written into a directory that holds something else.
            let entries = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0 != RunDirectory.lockName }
            if !entries.isEmpty && !FileManager.default.fileExists(atPath: stored) {
                throw ValidationError("--run-dir \(directory) is not empty and holds no sweep; give a new --run-dir.")
            }
            lock = try RunLock(directory: directory, holder: "backprop sweep")
        }
        if FileManager.default.fileExists(atPath: stored) {
            // The file as given, and the number of trials it ran (a --trials given then included).
            let again = try? SweepPlan.read(from: stored, searchable: { _ in nil }, valid: { _, _ in nil })
            let trials = FileManager.default.contents(atPath: count).flatMap { Int(String(decoding: $0, as: UTF8.self)) }
            guard let again, let trials, SweepPlan(copy: again, trialCount: trials) == plan else {
                throw ValidationError("--run-dir \(directory) holds another sweep (its sweep.yaml differs from \(sweepFile)); give a new --run-dir.")
            }
            for part in ["trials", "results"] { _ = try FileSystem.openDirectory("\(directory)/\(part)") }
            if rank == 0 { results.forgetOtherJobs() }
            lock?.recordHolder()
            self.lock = lock
            return
        }
        for part in ["trials", "results"] { _ = try FileSystem.openDirectory("\(directory)/\(part)") }
        guard let text = FileManager.default.contents(atPath: sweepFile) else { throw ValidationError("\(sweepFile): cannot read the sweep file.") }
        try FileSystem.writeAtomically([UInt8](text), to: stored)
        try FileSystem.writeAtomically(Array("\(plan.trialCount)".utf8), to: count)
        lock?.recordHolder()
        self.lock = lock
    }

    func run() throws {
        let rungs: [Int?] = plan.rungEpochs.isEmpty ? [nil] : plan.rungEpochs.map { $0 }
        var alive = Array(0..<plan.trialCount)
        var table: [TrialResult] = []
        say("sweep of \(plan.trialCount) trials in \(directory): \(min(parallel, plan.trialCount)) at a time, \(workers) worker\(workers == 1 ? "" : "s") each"
            + (plan.rungEpochs.isEmpty ? "" : "; successive halving over \(plan.rungEpochs.map(String.init).joined(separator: ", ")) epochs, keeping 1/\(plan.keep)"))
        var last: [TrialResult] = []
        for (rung, epochs) in rungs.enumerated() {
            last = try runRung(rung, of: rungs.count, epochs: epochs, trials: alive.enumerated().filter { $0.offset % ranks == rank }.map(\.element))
            if ranks > 1 { last = try results.gather(alive, rung: rung) }
            if let stopped = last.first(where: { $0.status.hasPrefix(Self.unfinished) }) {
                throw ValidationError("trial \(stopped.trial) did not finish (\(stopped.status.dropFirst(Self.unfinished.count))), which its settings did not cause; "
                                      + "run the same sweep again to continue from the results saved in \(directory)/results.")
            }
            table += last
            if rank == 0 { try writeTable(table) }
            guard rung < rungs.count - 1 else { break }
            let higher = last.first { $0.score != nil }?.higherIsBetter ?? true
            let scores = Dictionary(uniqueKeysWithValues: last.map { ($0.trial, $0.score ?? .nan) })
            alive = SweepPlan.promoted(scores, keep: plan.keep, higherIsBetter: higher)
            say("rung \(rung + 1) keeps trials " + alive.map(String.init).joined(separator: ", "))
        }
        guard let first = last.first(where: { $0.score != nil }) else {
            throw ValidationError("every trial of the sweep failed; see sweep.csv's status column in \(directory).")
        }
        guard rank == 0 else { return }  // rank 0 chooses, writes and trains the choice
        let scores = Dictionary(uniqueKeysWithValues: last.map { ($0.trial, $0.score ?? .nan) })
        let best = SweepPlan.promoted(scores, keep: scores.count, higherIsBetter: first.higherIsBetter)[0]
        let chosen = last.first { $0.trial == best }!
        try writeTable(table, chosen: best)
        try FileSystem.writeAtomically(Array(trialSettings(best, epochs: rungs.last!.map { $0 }).utf8), to: directory + "/best.yaml")
        print("chosen: trial \(best) (\(describe(best))), \(chosen.metric.replacingOccurrences(of: "_", with: " ")) \(shown(chosen.score!)) "
              + "after \(chosen.epochs) epochs; its settings are \(directory)/best.yaml, trained again in \(directory)/best (the one run that reads the test split):")
        fflush(nil)
        try trainBest()
    }

    // MARK: - Trials

    /// Runs `trials` to `epochs` (nil: the base's), `parallel` at a time; their results in trial order.
    /// Under `mpirun`, every outcome is written for the other ranks, an unfinished one too.
    /// - Throws: `ValidationError` when this rank cannot write one (the job then ends, rather than waiting on it).
    private func runRung(_ rung: Int, of rungCount: Int, epochs: Int?, trials: [Int]) throws -> [TrialResult] {
        // The next trial to start, the results so far, and an outcome this rank could not tell the others.
        let state = Mutex<(next: Int, results: [TrialResult?], untold: String?)>((0, [TrialResult?](repeating: nil, count: trials.count), nil))
        DispatchQueue.concurrentPerform(iterations: min(parallel, trials.count)) { _ in
            while true {
                let index = state.withLock { state in
                    defer { state.next += 1 }
                    return state.next
                }
                guard index < trials.count else { return }
                let result = runTrial(trials[index], rung: rung, epochs: epochs)
                var untold: String?
                if ranks > 1 && result.status.hasPrefix(Self.unfinished) {
                    do { try results.tell(result) } catch {
                        untold = "rank \(rank) cannot tell the other ranks that trial \(result.trial) did not finish: \(error)"
                    }
                }
                state.withLock { state in
                    state.results[index] = result
                    state.untold = state.untold ?? untold
                    let score = result.score.map { "\(result.metric.replacingOccurrences(of: "_", with: " ")) \(shown($0))" } ?? result.status
                    say("rung \(rung + 1)/\(rungCount) (\(result.epochs) epoch\(result.epochs == 1 ? "" : "s")): trial \(result.trial)  "
                        + "\(describe(result.trial))  \(score)  " + String(format: "%.1f s", result.seconds))
                }
            }
        }
        if let untold = state.withLock({ $0.untold }) { throw ValidationError(untold) }
        return state.withLock { $0.results.map { $0! } }
    }

    /// Waits until every file of `paths` exists (rank 0 writes it; if rank 0 stops instead, `mpirun` ends this rank).
    private func waitFor(_ paths: [String]) {
        while !paths.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) { usleep(100_000) }
    }

    /// Trains trial `trial` to `epochs` as rung `rung` (continuing its run), or takes the result it saved.
    private func runTrial(_ trial: Int, rung: Int, epochs: Int?) -> TrialResult {
        let name = Self.name(trial)
        if let saved = results.saved(trial, rung: rung) { return saved }
        let runDirectory = "\(directory)/trials/\(name)", settings = "\(directory)/trials/\(name).yaml"
        let started = ContinuousClock.now
        var arguments: [String]
        let length = epochs.map { ["--epochs", "\($0)"] } ?? []
        if !RunDirectory(runDirectory).checkpoints().isEmpty {
            arguments = ["train", "--resume", runDirectory] + (epochs.map { ["--epochs", "\($0)", "--override"] } ?? [])
        } else {
            // What a killed trial of this sweep left (no checkpoint yet) goes, once no other process holds it, never through a link.
            if (try? FileManager.default.attributesOfItem(atPath: runDirectory)) != nil {
                do {
                    _ = try FileSystem.openDirectory(runDirectory)
                    let held = try RunLock(directory: runDirectory)
                    try withExtendedLifetime(held) { try FileManager.default.removeItem(atPath: runDirectory) }
                } catch {
                    return unfinished(trial, rung: rung, epochs: epochs ?? 0, seconds: 0, "\(error)")
                }
            }
            do {
                try FileSystem.writeAtomically(Array(trialSettings(trial, epochs: nil).utf8), to: settings)
            } catch {
                return unfinished(trial, rung: rung, epochs: epochs ?? 0, seconds: 0, "\(error)")
            }
            arguments = ["train", "--config", settings, "--run-dir", runDirectory] + length
        }
        arguments += ["--workers", "\(workers)", "--report-test", "none", "--quiet", "--no-tensorboard"]
        let (status, errorText) = launch(arguments)
        let elapsed = started.duration(to: .now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let result: TrialResult
        if status != 0 {
            let line = (errorText.split(separator: "\n").last.map(String.init) ?? "exit \(status)").replacingOccurrences(of: "error: ", with: "")
            result = failed(trial, rung: rung, epochs: epochs ?? 0, seconds: seconds, line)
            // Only what the settings cause is the trial's result: a refusal (exit 64) or a run that
            // diverged. Anything else (a full disk, a lock, a signal) is not saved, and the next run retries it.
            guard status == 64 || line.hasPrefix("training diverged") else {
                return unfinished(trial, rung: rung, epochs: epochs ?? 0, seconds: seconds, line)
            }
        } else {
            do {
                result = try measured(trial, rung: rung, model: runDirectory + "/model.h5", seconds: seconds)
            } catch {
                // The run ended well and its model cannot be read: the storage's trouble, not the settings'.
                return unfinished(trial, rung: rung, epochs: epochs ?? 0, seconds: seconds, "\(error)")
            }
        }
        do { try results.save(result) } catch {
            return unfinished(trial, rung: rung, epochs: result.epochs, seconds: seconds, "its result cannot be saved: \(error)")
        }
        return result
    }

    /// The result a finished trial's model.h5 holds: the monitored validation value of the epoch whose weights it has.
    private func measured(_ trial: Int, rung: Int, model: String, seconds: Double) throws -> TrialResult {
        let checkpoint = try Checkpoint.load(from: model)
        let monitor = checkpoint.configuration.monitor
        let record = checkpoint.history.epochs.last { $0.epoch == checkpoint.position.epoch - 1 } ?? checkpoint.history.epochs.last
        let value = record.map { monitor.value(of: $0) } ?? .nan
        let metric = monitor == .validationLoss ? "validation_loss" : checkpoint.task.scoreColumn(on: "validation")
        guard !value.isNaN else {
            return failed(trial, rung: rung, epochs: checkpoint.position.epoch, seconds: seconds,
                          "no validation split chose anything: give the base a validation-fraction (or a dataset with /validation)")
        }
        return TrialResult(trial: trial, rung: rung, epochs: checkpoint.position.epoch, score: value, metric: metric,
                           higherIsBetter: !(monitor == .validationLoss || checkpoint.task == .regression), seconds: seconds,
                           parameters: checkpoint.network.fingerprint, status: "ok")
    }

    /// A trial stopped by something its settings did not cause: reported, never saved, retried by the next run.
    private func unfinished(_ trial: Int, rung: Int, epochs: Int, seconds: Double, _ why: String) -> TrialResult {
        unscored(trial, rung: rung, epochs: epochs, seconds: seconds, status: Self.unfinished + why)
    }

    /// A trial its settings made fail: its result.
    private func failed(_ trial: Int, rung: Int, epochs: Int, seconds: Double, _ why: String) -> TrialResult {
        unscored(trial, rung: rung, epochs: epochs, seconds: seconds, status: "failed: " + why)
    }

    /// A trial without a score, its status on one line.
    private func unscored(_ trial: Int, rung: Int, epochs: Int, seconds: Double, status: String) -> TrialResult {
        TrialResult(trial: trial, rung: rung, epochs: epochs, score: nil, metric: "", higherIsBetter: true, seconds: seconds, parameters: "",
                    status: status.replacingOccurrences(of: "\n", with: " "))
    }

    /// The environment of a trial: a process of its own, never a rank of the sweep's job, stopped with the sweep.
    private var childEnvironment: [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { key, _ in
            !["OMPI_", "PMIX_", "OPAL_", "PMI_", "PRTE_"].contains { key.hasPrefix($0) }
        }
        environment[StopSignals.parentVariable] = "1"
        return environment
    }

    /// Runs `backprop ARGUMENTS`, stopped with the sweep; its exit status and standard error.
    private func launch(_ arguments: [String]) -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = childEnvironment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch { return (127, "cannot run \(executable): \(error)") }
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    // MARK: - Output

    /// A trial's settings file: the base, the trial's searched values, and the epochs.
    func trialSettings(_ trial: Int, epochs: Int?) -> String {
        var settings = Dictionary(plan.base.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        for (key, value) in plan.settings(ofTrial: trial) { settings[key] = value }
        if let epochs { settings["epochs"] = .integer("\(epochs)") }
        return "# trial \(trial) of the sweep in \(directory)\n" + settings.keys.sorted().map { "\($0): \(settings[$0]!.yaml)\n" }.joined()
    }

    /// "learning-rate=0.05 dropout=0.1".
    private func describe(_ trial: Int) -> String {
        plan.settings(ofTrial: trial).map { "\($0.key)=\($0.value.text ?? $0.value.yaml)" }.joined(separator: " ")
    }

    private func shown(_ score: Double) -> String { String(format: "%.4f", score) }

    /// sweep.csv: a row per trial and rung, in rung and trial order; and sweep.svg, the metric against each setting.
    private func writeTable(_ results: [TrialResult], chosen: Int? = nil) throws {
        try FileSystem.writeAtomically(Array(SweepPlot.svg(plan, results, chosen: chosen).utf8), to: directory + "/sweep.svg")
        let keys = plan.space.map(\.key)
        let metric = results.first { $0.score != nil }?.metric ?? "validation"
        var lines = [(["trial", "rung", "epochs"] + keys + [metric, "seconds", "parameters", "status"]).joined(separator: ",")]
        for r in results.sorted(by: { ($0.rung, $0.trial) < ($1.rung, $1.trial) }) {
            let values = plan.settings(ofTrial: r.trial).map { csvCell($0.value.text ?? $0.value.yaml) }
            lines.append(([String(r.trial), String(r.rung + 1), String(r.epochs)] + values
                          + [r.score.map { "\($0)" } ?? "", String(format: "%.2f", r.seconds), r.parameters, csvCell(r.status)]).joined(separator: ","))
        }
        try FileSystem.writeAtomically(Array((lines.joined(separator: "\n") + "\n").utf8), to: directory + "/sweep.csv")
    }

    private func csvCell(_ text: String) -> String {
        text.contains(",") || text.contains("\"") ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }

    /// Trains best.yaml once more in <dir>/best, on every core: the run that reads the test split, once.
    private func trainBest() throws {
        let best = directory + "/best"
        _ = try FileSystem.openDirectory(best)
        let arguments = RunDirectory(best).checkpoints().isEmpty
            ? ["train", "--config", directory + "/best.yaml", "--run-dir", best]
            : ["train", "--resume", best]
        if RunDirectory(best).checkpoints().isEmpty { try? FileManager.default.removeItem(atPath: best) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments + ["--workers", "\(cores)", "--no-tensorboard"] + (quiet ? ["--quiet"] : [])
        process.environment = childEnvironment
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ExitCode(process.terminationStatus) }
    }

    private func say(_ line: String) {
        if !quiet { print(line) }
        fflush(nil)
    }

    /// The status of a trial that failed for a reason its settings did not cause: never saved as its result.
    static let unfinished = "not finished: "

    /// "007" for trial 7 (three digits at least, so that names sort as numbers).
    static func name(_ trial: Int) -> String {
        let text = String(trial)
        return String(repeating: "0", count: max(0, 3 - text.count)) + text
    }
}
