import ArgumentParser
import BackpropConfig
import BackpropCore
import BackpropHDF5
import BackpropIO
import Foundation

/// `backprop sweep`: a hyperparameter search (`SweepPlan`) whose trials are
/// ordinary runs of `backprop train` under the sweep's directory, run
/// `--parallel` at a time on the cores, chosen on their validation split, with
/// successive halving when the file asks for it. Every decision is a function
/// of the trials' results, and each result the same bits on any worker count,
/// so the table and the trial chosen are the same for any `--parallel`, and a
/// sweep killed and run again continues to them.
struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Search hyperparameters: trials of train (grid or seeded random, with successive halving), chosen on validation; the same table for any --parallel, resumable.",
        discussion: """
        A sweep file (YAML or JSON) holds `base` (train's settings, keyed as in --config files), `space` (each \
        searched setting: a list of choices, or {uniform|log-uniform|int-uniform: [low, high]}), `search` (grid or \
        random), `trials` (random), `seed`, and `halving` ({epochs: [1, 3, 9], keep: 3}: every trial trains 1 epoch, \
        the best third go on to 3, the best third of those to 9). It writes sweep.csv, best.yaml (the chosen trial's \
        settings: `train --config best.yaml` trains it again to the same bits) and trains best.yaml once more in \
        <run-dir>/best, the only run that reads the test split. Run it again with the same --run-dir to continue.
        """)

    @Option(name: .customLong("config"), help: "The sweep file (YAML or JSON).")
    var sweepFile: String

    @Option(name: .customLong("run-dir"), help: "The sweep's directory (default: runs/sweep-<date-time>); again, to continue a sweep.")
    var runDir: String?

    @Option(help: "Trials trained at once, sharing the cores (default: one a core, each on one worker). Under mpirun each rank takes its share of every rung's trials, this many at a time on its share of the machine's cores.")
    var parallel: Int?

    @Option(help: "The random search's number of trials, instead of the file's.")
    var trials: Int?

    @Flag(help: "Print only the final lines.")
    var quiet = false

    func validate() throws {
        try refuseOutOfDomain(in: self)
    }

    func run() throws {
        var plan = try readPlan()
        if let trials {
            guard !plan.isGrid else { throw ValidationError("--trials: a grid's trials are its combinations (\(plan.trialCount)); leave --trials out.") }
            plan = SweepPlan(copy: plan, trialCount: trials)
        }
        let directory = runDir ?? "runs/sweep-" + RunFiles.defaultName()
        let runner = SweepRunner(plan: plan, directory: directory, parallel: parallel ?? max(1, WorkerOptions.defaultCount / SweepRunner.localRanks),
                                 cores: WorkerOptions.defaultCount, quiet: quiet)
        try checkTrials(plan, runner: runner)
        try runner.claim(sweepFile: sweepFile)
        try runner.run()
    }

    /// Every trial's settings, at every rung, through train's own check before
    /// the sweep claims its directory: the flags parsed and validated, the
    /// data read and the run set up as `train` would (`RunSetup`, which writes
    /// nothing). A trial `train` would refuse is refused here, by trial and key,
    /// instead of failing in every trial.
    private func checkTrials(_ plan: SweepPlan, runner: SweepRunner) throws {
        if !plan.rungEpochs.isEmpty, plan.base.contains(where: { $0.key == "steps" }) {
            throw ValidationError("\(sweepFile): key \"steps\": successive halving sets each rung's epochs; leave steps out.")
        }
        // A new private directory (mkdtemp: mode 0700, never one planted under the name).
        var template = Array((FileManager.default.temporaryDirectory.path + "/backprop-sweep-check-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw ValidationError("cannot create a temporary directory to check the trials in (\(String(cString: strerror(errno)))).")
        }
        let work = String(cString: made)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let rungs: [Int?] = plan.rungEpochs.isEmpty ? [nil] : plan.rungEpochs.map { $0 }
        var checked = Set<String>()
        // The data is the base's for every trial (a sweep does not search it): read once.
        var contents: RunSetup.Contents?
        for trial in 0..<plan.trialCount {
            for epochs in rungs {
                // A trial's file but its first line (the trial's number): identical settings are checked once.
                let text = runner.trialSettings(trial, epochs: epochs)
                guard checked.insert(String(text.drop { $0 != "\n" })).inserted else { continue }
                let file = work + "/trial.yaml"
                do {
                    try FileSystem.writeAtomically(Array(text.utf8), to: file)
                    let arguments = try Backprop.parsedForm(["train", "--config", file, "--report-test", "none", "--run-dir", work + "/run"])
                    let command = try Train.parse(Array(arguments.dropFirst()))
                    if contents == nil {
                        contents = try RunSetup.read(command.dataOptions.path, streaming: command.streaming, readsTest: false)
                    }
                    let setup = try RunSetup(command, job: Job(mpi: nil), contents: contents)
                    // A trial is ranked on an epoch's validation score: a run must end one.
                    let batches = setup.trainer.epochs.batchesPerEpoch
                    if let steps = setup.configuration.steps, steps < batches {
                        throw ValidationError("key \"steps\": \(steps) steps end before the first epoch does (\(batches) batches), so no validation "
                                              + "score would rank the trial; give at least \(batches), or epochs")
                    }
                } catch {
                    let rung = epochs.map { " at its rung of \($0) epochs" } ?? ""
                    let settings = plan.settings(ofTrial: trial).map { "\($0.key)=\($0.value.text ?? $0.value.yaml)" }.joined(separator: " ")
                    let message = Train.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
                    throw ValidationError("\(sweepFile): trial \(trial) (\(settings))\(rung) is one train refuses: "
                                          + message.replacingOccurrences(of: work + "/trial.yaml", with: "its settings"))
                }
            }
        }
    }

    /// The plan, each key and value checked against train's settings.
    private func readPlan() throws -> SweepPlan {
        let rows = OptionTable.rows(of: Train.self)
        let searchable = Set(Settings.all.filter { $0.rule != .free && !SweepRunner.owned.contains($0.key) && !SweepRunner.measures.contains($0.key) }
            .map(\.key))
        do {
            return try SweepPlan.read(from: sweepFile, searchable: { key in
                if searchable.contains(key) { return nil }
                if SweepRunner.measures.contains(key) {
                    return "changes what a trial's score measures (a loss, an accuracy), so the trials could not be ranked on one scale; "
                        + "set it in the base."
                }
                let why = Settings.all.contains { $0.key == key } ? "cannot be searched (the sweep sets it, or it changes no result)"
                    : "is not a setting of train"
                return "\(why); the settings a sweep searches: \(searchable.sorted().joined(separator: ", "))."
            }, valid: { key, value in
                if SweepRunner.placed.contains(key) { return "the sweep places each trial's files itself; leave it out." }
                guard let row = rows.first(where: { $0.key == key }) else { return "is not a setting of train." }
                if let type = row.type, !type.admits(value) { return "expected \(type), found \(value.found)." }
                // The type check above refuses a fraction where a whole number belongs; here, the range.
                if let number = value.number, let domain = row.domain, !domain.contains(number) {
                    return "\(value.yaml) is not \(domain.description)\(domain.float32Note("\(number)"))."
                }
                return nil
            })
        } catch {
            throw ValidationError(error.description)
        }
    }
}

extension SweepPlan {
    /// `plan` with another number of random trials.
    init(copy plan: SweepPlan, trialCount: Int) {
        self.init(base: plan.base, space: plan.space, isGrid: plan.isGrid, trialCount: trialCount, seed: plan.seed,
                  rungEpochs: plan.rungEpochs, keep: plan.keep)
    }
}

extension Sweep: OptionDomains {
    static let domains: [String: SettingDomain] = ["parallel": .wholeRange(1, 1024), "trials": .wholeRange(1, 100_000)]
}
