import ArgumentParser
import BackpropConfig
import BackpropCore
import BackpropHDF5
import BackpropIO
import Foundation

/// `backprop train`: trains a model, checkpointing into a run directory, or
/// resumes a stopped run bit for bit.
///
/// Every setting is optional here so that `--resume` can tell the flags that
/// were given from the defaults: a fresh run fills the gaps from
/// `TrainingConfiguration()`, a resumed one from the checkpoint.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train an MLP on an HDF5 dataset, checkpointing into a run directory; resume with --resume.",
        discussion: """
        The defaults train the reference model: \(fresh.summary), \
        \(fresh.epochs) epochs, on all cores. \
        A checkpoint is written to the run directory after every epoch (and as --checkpoint-every \
        and --checkpoint-interval say); SIGINT, SIGTERM or SIGHUP (or a closed standard output) writes one and stops. \
        `backprop train --resume RUN_DIR` continues exactly where the run stopped.
        """)

    // Fixed for the life of a run: the data, model, optimizer and samples.
    @OptionGroup(title: "Data") var dataOptions: DataOptions
    @OptionGroup(title: "Streaming") var streaming: StreamOptions
    @OptionGroup(title: "Model") var model: ModelOptions
    @OptionGroup(title: "Optimizer") var optimizer: OptimizerOptions
    @OptionGroup(title: "Batches") var batch: BatchOptions
    @OptionGroup(title: "Samples") var sampling: SamplingOptions
    @OptionGroup(title: "DP-SGD") var privacy: PrivacyOptions
    @OptionGroup(title: "Validation") var validation: ValidationOptions
    @OptionGroup(title: "Distillation") var distillation: DistillationOptions
    // How long and how fast: may change on resume with --override.
    @OptionGroup(title: "Length and learning rate") var schedule: ScheduleOptions
    // Neither changes the results: free on resume.
    @OptionGroup(title: "Threads") var threads: WorkerOptions
    @OptionGroup var kernel: KernelOptions
    @Option(name: Settings.runDir.name, help: Settings.runDir.help)
    var runDir: String?
    @Option(name: Settings.output.name, help: Settings.output.help)
    var output: String?
    @Option(name: Settings.checkpointEvery.name, help: Settings.checkpointEvery.help)
    var checkpointEvery: Int?
    @Flag(name: Settings.checkpointEveryEpoch.name, inversion: .prefixedNo, help: Settings.checkpointEveryEpoch.help)
    var checkpointEveryEpoch: Bool?
    @Option(name: Settings.checkpointInterval.name, help: Settings.checkpointInterval.help)
    var checkpointInterval: WallInterval?
    @Option(name: Settings.keep.name, help: Settings.keep.help)
    var keep: Int?

    @Option(name: Settings.config.name, help: Settings.config.help)
    var config: String?
    @Option(name: Settings.resume.name, help: Settings.resume.help)
    var resume: String?
    @Flag(name: Settings.override.name, help: Settings.override.help)
    var override = false
    @Flag(name: Settings.printConfig.name, help: Settings.printConfig.help)
    var printConfig = false
    @Option(name: Settings.configFormat.name, help: Settings.configFormat.help)
    var format: ConfigFormat?

    /// The formats of --print-config.
    enum ConfigFormat: String, ExpressibleByArgument, CaseIterable { case yaml, json }
    @Flag(name: Settings.verbose.name, help: Settings.verbose.help)
    var verbose = false
    @Flag(name: Settings.quiet.name, help: Settings.quiet.help)
    var quiet = false
    @Option(name: Settings.logEvery.name, help: Settings.logEvery.help)
    var logEvery = ProgressReporter.defaultLogEvery
    @Flag(name: Settings.tensorboard.name, inversion: .prefixedNo, help: Settings.tensorboard.help)
    var tensorboard = true
    @Flag(name: Settings.logGradNorms.name, help: Settings.logGradNorms.help)
    var logGradNorms = false
    @Flag(name: Settings.logNoiseScale.name, help: Settings.logNoiseScale.help)
    var logNoiseScale = false

    func validate() throws {
        try refuseOutOfDomain(in: self)
        if quiet && verbose { throw ValidationError("--quiet and --verbose contradict each other; give one.") }
        try requireDomain(Settings.logEvery.flag, logEvery, .atLeast(0))
        if let checkpointEvery { try requireDomain(Settings.checkpointEvery.flag, checkpointEvery, .atLeast(0)) }
        if let keep { try requireDomain(Settings.keep.flag, keep, .atLeast(1)) }
        if let checkpointInterval, !checkpointInterval.isDuration {
            throw ValidationError("\(Settings.checkpointInterval.flag): \(checkpointInterval.text) is not a duration > 0 (seconds, or a number with s, m or h).")
        }
        if override && resume == nil { throw ValidationError("--override only applies with --resume.") }
        if format != nil && !printConfig { throw ValidationError("--format only applies with --print-config.") }
        if resume == nil {
            // A fresh run is checked as far as the flags alone decide before any
            // file is touched; run() resolves the rest once the data is read.
            try Train.checked { try resolvedConfiguration(base: Train.freshConfiguration(), sampleCount: nil) }
        }
    }

    func run() throws {
        let job = Job.start()
        try job.run { try run(in: job) }
    }

    /// The run, as one rank of `job` (or the one process).
    private func run(in job: Job) throws {
        let startUp = ContinuousClock.now
        try Backprop.setUp()
        StopSignals.watchParent()
        let kernel = try self.kernel.resolved()
        var resumed: (checkpoint: Checkpoint, path: String)?
        if let resume { resumed = try Train.locate(resume) }
        if let (checkpoint, path) = resumed { try checkResumeRules(of: checkpoint.configuration, checkpointPath: path) }

        let base = resumed?.checkpoint.configuration ?? Train.freshConfiguration()
        let dataPath = dataOptions.data ?? resumed?.checkpoint.dataPath ?? DataOptions.defaultPath
        if let output {
            try refuseOverwritingInputs(output, flag: Settings.output.flag, inputs: [dataPath] + (resumed.map { [$0.path] } ?? []),
                                        runDirectory: runDir ?? resumed.map { Train.runDirectory(of: $0.path) })
        }
        let (whole, stored, test, classNames) = try guardedRead(dataPath) {
            let file = try HDF5File.open(dataPath)
            // Each split stays in the file when it is larger than the budget (or --stream).
            func streams(_ split: String) throws -> Bool {
                try file.exists("/\(split)/x") && streaming.streams(featureBytes: try DatasetFile.featureBytes(of: split, in: file))
            }
            // /test is read once, at the end (unless --report-test every-epoch): it stays in the file whenever that costs no pass at start.
            let testStreams = try streams("test") || (try DatasetFile.storesFingerprints(of: "test", in: file) && file.exists("/test/x"))
            let (train, test) = try DatasetFile.load(file, streamingTrain: try streams("train"), streamingTest: testStreams)
            return (train, try DatasetFile.validation(of: file, streaming: try streams("validation")), test, try DatasetFile.classNames(of: file))
        }
        // The teacher's probabilities go with /train's rows, into whichever part the split puts each.
        let teacherPath = distillation.teacher ?? resumed?.checkpoint.teacherPath
        let teacher = try Train.teacher(at: teacherPath, for: whole, dataPath: dataPath, settings: givenSettings.applied(to: base))
        var taught = whole
        if let teacher { (taught.teacher, taught.teacherViews) = teacher.taught }
        // The validation split comes before anything counts the training samples (the schedule, DP-SGD's q).
        let (train, validation) = try Train.checked {
            try Train.validationSplit(of: taught, stored: stored, settings: givenSettings.applied(to: base), dataPath: dataPath)
        }
        var configuration = try Train.checked { try resolvedConfiguration(base: base, sampleCount: train.count, resumed: resumed?.path) }
        // The cores are shared among this machine's ranks, unless --workers says otherwise.
        if threads.workers == nil && job.mpi != nil { configuration.workers = job.defaultWorkers }
        // The data the run trains and chooses on: a different split is different data.
        let fingerprint = Dataset.record(training: train, validation: validation)
        if let teacher, let teacherPath { try Train.checkTaughtRows(teacher, path: teacherPath, train: train, validation: validation) }

        let trainer: Trainer
        if let (checkpoint, path) = resumed {
            try checkUnchanged(from: checkpoint.configuration, to: configuration, checkpointPath: path)
            // The resume rests on the data's fingerprint: a streamed split's stored one is checked
            // against its rows first (one pass), so that the rule is the same streamed or not.
            try train.verifyFingerprint()
            try validation?.verifyFingerprint()
            guard checkpoint.dataFingerprint == fingerprint else {
                throw ValidationError("\(dataOptions.data == nil ? "dataset" : "--data") \(dataPath) is not the data checkpoint \(path) was trained on "
                                      + "(its fingerprint is '\(fingerprint)', the checkpoint's '\(checkpoint.dataFingerprint)').")
            }
            trainer = try Train.checked {
                try Trainer(configuration: configuration, dataset: train, network: checkpoint.trainedNetwork, kernel: kernel, group: job.group)
            }
            // A block shuffle's checkpoint saves no order to check its position against: the data does.
            guard checkpoint.position.batch < trainer.epochs.batchesPerEpoch,
                  checkpoint.order.isEmpty || checkpoint.order.count == train.count else {
                throw ValidationError("checkpoint \(path) is at batch \(checkpoint.position.batch + 1) of an epoch of \(checkpoint.order.count) samples, "
                                      + "but \(dataPath) has \(trainer.epochs.batchesPerEpoch) batches of \(train.count).")
            }
            trainer.restore(position: checkpoint.position, optimizerState: checkpoint.optimizerState,
                            order: checkpoint.order, history: checkpoint.history, average: checkpoint.average)
        } else {
            // A setting the data cannot take (--augment without an image shape) is a flag's error too.
            trainer = try Train.checked { try Trainer(configuration: configuration, dataset: train, kernel: kernel, group: job.group) }
        }
        try test.validate(for: trainer.network)
        try validation?.validate(for: trainer.network)
        // A resumed run keeps the policy its config.json records, flag by flag, unless a flag changes it.
        let recorded = resumed.map { CheckpointPolicy.recorded(in: Train.runDirectory(of: $0.path)) } ?? CheckpointPolicy()
        let policy = CheckpointPolicy(everySteps: checkpointEvery ?? recorded.everySteps,
                                      everyEpoch: checkpointEveryEpoch ?? recorded.everyEpoch,
                                      interval: checkpointInterval?.seconds ?? recorded.interval, keep: keep ?? recorded.keep)
        if case .plateau = configuration.schedule.shape, validation == nil {
            throw ValidationError("\(Settings.lrSchedule.flag) plateau watches the validation split, and \(dataPath) has none: "
                                  + "give \(Settings.validationFraction.flag) f.")
        }
        if configuration.earlyStopping != nil {
            let flag = Settings.earlyStopping.flag
            // The best epoch's weights come back from best.h5, which only an epoch's checkpoint writes.
            guard validation != nil else {
                throw ValidationError("\(flag) watches the validation split, and \(dataPath) has none: give \(Settings.validationFraction.flag) f.")
            }
            guard policy.everyEpoch else {
                throw ValidationError("\(flag) restores the best epoch from its checkpoint: it needs \(Settings.checkpointEveryEpoch.flag).")
            }
        }
        try refuseFlagsThatCannotAct(configuration: configuration, hasValidation: validation != nil)
        if printConfig {
            // Everything above checked it as a run would; what it prints, given back as --config, is this run.
            let settings = Settings.recorded(RecordedRun(configuration: configuration, dataPath: dataPath, policy: policy,
                                                         teacherPath: teacherPath, free: freeSettings))
            if job.isWriter { print(try SettingsFile.text(settings, json: format == .json, free: Settings.freeKeys), terminator: "") }
            return
        }
        if let (checkpoint, _) = resumed, configuration.privacy != nil, job.isWriter,
           let before = try? checkpoint.configuration.plannedSteps(sampleCount: train.count),
           let after = try? configuration.plannedSteps(sampleCount: train.count), after > before,
           let planned = trainer.privacySpent(steps: before), let extended = trainer.privacySpent(steps: after) {
            let message = "the resumed run plans \(after) steps where the run planned \(before): DP-SGD then spends "
                + "ε = \(String(format: "%.3f", extended.epsilon)) instead of \(String(format: "%.3f", planned.epsilon)) "
                + "(δ = \(configuration.privacy!.delta))."
            log.warning("\(message)")
        }
        try job.agree(on: trainer, dataFingerprint: fingerprint)
        if job.size > 1 && (logGradNorms || logNoiseScale) {
            throw ValidationError("--log-grad-norms and --log-noise-scale measure one process's samples; run them without mpirun.")
        }
        trainer.measuresSampleNorms = logGradNorms
        trainer.measuresNoiseScale = logNoiseScale
        if configuration.privacy != nil && sampling.seed == nil && resumed == nil && job.isWriter {
            log.warning("""
                DP-SGD's noise is keyed by --seed, and the default seed \(configuration.seed) is public: anyone who knows the seed \
                can subtract the noise. Give a secret --seed (every checkpoint stores it: release only `backprop export` output).
                """)
        }

        // Rank 0 alone holds and writes the run directory; the other ranks of a job name it only.
        let directory = try runDir.map(RunDirectory.init) ?? resumed.map { RunDirectory(Train.runDirectory(of: $0.path)) }
            ?? (job.isWriter ? RunDirectory.createUnique(in: "runs", named: Train.defaultRunName()) : RunDirectory("runs"))
        // A resume continues its own run directory; another one must not hold a run of its own.
        let continuing = resumed.map {
            URL(fileURLWithPath: Train.runDirectory(of: $0.path)).standardizedFileURL == URL(fileURLWithPath: directory.path).standardizedFileURL
        } ?? false
        // Resuming an older checkpoint file where the run went on would write a second
        // timeline over the first (its checkpoints, last.h5, best.h5, metrics.csv). (A
        // resume of the directory takes its newest valid checkpoint: newer ones are damaged.)
        if continuing, let resume, !Train.isDirectory(resume), let (checkpoint, path) = resumed, let newest = directory.checkpoints().first,
           newest.step > checkpoint.position.step {
            throw ValidationError("\(path) is at step \(checkpoint.position.step), but the run in \(directory.path) went on to step "
                                  + "\(newest.step) (\(newest.path)); resume the newest, or give \(Settings.runDir.flag) NEW_DIR to branch from this one.")
        }
        let lock = job.isWriter ? try directory.prepare(continuing: continuing) : nil
        if verbose && job.isWriter {
            if job.size > 1 { print("job: \(job.size) ranks of \(configuration.workers) worker\(configuration.workers == 1 ? "" : "s") each") }
            print("kernel: \(kernel.summary); every path gives the same bits")
            let seconds = (ContinuousClock.now - startUp) / .seconds(1)
            print(String(format: "start-up (checkpoint, data, fingerprint, workspaces): %.3f s", seconds))
        }
        if let (checkpoint, path) = resumed, !quiet, job.isWriter {
            print("resuming \(path) at epoch \(checkpoint.position.epoch + 1), batch \(checkpoint.position.batch), "
                  + "step \(checkpoint.position.step)")
        }
        let verbosity: Verbosity = !job.isWriter ? .silent : quiet ? .quiet : verbose ? .verbose : .normal
        // mpirun gives ranks a pseudo-terminal even when its own output is a pipe: plain lines in a job.
        let progress = ProgressReporter(verbosity: verbosity, logEvery: logEvery,
                                        isTerminal: job.mpi == nil && isatty(STDOUT_FILENO) == 1)
        let run = try TrainingRun(trainer: trainer, validation: validation, test: test, dataPath: dataPath, fingerprint: fingerprint,
                              directory: directory, policy: policy, output: output ?? directory.modelPath, progress: progress,
                              writes: job.isWriter, resumedFrom: resumed?.path)
        run.classNames = classNames
        run.teacherPath = teacherPath
        run.testReport = self.validation.reportTest
        run.freeSettings = freeSettings
        // A resume into another directory carries the epoch log of the run it branches from.
        if let (_, path) = resumed, !continuing { run.earlierMetrics = RunDirectory(Train.runDirectory(of: path)).metricsPath }
        (run.writesEvents, run.logEvery) = (tensorboard, logEvery)
        // The run directory stays this process's until the run ends.
        try withExtendedLifetime(lock) { try run.start() }
    }

    /// The free settings as given (those that are not part of the
    /// configuration or the checkpoint policy), for config.json and
    /// --print-config; a flag that is off is left out (a settings file's
    /// `false` would be --no-FLAG, which only inverted flags have).
    var freeSettings: [String: any Sendable] {
        var free: [String: any Sendable] = [Settings.tensorboard.key: tensorboard, Settings.logEvery.key: logEvery,
                                            Settings.reportTest.key: validation.reportTest.rawValue, Settings.kernel.key: kernel.kernel.rawValue]
        if let memory = streaming.dataMemory { free[Settings.dataMemory.key] = memory.bytes }
        for (setting, on) in [(Settings.stream, streaming.stream), (Settings.logGradNorms, logGradNorms),
                              (Settings.logNoiseScale, logNoiseScale), (Settings.verbose, verbose), (Settings.quiet, quiet)] where on {
            free[setting.key] = true
        }
        return free
    }

    /// Refuses a flag given where it cannot change anything, naming the flag it needs
    /// (as --plateau-factor without --lr-schedule plateau is): --monitor and
    /// --min-delta choose among epochs by the validation split; --shuffle-window
    /// sizes the windows of a block shuffle.
    private func refuseFlagsThatCannotAct(configuration: TrainingConfiguration, hasValidation: Bool) throws {
        let validationSplit = "a validation split (\(Settings.validationFraction.flag) f, or a dataset with its own /validation)"
        // Given with a value other than the default (which a run's config.json records whatever the run).
        let needs: [(setting: Setting, given: Bool, needs: String, present: Bool)] = [
            (Settings.monitor, validation.monitor.map { $0 != fresh.monitor } ?? false, validationSplit, hasValidation),
            (Settings.minDelta, validation.minDelta.map { $0 != fresh.minDelta } ?? false, validationSplit, hasValidation),
            (Settings.shuffleWindow, sampling.shuffleWindow.map { $0 != fresh.blockShuffle.window } ?? false,
             "\(Settings.shuffleBlocks.flag) N (a block shuffle)", configuration.blockShuffle.isActive),
        ]
        for flag in needs where flag.given && !flag.present {
            throw ValidationError("\(flag.setting.flag) cannot act here: it needs \(flag.needs).")
        }
    }

    /// The training data and the validation split: `fraction` of /train held
    /// out (`Dataset.split`, keyed by the run's seed), or the file's own
    /// /validation, or none.
    /// - Throws: `TrainingError.invalidSetting(.validationFraction, …)` for
    ///   a fraction that leaves a part empty, or of rows its source would
    ///   read at random (`RowSource.checkHoldOut`); `ValidationError` for a
    ///   fraction given with a dataset that carries its own split.
    static func validationSplit(of train: Dataset, stored: Dataset?, settings: TrainingConfiguration,
                                dataPath: String) throws -> (train: Dataset, validation: Dataset?) {
        guard settings.validationFraction > 0 else { return (train, stored) }
        if stored != nil {
            throw ValidationError("\(Settings.validationFraction.flag) \(settings.validationFraction): \(dataPath) carries its own /validation "
                                  + "split; train with it (\(Settings.validationFraction.flag) 0) or with a dataset without one.")
        }
        let (kept, held) = try train.split(validationFraction: settings.validationFraction, seed: settings.seed)
        return (kept, held)
    }

    // MARK: - Distillation

    /// The teacher at `path` (`TeacherFile`), checked against the run: a
    /// teacher and a distillation weight come together, and its rows are
    /// /train's (`whole`) as the file holds them now. nil: no teacher.
    /// - Throws: `ValidationError` naming the flag, the file and what differs; `StorageError` for a damaged file.
    static func teacher(at path: String?, for whole: Dataset, dataPath: String, settings: TrainingConfiguration) throws -> TeacherFile? {
        guard let path else {
            if let α = settings.distillAlpha {
                throw ValidationError("\(Settings[\.distillAlpha].flag) \(α): name the teacher to distil from with \(Settings.teacher.flag) FILE "
                                      + "(`backprop ensemble` makes one).")
            }
            return nil
        }
        guard settings.distillAlpha != nil else {
            throw ValidationError("\(Settings.teacher.flag) \(path): give the teacher's weight too (\(Settings[\.distillAlpha].flag) α, e.g. 0.9).")
        }
        let teacher = try guardedRead(path) { try TeacherFile.read(path) }
        let fingerprint = whole.fingerprint
        guard teacher.dataFingerprint == fingerprint else {
            throw ValidationError("\(Settings.teacher.flag) \(path) holds a teacher's probabilities for other rows than /train of \(dataPath) "
                                  + "(its data fingerprint is '\(teacher.dataFingerprint)', the data's '\(fingerprint)'); make it with "
                                  + "`backprop ensemble --data \(dataPath)`.")
        }
        return teacher
    }

    /// Refuses a teacher whose members trained on other rows than the run's
    /// training part, or chose on another validation split: then the run's
    /// validation rows (which choose the run's epoch) might have fed the teacher.
    /// A run without a validation split may refit the members' rows: their
    /// training rows followed by their validation rows (`Dataset.isRefit`).
    /// - Throws: `ValidationError` naming --teacher and both fingerprints.
    static func checkTaughtRows(_ teacher: TeacherFile, path: String, train: Dataset, validation: Dataset?) throws {
        var (bareTrain, bareValidation) = (train, validation)
        bareTrain.teacher = nil
        bareValidation?.teacher = nil
        let rows = Dataset.record(training: bareTrain, validation: bareValidation)
        guard teacher.trainedOn != rows, !(bareValidation == nil && bareTrain.isRefit(of: teacher.trainedOn)) else { return }
        if bareValidation == nil, case .streamed = train.features, teacher.trainedOn.contains(Dataset.validationSeparator) {
            throw ValidationError("\(Settings.teacher.flag) \(path): its members chose on a validation split, and a refit on their rows is checked "
                                  + "with /train in memory; raise \(Settings.dataMemory.flag) (this run streams it).")
        }
        throw ValidationError("\(Settings.teacher.flag) \(path): its members trained on other rows than this run ('\(teacher.trainedOn)', "
                              + "this run's '\(rows)'), so this run's validation split may have taught them; train the teacher's members "
                              + "on this run's data and split (a split stored in the dataset: `backprop import … --validation-fraction`), "
                              + "or refit on their training rows followed by their validation rows, without a validation split.")
    }

    // MARK: - Settings

    /// The flags given on the command line, as edits of a configuration.
    var givenSettings: SettingEdits {
        var edits = SettingEdits()
        let groups: [any ConfigurationOptions] = [model, optimizer, batch, sampling, privacy, validation, distillation, schedule, threads]
        for group in groups { edits.add(group) }
        return edits
    }

    /// `base` edited by the given flags and checked. With `sampleCount` (the
    /// data's), the parts that depend on it are resolved too: the schedule's
    /// lengths, δ and σ of DP-SGD. Without it (before the data is read), only
    /// what the flags alone decide is checked. `resumed`: the checkpoint
    /// `base` was read from, which the refusals of a flag the run cannot take name.
    func resolvedConfiguration(base: TrainingConfiguration, sampleCount: Int?, resumed: String? = nil) throws -> TrainingConfiguration {
        var configuration = givenSettings.applied(to: base)
        try privacy.checkNeedsClip(base: base, resumed: resumed)
        try optimizer.checkOwners(of: configuration.optimizer.kind)
        guard let sampleCount else {
            try schedule.checkFlags(of: schedule.lrSchedule ?? ScheduleKind(configuration.schedule.shape), resumed: resumed)
            configuration.privacy = nil  // its NaNs are filled in from the data
            try configuration.validate()
            _ = try configuration.makeNetwork(Float.self)
            return configuration
        }
        // The run's length in steps is counted before anything uses it (DP-SGD's σ, the cosine's end).
        _ = try configuration.plannedSteps(sampleCount: sampleCount)
        try privacy.resolve(&configuration, sampleCount: sampleCount)
        if schedule.givesSchedule {
            configuration.schedule.shape = try schedule.shape(of: configuration, sampleCount: sampleCount, resumed: resumed)
        } else if case .cosine(let warmup, let total, let minimum) = configuration.schedule.shape,
                  total == (try? base.plannedSteps(sampleCount: sampleCount)) {
            // A run made longer or shorter on resume stretches the cosine it planned, which
            // then still ends at η_min on the run's last step (it never trains on at η_min).
            let planned = try configuration.plannedSteps(sampleCount: sampleCount)
            configuration.schedule.shape = .cosine(warmupSteps: warmup, totalSteps: planned, minimum: minimum)
        }
        try configuration.validate()
        _ = try configuration.makeNetwork(Float.self)
        return configuration
    }

    /// The defaults of a fresh run; workers default to the active cores.
    static func freshConfiguration() -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.workers = WorkerOptions.defaultCount
        return configuration
    }

    /// Refuses, before the data is read, each flag that the resumed run's
    /// rules forbid, judged against that run and worded for it: a fixed
    /// setting never changes, an overridable one only with --override. A
    /// flag that repeats the run's value changes nothing and is fine.
    private func checkResumeRules(of saved: TrainingConfiguration, checkpointPath: String) throws {
        // A setting left to its default has the default's value (--sampling shuffle repeats a run that gave none).
        func effective(_ configuration: TrainingConfiguration) -> TrainingConfiguration {
            var configuration = configuration
            configuration.sampling = configuration.samplingMethod
            return configuration
        }
        let run = RecordedRun(configuration: effective(saved), dataPath: "", policy: CheckpointPolicy())
        for edit in givenSettings.all {
            var edited = saved
            edit.apply(&edited)
            let setting = edit.setting
            guard effective(edited) != effective(saved) else { continue }
            // What the run has: its value of the setting, or that it was trained without one.
            let has = setting.record(run).map { "has \(setting.flag) \(Settings.shown($0))" } ?? "was trained without \(setting.flag)"
            switch setting.rule {
            case .fixed:
                throw ValidationError("\(setting.flag): the run saved in \(checkpointPath) \(has), and it cannot change on resume "
                                      + "(start a new run instead).")
            case .overridable where !override:
                throw ValidationError("\(setting.flag): the run saved in \(checkpointPath) \(has); add --override to change it.")
            case .overridable, .free:
                break
            }
        }
    }

    /// Refuses what the flags resolve to against the data that the run's rules
    /// forbid (checked flag by flag before, by `checkResumeRules`): a schedule
    /// the --lr-* flags change without --override, and DP-SGD's σ or δ.
    private func checkUnchanged(from saved: TrainingConfiguration, to configuration: TrainingConfiguration,
                                checkpointPath: String) throws {
        if configuration.schedule != saved.schedule && !override {
            let flags = schedule.givenScheduleFlags.joined(separator: ", ")
            throw ValidationError("\(flags): the run saved in \(checkpointPath) has the schedule \(saved.schedule.shape.summary); "
                                  + "add --override to change it.")
        }
        // σ from --dp-epsilon over the resumed run's steps, or δ's default: DP-SGD's settings define the run.
        if configuration.privacy != saved.privacy {
            let flags = privacy.given.map(\.flag).joined(separator: ", ")
            let has = saved.privacy.map { "has σ \($0.noise) and δ \($0.delta)" } ?? "was trained without DP-SGD"
            throw ValidationError("\(flags.isEmpty ? "DP-SGD" : flags): the run saved in \(checkpointPath) \(has), which cannot change on resume "
                                  + "(start a new run instead).")
        }
    }

    /// Runs `body`, turning Core's errors into `ValidationError`s that name the flags.
    @discardableResult
    static func checked<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as TrainingError {
            throw ValidationError(error.description(naming: Settings.flag))
        }
    }

    // MARK: - Files

    /// The checkpoint to resume from: a file, or a run directory's newest
    /// valid checkpoint (warning about each one skipped).
    static func locate(_ path: String) throws -> (checkpoint: Checkpoint, path: String) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw StorageError.io(path: path, reason: "no such run directory or checkpoint file to resume from")
        }
        let found: (checkpoint: Checkpoint, path: String) = isDirectory.boolValue
            ? try RunDirectory(path).newestValidCheckpoint { log.warning("\($0)") }
            : (try guardedRead(path) { try Checkpoint.load(from: path) }, path)
        if found.checkpoint.isModelOnly {
            throw ValidationError("\(Settings.resume.flag) \(found.path): it holds a model without its run (no data fingerprint, no "
                                  + "optimizer state to go on from), so it cannot be resumed; evaluate, predict or export it, or train a new run.")
        }
        return found
    }

    /// Whether `path` is a directory.
    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// The run directory a checkpoint file belongs to.
    static func runDirectory(of checkpointPath: String) -> String {
        URL(fileURLWithPath: checkpointPath).deletingLastPathComponent().relativePath
    }

    /// runs/<date-time> (made unique by `RunDirectory.createUnique`).
    /// Local time, from the Gregorian calendar of FoundationEssentials: a
    /// DateFormatter would load ICU's formatting tables (6 MiB resident) for it.
    static func defaultRunName() -> String {
        let time = Calendar(identifier: .gregorian).dateComponents(in: .current, from: Date())
        func digits(_ value: Int?, _ width: Int) -> String {
            let text = String(value ?? 0)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return digits(time.year, 4) + digits(time.month, 2) + digits(time.day, 2) + "-"
            + digits(time.hour, 2) + digits(time.minute, 2) + digits(time.second, 2)
    }
}

/// A wall-clock interval such as "90s", "10m", "1h" or plain seconds. Any
/// number parses; `validate` refuses one that is not a positive duration, by flag.
struct WallInterval: ExpressibleByArgument {
    let seconds: Double
    /// As given.
    let text: String

    init?(argument: String) {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
        var number = argument.trimmingCharacters(in: .whitespaces)
        var unit = 1.0
        if let last = number.last, let factor = units[last] {
            unit = factor
            number.removeLast()
        }
        guard let value = Double(number) else { return nil }
        (seconds, text) = (value * unit, argument)
    }

    /// Whether it is a duration a policy can wait: finite and positive.
    var isDuration: Bool { seconds.isFinite && seconds > 0 }
}
