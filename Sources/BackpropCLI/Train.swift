import ArgumentParser
import BackpropCore
import BackpropHDF5
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
        The defaults train the reference model: 784-256-128-10, ReLU, softmax cross-entropy, \
        SGD with momentum 0.9, learning rate 0.05, batch 256, 10 epochs, on all cores. \
        A checkpoint is written to the run directory after every epoch (and as --checkpoint-every \
        and --checkpoint-interval say); SIGINT, SIGTERM or SIGHUP (or a closed standard output) writes one and stops. \
        `backprop train --resume RUN_DIR` continues exactly where the run stopped.
        """)

    // Model, data and optimizer: fixed for the life of a run.
    @Option(help: "The HDF5 dataset (see `backprop import`). (default: datasets/fashion-mnist.h5)")
    var data: String?
    @Option(help: "Layer widths from input to output. (default: 784,256,128,10)")
    var layers: LayerSizes?
    @Option(help: "Hidden activation: relu, leaky-relu, tanh, sigmoid, identity. (default: relu)")
    var activation: Activation?
    @Option(help: "Output activation (default: softmax for cross-entropy, identity for sum-of-squares).")
    var outputActivation: Activation?
    @Option(help: "Loss: cross-entropy or sum-of-squares. (default: cross-entropy)")
    var loss: Loss?
    @Option(name: .customLong("init"), help: "Initialisation: pytorch, he, xavier. (default: pytorch)")
    var initialization: Initialization?
    @Option(help: "Optimizer: sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad. (default: momentum)")
    var optimizer: OptimizerKind?
    @Option(help: "Momentum μ (momentum, nesterov; rmsprop, where it defaults to 0). (default: 0.9)")
    var momentum: Double?
    @Option(help: "RMSprop: α, the smoothing constant of the squared gradients. (default: 0.99)")
    var rmspropAlpha: Double?
    @Flag(help: "RMSprop: centre the second moment by the mean gradient.")
    var centered = false
    @Option(help: "Adagrad: the learning-rate decay, η_t = η/(1 + (t − 1)·decay). (default: 0)")
    var lrDecay: Double?
    @Option(help: "Adagrad: the accumulator's starting value. (default: 0)")
    var initialAccumulator: Double?
    @Option(help: "Weight decay λ (L2 for sgd/momentum/nesterov/adam, decoupled for adamw). (default: 0)")
    var weightDecay: Double?
    @Option(help: "Samples per mini-batch. (default: 256)")
    var batchSize: Int?
    @Flag(inversion: .prefixedNo, help: "Visit the samples in a seeded shuffle each epoch, or in file order. (default: --shuffle)")
    var shuffle: Bool?
    @Option(help: "Samples per shard; fixes the summation order, so results do not depend on --workers. (default: 128)")
    var shardSize: Int?
    @Option(help: "Seed for initialisation and shuffling. (default: 0)")
    var seed: UInt64?
    @Option(help: "mean: step along the batch-mean gradient; sum: along the summed gradient. (default: mean)")
    var reduction: Reduction?
    @Option(help: "How steps pick samples: shuffle (batches of an epoch's shuffle) or poisson (each sample with probability batch/N). (default: poisson with DP-SGD, else shuffle)")
    var sampling: Sampling?

    // DP-SGD: fixed for the life of a run.
    @Option(help: "DP-SGD: clip each per-sample gradient to this L2 norm C (turns DP-SGD on).")
    var dpClip: Double?
    @Option(help: "DP-SGD: the noise multiplier σ (noise N(0, σ²C²) on each summed gradient element).")
    var dpNoise: Double?
    @Option(help: "DP-SGD: pick σ so that the planned steps spend this ε (instead of --dp-noise).")
    var dpEpsilon: Double?
    @Option(help: "DP-SGD: the δ of the (ε, δ) reported. (default: 1/N rounded down to a power of ten)")
    var dpDelta: Double?

    // How long and how fast: may change on resume with --override.
    @Option(help: "Learning rate η (the schedule's base rate). (default: 0.05)")
    var learningRate: Double?
    @Option(help: "Learning-rate schedule: constant, step, cosine. (default: constant)")
    var lrSchedule: ScheduleKind?
    @Option(help: "step: multiply η by --lr-gamma every this many steps. (default: one epoch)")
    var lrStepSize: Int?
    @Option(help: "step: the decay factor γ. (default: 0.1)")
    var lrGamma: Double?
    @Option(help: "cosine: steps of linear warm-up from 0 to η. (default: 0)")
    var warmupSteps: Int?
    @Option(help: "cosine: the rate η_min reached at the last step. (default: 0)")
    var minLr: Double?
    @Option(help: "Epochs to train in all (0 writes the freshly initialised model). (default: 10)")
    var epochs: Int?
    @Option(help: "Stop after this many optimizer steps in all.")
    var steps: Int?

    // Neither changes the results: free on resume.
    @Option(help: "Worker threads (default: the active cores).")
    var workers: Int?
    @Option(help: KernelChoice.help)
    var kernel: KernelChoice = .auto
    @Option(help: "The run directory for checkpoints (default: runs/<date-time>, or the resumed run's).")
    var runDir: String?
    @Option(help: "Where to write the final model (default: <run-dir>/model.h5).")
    var output: String?
    @Option(help: "Also write a checkpoint every N optimizer steps (0: off).")
    var checkpointEvery = 0
    @Flag(inversion: .prefixedNo, help: "Write a checkpoint after every epoch.")
    var checkpointEveryEpoch = true
    @Option(help: "Also write a checkpoint when this much wall time has passed since the last (e.g. 90s, 10m, 1h).")
    var checkpointInterval: WallInterval?
    @Option(help: "Step checkpoints to keep (best.h5 and last.h5 are kept besides).")
    var keep = 3

    @Option(help: "A JSON file of settings, keys named like the flags (\"learning-rate\": 0.05); flags given here win.")
    var config: String?
    @Option(help: "Resume from a run directory (its newest valid checkpoint) or a checkpoint file.")
    var resume: String?
    @Flag(help: "On --resume, allow changing the epochs, steps and learning-rate schedule.")
    var override = false
    @Flag(help: "Print the kernel path and the start-up time.")
    var verbose = false
    @Flag(help: "Print only the final line (and errors).")
    var quiet = false
    @Option(help: "When output is not a terminal, also print a line every N steps (0: per epoch only).")
    var logEvery = 0
    @Flag(help: "Log the quantiles of the per-sample gradient norms each epoch (to choose --dp-clip).")
    var logGradNorms = false
    @Flag(help: "Log the gradient noise scale B_simple each epoch (the batch size beyond which larger batches stop paying).")
    var logNoiseScale = false

    static let defaultData = "datasets/fashion-mnist.h5"

    func validate() throws {
        if quiet && verbose { throw ValidationError("--quiet and --verbose contradict each other; give one.") }
        if logEvery < 0 { throw ValidationError("--log-every \(logEvery) is invalid: it must be 0 (off) or more.") }
        if checkpointEvery < 0 { throw ValidationError("--checkpoint-every \(checkpointEvery) is invalid: it must be 0 (off) or more.") }
        if keep < 1 { throw ValidationError("--keep \(keep) is invalid: keep at least 1 checkpoint.") }
        if override && resume == nil { throw ValidationError("--override only applies with --resume.") }
        if momentum != nil, let optimizer, ![.momentum, .nesterov, .rmsprop].contains(optimizer) {
            throw ValidationError("--momentum applies only to --optimizer momentum, nesterov or rmsprop, not \(optimizer.rawValue).")
        }

        if dpClip == nil, let flag = [("--dp-noise", dpNoise), ("--dp-epsilon", dpEpsilon), ("--dp-delta", dpDelta)].first(where: { $0.1 != nil })?.0 {
            throw ValidationError("\(flag) needs --dp-clip (the clipping bound C turns DP-SGD on).")
        }
        if dpNoise != nil && dpEpsilon != nil { throw ValidationError("--dp-noise and --dp-epsilon both set σ; give one.") }
        if let dpEpsilon, !(dpEpsilon.isFinite && dpEpsilon > 0) {
            throw ValidationError("--dp-epsilon \(dpEpsilon) is invalid: it must be a finite number > 0.")
        }
        if epochs == 0, let steps {
            throw ValidationError("--steps \(steps) cannot be reached with --epochs 0; drop one of them.")
        }
        _ = try kernel.resolved()
        if resume == nil {
            // A fresh run can be checked completely before any file is touched.
            // The sample count is known only once the data is read: take plenty
            // here, and check the schedule's length again in run().
            try Train.checked { try resolvedConfiguration(base: Train.freshConfiguration(), sampleCount: 1 << 30) }
        }
    }

    func run() throws {
        let job = Job.start()
        try job.run { try run(in: job) }
    }

    /// The run, as one rank of `job` (or the one process).
    private func run(in job: Job) throws {
        let startUp = ContinuousClock.now
        Backprop.setUp()
        let kernel = try self.kernel.resolved()
        var resumed: (checkpoint: Checkpoint, path: String)?
        if let resume { resumed = try Train.locate(resume) }

        let base = resumed?.checkpoint.configuration ?? Train.freshConfiguration()
        let dataPath = data ?? resumed?.checkpoint.dataPath ?? Train.defaultData
        if let output { try refuseOverwritingInputs(output, flag: "--output", inputs: [dataPath] + (resumed.map { [$0.path] } ?? [])) }
        let (train, test, classNames) = try guardedRead(dataPath) {
            let file = try HDF5File.open(dataPath)
            let (train, test) = try DatasetFile.load(file)
            return (train, test, try DatasetFile.classNames(of: file))
        }
        var configuration = try Train.checked { try resolvedConfiguration(base: base, sampleCount: train.count) }
        // The cores are shared among this machine's ranks, unless --workers says otherwise.
        if workers == nil && job.mpi != nil { configuration.workers = job.defaultWorkers }
        let fingerprint = train.fingerprint

        let trainer: Trainer
        if let (checkpoint, path) = resumed {
            try checkUnchanged(from: checkpoint.configuration, to: configuration, checkpointPath: path)
            guard checkpoint.dataFingerprint == fingerprint else {
                throw ValidationError("\(data == nil ? "dataset" : "--data") \(dataPath) is not the data checkpoint \(path) was trained on "
                                      + "(its fingerprint is '\(fingerprint)', the checkpoint's '\(checkpoint.dataFingerprint)').")
            }
            trainer = try Trainer(configuration: configuration, dataset: train, network: checkpoint.network, kernel: kernel,
                                  group: job.group)
            trainer.restore(position: checkpoint.position, optimizerState: checkpoint.optimizerState,
                            order: checkpoint.order, history: checkpoint.history)
            trainer.lastCheckpoint = path
        } else {
            trainer = try Trainer(configuration: configuration, dataset: train, kernel: kernel, group: job.group)
        }
        try test.validate(for: trainer.network)
        try job.agree(on: trainer, dataFingerprint: fingerprint)
        if job.size > 1 && (logGradNorms || logNoiseScale) {
            throw ValidationError("--log-grad-norms and --log-noise-scale measure one process's samples; run them without mpirun.")
        }
        trainer.measuresSampleNorms = logGradNorms
        trainer.measuresNoiseScale = logNoiseScale
        if configuration.privacy != nil && seed == nil && resumed == nil && job.isWriter {
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
        let lock = job.isWriter ? try directory.prepare(continuing: continuing) : nil
        let policy = CheckpointPolicy(everySteps: checkpointEvery, everyEpoch: checkpointEveryEpoch,
                                      interval: checkpointInterval?.seconds, keep: keep)
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
        let run = TrainingRun(trainer: trainer, test: test, dataPath: dataPath, fingerprint: fingerprint,
                              directory: directory, policy: policy, output: output ?? directory.modelPath, progress: progress,
                              writes: job.isWriter)
        run.classNames = classNames
        // The run directory stays this process's until the run ends.
        try withExtendedLifetime(lock) { try run.start() }
    }

    // MARK: - Settings

    /// What a flag may do to a resumed run.
    enum Mutability {
        /// It defines the run (model, data, optimizer): never changes on resume.
        case fixed
        /// It changes how long or how fast the run goes: only with --override.
        case overridable
        /// It cannot change the results (the worker count): always allowed.
        case free
    }

    /// One flag that was given, and how it changes a configuration.
    struct Setting {
        let flag: String
        let mutability: Mutability
        let apply: (inout TrainingConfiguration) -> Void
    }

    /// The flags given on the command line, as edits of a configuration.
    var givenSettings: [Setting] {
        var settings: [Setting] = []
        func add<Value>(_ flag: String, _ value: Value?, _ mutability: Mutability,
                        _ apply: @escaping (inout TrainingConfiguration, Value) -> Void) {
            if let value { settings.append(Setting(flag: flag, mutability: mutability) { apply(&$0, value) }) }
        }
        add("--layers", layers, .fixed) { $0.sizes = $1.sizes }
        add("--activation", activation, .fixed) { $0.hiddenActivation = $1 }
        add("--output-activation", outputActivation, .fixed) { $0.outputActivation = $1 }
        add("--loss", loss, .fixed) { $0.loss = $1 }
        add("--init", initialization, .fixed) { $0.initialization = $1 }
        // Another rule starts from PyTorch's defaults for it (the learning rate and weight decay carried over).
        add("--optimizer", optimizer, .fixed) { c, kind in
            guard c.optimizer.kind != kind else { return }
            var settings = OptimizerSettings.defaults(for: kind, learningRate: c.optimizer.learningRate)
            settings.weightDecay = c.optimizer.weightDecay
            c.optimizer = settings
        }
        add("--momentum", momentum, .fixed) { $0.optimizer.momentum = $1 }
        add("--weight-decay", weightDecay, .fixed) { $0.optimizer.weightDecay = $1 }
        add("--rmsprop-alpha", rmspropAlpha, .fixed) { $0.optimizer.alpha = $1 }
        add("--centered", centered ? true : nil, .fixed) { $0.optimizer.centered = $1 }
        add("--lr-decay", lrDecay, .fixed) { $0.optimizer.learningRateDecay = $1 }
        add("--initial-accumulator", initialAccumulator, .fixed) { $0.optimizer.initialAccumulator = $1 }
        add("--batch-size", batchSize, .fixed) { $0.batchSize = $1 }
        add("--shuffle", shuffle, .fixed) { $0.shuffle = $1 }
        add("--shard-size", shardSize, .fixed) { $0.shardSize = $1 }
        add("--seed", seed, .fixed) { $0.seed = $1 }
        add("--reduction", reduction, .fixed) { $0.reduction = $1 }
        add("--sampling", sampling, .fixed) { $0.sampling = $1 }
        // NaN marks what resolvedConfiguration fills in (σ from --dp-epsilon, the default δ).
        add("--dp-clip", dpClip, .fixed) { c, clip in
            c.privacy = DifferentialPrivacy(clip: clip, noise: c.privacy?.noise ?? .nan, delta: c.privacy?.delta ?? .nan)
        }
        add("--dp-noise", dpNoise, .fixed) { $0.privacy?.noise = $1 }
        add("--dp-delta", dpDelta, .fixed) { $0.privacy?.delta = $1 }
        add("--learning-rate", learningRate, .overridable) { $0.optimizer.learningRate = $1 }
        add("--epochs", epochs, .overridable) { $0.epochs = $1 }
        add("--steps", steps, .overridable) { $0.steps = $1 }
        add("--workers", workers, .free) { $0.workers = $1 }
        return settings
    }

    /// `base` edited by the given flags, with the schedule resolved against
    /// the run's length.
    func resolvedConfiguration(base: TrainingConfiguration, sampleCount: Int) throws -> TrainingConfiguration {
        var configuration = base
        for setting in givenSettings { setting.apply(&configuration) }
        let kind = configuration.optimizer.kind
        for (flag, given, owner) in [("--rmsprop-alpha", rmspropAlpha != nil, OptimizerKind.rmsprop), ("--centered", centered, .rmsprop),
                                     ("--lr-decay", lrDecay != nil, .adagrad), ("--initial-accumulator", initialAccumulator != nil, .adagrad)]
        where given && kind != owner {
            throw ValidationError("\(flag) applies only to --optimizer \(owner.rawValue), not \(kind.rawValue).")
        }
        let batchesPerEpoch = Epochs.batches(of: sampleCount, in: max(configuration.batchSize, 1))
        if var privacy = configuration.privacy {
            // δ: 1/N rounded down to a power of ten; σ: given, or the smallest that spends --dp-epsilon.
            if privacy.delta.isNaN { privacy.delta = pow(10, (log10(1 / Double(max(sampleCount, 2)))).rounded(.down)) }
            if let dpEpsilon {
                let q = Double(min(configuration.batchSize, sampleCount)) / Double(sampleCount)
                let steps = configuration.steps ?? configuration.epochs * batchesPerEpoch
                guard let σ = PrivacyAccountant.noise(forEpsilon: dpEpsilon, samplingRate: q, steps: max(steps, 1), delta: privacy.delta) else {
                    throw ValidationError("--dp-epsilon \(dpEpsilon): no noise multiplier up to 1,000 spends so little in \(steps) steps at q = \(q).")
                }
                privacy.noise = σ
            }
            if privacy.noise.isNaN { throw ValidationError("--dp-clip needs --dp-noise σ or --dp-epsilon ε.") }
            configuration.privacy = privacy
            if configuration.sampling == nil { configuration.sampling = .poisson }
        }
        let scheduleGiven = lrSchedule != nil || lrStepSize != nil || lrGamma != nil || warmupSteps != nil || minLr != nil
        if scheduleGiven {
            configuration.schedule = try schedule(editing: configuration.schedule, configuration: configuration,
                                                  batchesPerEpoch: batchesPerEpoch)
        }
        try configuration.validate()
        _ = try configuration.makeNetwork(Float.self)
        return configuration
    }

    /// The schedule the --lr-* flags describe, starting from `current`.
    private func schedule(editing current: LearningRateSchedule, configuration: TrainingConfiguration,
                          batchesPerEpoch: Int) throws -> LearningRateSchedule {
        let kind = lrSchedule ?? ScheduleKind(current)
        switch kind {
        case .constant:
            for (flag, value) in [("--lr-step-size", lrStepSize as Any?), ("--lr-gamma", lrGamma), ("--warmup-steps", warmupSteps), ("--min-lr", minLr)]
            where value != nil {
                throw ValidationError("\(flag) needs --lr-schedule step or cosine.")
            }
            return .constant
        case .step:
            if warmupSteps != nil || minLr != nil { throw ValidationError("--warmup-steps and --min-lr need --lr-schedule cosine.") }
            var (stepSize, gamma) = (batchesPerEpoch, 0.1)
            if case .stepDecay(let s, let g) = current { (stepSize, gamma) = (s, g) }
            return .stepDecay(stepSize: lrStepSize ?? stepSize, gamma: lrGamma ?? gamma)
        case .cosine:
            if lrStepSize != nil || lrGamma != nil { throw ValidationError("--lr-step-size and --lr-gamma need --lr-schedule step.") }
            var (warmup, minimum) = (0, 0.0)
            if case .cosine(let w, _, let m) = current { (warmup, minimum) = (w, m) }
            // The cosine reaches η_min at the run's last step.
            let total = configuration.steps ?? configuration.epochs * batchesPerEpoch
            return .cosine(warmupSteps: warmupSteps ?? warmup, totalSteps: total, minimum: minLr ?? minimum)
        }
    }

    /// A configuration and a checkpoint policy as the flags that give them,
    /// keyed by flag name without the dashes (the inverse of `givenSettings`):
    /// what config.json holds, so that `--config` reproduces the run.
    static func settings(of c: TrainingConfiguration, dataPath: String, policy: CheckpointPolicy) -> [String: Any] {
        var settings: [String: Any] = [
            "data": dataPath, "layers": c.sizes, "activation": c.hiddenActivation.rawValue, "loss": c.loss.rawValue,
            "init": c.initialization.rawValue, "optimizer": c.optimizer.kind.rawValue,
            "learning-rate": c.optimizer.learningRate, "weight-decay": c.optimizer.weightDecay,
            "batch-size": c.batchSize, "epochs": c.epochs, "shuffle": c.shuffle, "shard-size": c.shardSize,
            "seed": c.seed, "reduction": c.reduction.rawValue, "workers": c.workers,
            "checkpoint-every": policy.everySteps, "checkpoint-every-epoch": policy.everyEpoch, "keep": policy.keep,
        ]
        if let output = c.outputActivation { settings["output-activation"] = output.rawValue }
        if let steps = c.steps { settings["steps"] = steps }
        if let interval = policy.interval { settings["checkpoint-interval"] = interval }
        switch c.optimizer.kind {
        case .momentum, .nesterov: settings["momentum"] = c.optimizer.momentum
        case .rmsprop:
            settings["momentum"] = c.optimizer.momentum
            if let alpha = c.optimizer.alpha { settings["rmsprop-alpha"] = alpha }
            if c.optimizer.isCentered { settings["centered"] = true }
        case .adagrad:
            if let decay = c.optimizer.learningRateDecay { settings["lr-decay"] = decay }
            if let start = c.optimizer.initialAccumulator { settings["initial-accumulator"] = start }
        case .sgd, .adam, .adamw: break
        }
        switch c.schedule {
        case .constant: settings["lr-schedule"] = "constant"
        case .stepDecay(let size, let gamma): (settings["lr-schedule"], settings["lr-step-size"], settings["lr-gamma"]) = ("step", size, gamma)
        case .cosine(let warmup, _, let minimum):  // the length follows from the run's epochs or steps
            (settings["lr-schedule"], settings["warmup-steps"], settings["min-lr"]) = ("cosine", warmup, minimum)
        }
        if let sampling = c.sampling { settings["sampling"] = sampling.rawValue }
        if let privacy = c.privacy {
            (settings["dp-clip"], settings["dp-noise"], settings["dp-delta"]) = (privacy.clip, privacy.noise, privacy.delta)
        }
        return settings
    }

    /// The defaults of a fresh run; workers default to the active cores.
    static func freshConfiguration() -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.workers = ProcessInfo.processInfo.activeProcessorCount
        return configuration
    }

    /// Refuses flags that would change a resumed run: fixed ones always,
    /// overridable ones unless --override was given. Flags that repeat the
    /// checkpoint's value are fine.
    private func checkUnchanged(from saved: TrainingConfiguration, to configuration: TrainingConfiguration,
                                checkpointPath: String) throws {
        for setting in givenSettings {
            var edited = saved
            setting.apply(&edited)
            guard edited != saved else { continue }
            switch setting.mutability {
            case .fixed:
                throw ValidationError("\(setting.flag) would change the run saved in \(checkpointPath); "
                                      + "it cannot change on resume (start a new run instead).")
            case .overridable where !override:
                throw ValidationError("\(setting.flag) differs from the run saved in \(checkpointPath); add --override to change it.")
            case .overridable, .free:
                break
            }
        }
        if configuration.schedule != saved.schedule && !override {
            throw ValidationError("the --lr-* flags change the schedule saved in \(checkpointPath); add --override to change it.")
        }
    }

    /// Validation errors from the core, named by their flag.
    @discardableResult
    static func checked<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as TrainingError {
            guard case .invalidSetting(let name, let value, let reason) = error else { throw ValidationError(error.description(naming: Backprop.flag)) }
            throw ValidationError("\(flags[name] ?? name) \(value) is invalid: \(reason).")
        }
    }

    /// Flag names for the settings TrainingConfiguration.validate() checks.
    static let flags = ["batch size": "--batch-size", "epochs": "--epochs", "steps": "--steps",
                        "workers": "--workers", "shard size": "--shard-size",
                        "learning rate": "--learning-rate", "momentum": "--momentum",
                        "weight decay": "--weight-decay", "schedule step size": "--lr-step-size",
                        "schedule gamma": "--lr-gamma", "warm-up steps": "--warmup-steps",
                        "schedule total steps": "the cosine schedule's length in steps (--epochs × batches per epoch, or --steps)",
                        "minimum learning rate": "--min-lr", "RMSprop alpha": "--rmsprop-alpha",
                        "learning-rate decay": "--lr-decay", "initial accumulator": "--initial-accumulator", "clipping bound": "--dp-clip", "noise multiplier": "--dp-noise",
                        "privacy delta": "--dp-delta"]

    // MARK: - Files

    /// The checkpoint to resume from: a file, or a run directory's newest
    /// valid checkpoint (warning about each one skipped).
    static func locate(_ path: String) throws -> (checkpoint: Checkpoint, path: String) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw StorageError.io(path: path, reason: "no such run directory or checkpoint file to resume from")
        }
        if !isDirectory.boolValue { return (try guardedRead(path) { try Checkpoint.load(from: path) }, path) }
        return try RunDirectory(path).newestValidCheckpoint { log.warning("\($0)") }
    }

    /// The run directory a checkpoint file belongs to.
    static func runDirectory(of checkpointPath: String) -> String {
        URL(fileURLWithPath: checkpointPath).deletingLastPathComponent().relativePath
    }

    /// runs/<date-time> (made unique by `RunDirectory.createUnique`).
    static func defaultRunName() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return formatter.string(from: Date())
    }
}

/// The learning-rate schedules by name, for --lr-schedule.
enum ScheduleKind: String, CaseIterable, ExpressibleByArgument {
    case constant, step, cosine

    init(_ schedule: LearningRateSchedule) {
        switch schedule {
        case .constant: self = .constant
        case .stepDecay: self = .step
        case .cosine: self = .cosine
        }
    }
}

/// A wall-clock interval such as "90s", "10m", "1h" or plain seconds.
struct WallInterval: ExpressibleByArgument {
    let seconds: Double

    init?(argument: String) {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
        var text = argument.trimmingCharacters(in: .whitespaces)
        var unit = 1.0
        if let last = text.last, let factor = units[last] {
            unit = factor
            text.removeLast()
        }
        guard let value = Double(text), value.isFinite, value > 0 else { return nil }
        seconds = value * unit
    }
}
