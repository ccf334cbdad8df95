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
    @OptionGroup var precision: PrecisionOptions
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
    var logEvery: Int?
    @Flag(name: Settings.tensorboard.name, inversion: .prefixedNo, help: Settings.tensorboard.help)
    var tensorboard: Bool?
    @Flag(name: Settings.logGradNorms.name, help: Settings.logGradNorms.help)
    var logGradNorms = false
    @Flag(name: Settings.logNoiseScale.name, help: Settings.logNoiseScale.help)
    var logNoiseScale = false

    func validate() throws {
        try refuseOutOfDomain(in: self)
        if quiet && verbose { throw ValidationError("--quiet and --verbose contradict each other; give one.") }
        if let checkpointInterval, !checkpointInterval.isDuration {
            throw ValidationError("\(Settings.checkpointInterval.flag): \(checkpointInterval.text) is not a duration > 0 (seconds, or a number with s, m or h).")
        }
        if override && resume == nil { throw ValidationError("--override only applies with --resume.") }
        if format != nil && !printConfig { throw ValidationError("--format only applies with --print-config.") }
        if resume == nil {
            // A fresh run is checked as far as the flags alone decide before any
            // file is touched; run() resolves the rest once the data is read.
            try Settings.namingFlags { try resolvedConfiguration(base: Train.freshConfiguration(), sampleCount: nil) }
        }
    }

    func run() throws {
        let job = Job.start()
        try job.run { try run(in: job) }
    }

    /// The run, as one rank of `job` (or the one process): set up (nothing
    /// written), printed as settings, or trained in its run directory.
    private func run(in job: Job) throws {
        let startUp = ContinuousClock.now
        StopSignals.watchParent()
        let setup = try RunSetup(self, job: job)
        if printConfig {
            // The setup checked it as a run would; what it prints, given back as --config, is this run.
            let settings = Settings.recorded(RecordedRun(configuration: setup.configuration, dataPath: setup.dataPath, policy: setup.policy,
                                                         teacherPath: setup.teacherPath, free: freeSettings))
            if job.isWriter { print(try SettingsFile.text(settings, json: format == .json, free: Settings.freeKeys), terminator: "") }
            return
        }
        try job.agree(on: setup.trainer, dataFingerprint: setup.fingerprint)
        if job.size > 1 && (logGradNorms || logNoiseScale) {
            throw ValidationError("--log-grad-norms and --log-noise-scale measure one process's samples; run them without mpirun.")
        }
        setup.trainer.measuresSampleNorms = logGradNorms
        setup.trainer.measuresNoiseScale = logNoiseScale
        if job.isWriter { warnAboutPrivacy(setup) }
        if job.isWriter && !quiet && setup.trainer.products.emulatesBF16 {
            print("note: without AVX512_BF16 on this path, the products are \(setup.trainer.products.summary): the same bits, at about fp32's speed")
        }
        let (directory, continuing) = try runDirectory(for: setup, job: job)
        let lock = job.isWriter ? try directory.prepare(continuing: continuing) : nil
        if verbose && job.isWriter {
            let workers = setup.configuration.workers
            if job.size > 1 { print("job: \(job.size) ranks of \(workers) worker\(workers == 1 ? "" : "s") each") }
            print("kernel: \(setup.kernel.summary); every path gives the same bits")
            print("precision: \(setup.trainer.products.summary)")
            print(String(format: "start-up (checkpoint, data, fingerprint, workspaces): %.3f s", (ContinuousClock.now - startUp) / .seconds(1)))
        }
        if let (checkpoint, path) = setup.resumed, !quiet, job.isWriter {
            print("resuming \(path) at epoch \(checkpoint.position.epoch + 1), batch \(checkpoint.position.batch), step \(checkpoint.position.step)")
        }
        let run = try trainingRun(setup, in: directory, continuing: continuing, job: job)
        // The run directory stays this process's until the run ends.
        try withExtendedLifetime(lock) { try run.start() }
    }

    /// DP-SGD's warnings: a resume that spends more ε than the run planned, and a fresh run's public seed.
    private func warnAboutPrivacy(_ setup: RunSetup) {
        guard let privacy = setup.configuration.privacy else { return }
        let (configuration, samples) = (setup.configuration, setup.train.count)
        if let (checkpoint, _) = setup.resumed,
           let before = try? checkpoint.configuration.plannedSteps(sampleCount: samples),
           let after = try? configuration.plannedSteps(sampleCount: samples), after > before,
           let planned = setup.trainer.privacySpent(steps: before), let extended = setup.trainer.privacySpent(steps: after) {
            let message = "the resumed run plans \(after) steps where the run planned \(before): DP-SGD then spends "
                + "ε = \(String(format: "%.3f", extended.epsilon)) instead of \(String(format: "%.3f", planned.epsilon)) (δ = \(privacy.delta))."
            log.warning("\(message)")
        }
        if sampling.seed == nil && setup.resumed == nil {
            log.warning("""
                DP-SGD's noise is keyed by --seed, and the default seed \(configuration.seed) is public: anyone who knows the seed \
                can subtract the noise. Give a secret --seed (every checkpoint stores it: release only `backprop export` output).
                """)
        }
    }

    /// The run directory: --run-dir, the resumed run's, or a new runs/<date-time>
    /// (rank 0 alone holds and writes it; the other ranks of a job name it only),
    /// and whether the run continues the run that directory holds.
    private func runDirectory(for setup: RunSetup, job: Job) throws -> (RunDirectory, continuing: Bool) {
        let resumedDirectory = setup.resumed.map { RunFiles.runDirectory(of: $0.path) }
        let directory = try runDir.map(RunDirectory.init) ?? resumedDirectory.map(RunDirectory.init)
            ?? (job.isWriter ? RunDirectory.createUnique(in: "runs", named: RunFiles.defaultName()) : RunDirectory("runs"))
        // A resume continues its own run directory; another one must not hold a run of its own.
        let continuing = resumedDirectory.map {
            URL(fileURLWithPath: $0).standardizedFileURL == URL(fileURLWithPath: directory.path).standardizedFileURL
        } ?? false
        // Resuming an older checkpoint file where the run went on would write a second
        // timeline over the first (its checkpoints, last.h5, best.h5, metrics.csv). (A
        // resume of the directory takes its newest valid checkpoint: newer ones are damaged.)
        if continuing, let resume, !RunFiles.isDirectory(resume), let (checkpoint, path) = setup.resumed,
           let newest = directory.checkpoints().first, newest.step > checkpoint.position.step {
            throw ValidationError("\(path) is at step \(checkpoint.position.step), but the run in \(directory.path) went on to step "
                                  + "\(newest.step) (\(newest.path)); resume the newest, or give \(Settings.runDir.flag) NEW_DIR to branch from this one.")
        }
        return (directory, continuing)
    }

    /// The training run of `setup` in `directory`, with its outputs as the flags say.
    private func trainingRun(_ setup: RunSetup, in directory: RunDirectory, continuing: Bool, job: Job) throws -> TrainingRun {
        let verbosity: Verbosity = !job.isWriter ? .silent : quiet ? .quiet : verbose ? .verbose : .normal
        // mpirun gives ranks a pseudo-terminal even when its own output is a pipe: plain lines in a job.
        let progress = ProgressReporter(verbosity: verbosity, logEvery: logEvery ?? ProgressReporter.defaultLogEvery, isTerminal: job.mpi == nil && isatty(STDOUT_FILENO) == 1)
        let run = try TrainingRun(trainer: setup.trainer, validation: setup.validation, test: setup.test, dataPath: setup.dataPath,
                                  fingerprint: setup.fingerprint, directory: directory, policy: setup.policy,
                                  output: output ?? directory.modelPath, progress: progress, writes: job.isWriter,
                                  resumedFrom: setup.resumed?.path)
        run.classNames = setup.classNames
        run.teacherPath = setup.teacherPath
        run.testReport = validation.testReport
        run.freeSettings = freeSettings
        // A resume into another directory carries the epoch log of the run it branches from.
        if let (_, path) = setup.resumed, !continuing { run.earlierMetrics = RunDirectory(RunFiles.runDirectory(of: path)).metricsPath }
        (run.writesEvents, run.logEvery) = (tensorboard ?? true, logEvery ?? ProgressReporter.defaultLogEvery)
        return run
    }
}

extension Train: OptionDomains {
    static let domains: [String: SettingDomain] = ["checkpointEvery": .atLeast(0), "keep": .atLeast(1), "logEvery": .atLeast(0)]
}
