import ArgumentParser
import BackpropConfig
import BackpropCore
import BackpropHDF5
import BackpropTensorBoard
import Foundation

/// When to write checkpoints.
struct CheckpointPolicy {
    /// Every N optimizer steps (0: never).
    var everySteps = 0
    var everyEpoch = true
    /// When this many seconds of wall time have passed since the last one.
    var interval: Double?
    /// Step checkpoints kept in the run directory.
    var keep = 3

    /// The policy a run directory's config.json records, each setting it
    /// lacks (or holds a value of the wrong kind for) the default's.
    static func recorded(in directory: String) -> CheckpointPolicy {
        var policy = CheckpointPolicy()
        guard let data = FileManager.default.contents(atPath: RunDirectory(directory).configurationPath),
              let settings = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return policy }
        func whole(_ key: String) -> Int? { (settings[key] as? NSNumber).flatMap { Int(exactly: $0.doubleValue) } }
        if let steps = whole(Settings.checkpointEvery.key), steps >= 0 { policy.everySteps = steps }
        if let every = settings[Settings.checkpointEveryEpoch.key] as? Bool { policy.everyEpoch = every }
        if let interval = (settings[Settings.checkpointInterval.key] as? NSNumber)?.doubleValue, interval.isFinite, interval > 0 {
            policy.interval = interval
        }
        if let keep = whole(Settings.keep.key), keep >= 1 { policy.keep = keep }
        return policy
    }
}

/// The loop of `backprop train`: steps, epoch summaries, checkpoints by
/// policy, and a clean stop on SIGINT, SIGTERM, SIGHUP or SIGPIPE.
///
/// In a job of several ranks every rank runs this loop and reaches each
/// checkpoint at the same step (the optimizer's state is gathered there, a
/// collective); only the writer (rank 0) prints and writes, and evaluates
/// (every rank evaluates the validation split when it steers the run). A
/// signal, or a checkpoint interval that has passed, becomes a request that
/// every rank acts on after the same step.
final class TrainingRun {
    let trainer: Trainer
    /// The split that chooses (best.h5); nil: none, and no best.h5.
    let validation: Dataset?
    /// Read for the final model, and each epoch only when `testReport` says so: it never chooses.
    let test: Dataset
    var testReport = TestReport.end
    /// Whether early stopping ended the run (`EarlyStopping.stops`), here or before a resume.
    private var stoppedEarly = false
    /// The trainer's `dataWaitSeconds` at the end of the last epoch.
    private var dataWaitBefore = 0.0
    let dataPath: String
    let fingerprint: String
    let directory: RunDirectory
    let policy: CheckpointPolicy
    let output: String
    let progress: ProgressReporter
    /// Whether this process writes files (rank 0, or the one process).
    let writes: Bool
    /// The dataset's class names, kept in the checkpoints (when one per output).
    var classNames: [String]?
    private let signals = StopSignals()
    /// Training seconds of earlier processes of this run (from the checkpoint).
    private let earlierSeconds: Double
    private let clock = ContinuousClock()
    private let started: ContinuousClock.Instant
    private var lastSave: ContinuousClock.Instant
    private var lastSavedStep: Int?
    /// The checkpoint file written last (or resumed from), for messages.
    private var lastCheckpoint: String?
    /// Seconds spent inside optimizer steps in this process.
    private var stepSeconds = 0.0
    /// The extra columns of the metrics.csv this process wrote; nil before it wrote one.
    private var metricsExtras: [String]?
    /// The metrics.csv whose rows the first write keeps: this directory's, or
    /// that of the run a resume branches from (`--run-dir NEW`).
    var earlierMetrics: String?
    /// Whether the run writes TensorBoard events (`--tensorboard`); the writer, once the run started.
    var writesEvents = true
    private var events: EventWriter?
    /// Steps between step events (`--log-every`; 0: per epoch only).
    var logEvery = 0

    init(trainer: Trainer, validation: Dataset?, test: Dataset, dataPath: String, fingerprint: String,
         directory: RunDirectory, policy: CheckpointPolicy, output: String, progress: ProgressReporter, writes: Bool = true,
         resumedFrom checkpoint: String? = nil) {
        self.trainer = trainer
        self.validation = validation
        self.test = test
        self.dataPath = dataPath
        self.fingerprint = fingerprint
        self.directory = directory
        self.policy = policy
        self.output = output
        self.progress = progress
        self.writes = writes
        earlierSeconds = trainer.history.wallTime
        started = clock.now
        // A resumed run's state is already on disk.
        lastCheckpoint = checkpoint
        if checkpoint != nil { lastSavedStep = trainer.position.step }
        lastSave = started
    }

    /// Trains to the end (or to a stop signal) and writes the final model.
    /// - Throws: `ExitCode(128 + signal)` after a signal's checkpoint;
    ///   `TrainingError.diverged`; `StorageError` when a checkpoint cannot be written.
    func start() throws {
        let configuration = trainer.configuration
        // The batch is never larger than the data: a larger --batch-size trains on all of it at once.
        let batches = trainer.epochs.batchesPerEpoch, samples = trainer.dataset.count
        let batchesLine = "\(batches) batch\(batches == 1 ? "" : "es") of \(min(configuration.batchSize, samples)) per epoch"
            + (configuration.batchSize > samples ? " (--batch-size \(configuration.batchSize) is more than the \(samples) samples)" : "")
        progress.line("training \(configuration.sizes.map(String.init).joined(separator: "-")) on \(trainer.dataset.count) samples "
              + "(\(dataPath)), \(batchesLine), "
              + "\(configuration.workers) worker\(configuration.workers == 1 ? "" : "s"); checkpoints in \(directory.path)")
        if writes { try directory.write(configurationJSON(), to: directory.configurationPath) }
        if writes && writesEvents {
            // A resumed run's file starts just after the step it resumes from, so TensorBoard drops
            // what the earlier run logged after it (steps past its last checkpoint, which run again).
            events = try EventWriter(directory: directory.eventsPath, resumedAt: lastCheckpoint == nil ? nil : trainer.position.step + 1)
        }
        if let privacy = configuration.privacy {
            let planned = try configuration.plannedSteps(sampleCount: trainer.dataset.count)
            let spent = trainer.privacySpent(steps: planned)
            progress.line(String(format: "DP-SGD: clip C = %g, noise σ = %.4g, q = %.4g, δ = %g, %@ sampling; ε = %@ after the %ld planned steps",
                                 privacy.clip, privacy.noise, trainer.samplingRate, privacy.delta, configuration.samplingMethod.rawValue,
                                 Self.shown(epsilon: spent?.epsilon ?? .infinity), planned)
                          + (configuration.samplingMethod == .shuffle ? " (shuffle sampling is not covered by the analysis)" : ""))
            if configuration.reduction == .sum {
                progress.line("note: with --reduction sum each step follows the noisy clipped sum itself, not its mean: "
                              + "the learning rate then stands for η/B, and the noise's share of the step is the same")
            }
            if let order = spent?.order, PrivacyAccountant.isAtEdge(order) {
                progress.line("warning: the best RDP order α = \(order) lies at the edge of the orders tried (1.1…63); ε may be loose")
            }
        }
        if trainer.isFinished && lastCheckpoint != nil {
            progress.line("the run had already finished (\(configuration.epochs) epochs, step \(trainer.position.step)); "
                  + "give --epochs or --steps with --override to train on")
        }
        if let stopping = configuration.earlyStopping, trainer.position.batch == 0, let last = trainer.history.epochs.last,
           stopping.stops(after: last.epoch, best: trainer.history.best) {
            stoppedEarly = true
            progress.line("the run had stopped early after epoch \(last.epoch + 1) (no better \(configuration.monitor.rawValue) "
                          + "for \(stopping.patience) epochs); give a larger \(Settings.earlyStopping.flag) with --override to train on")
        }
        var epochStart = clock.now
        var epochSamples = 0
        while !trainer.isFinished && !stoppedEarly {
            let before = clock.now
            let (epoch, batches) = (trainer.position.epoch, trainer.epochs.batchesPerEpoch)
            let rate = trainer.learningRate
            var requests: StepRequests = []
            if signals.stopSignal != nil { requests.insert(.stop) }
            if let interval = policy.interval, seconds(since: lastSave) >= interval { requests.insert(.save) }
            let result: StepResult
            do {
                result = try trainer.step(requests: requests)
            } catch {
                // The trainer knows no files: name the last checkpoint here.
                guard case .diverged(let step, let loss, _) = error else { throw error }
                throw TrainingError.diverged(step: step, loss: loss, lastCheckpoint: lastCheckpoint)
            }
            stepSeconds += seconds(since: before)
            if let events, logEvery > 0, trainer.position.step % logEvery == 0 {
                try events.scalars([("step/loss", result.meanLoss), ("step/learning_rate", rate)], step: trainer.position.step)
            }
            progress.step(epoch: epoch, epochs: trainer.configuration.epochs, batch: trainer.position.batch == 0 ? batches : trainer.position.batch,
                          batches: batches, step: trainer.position.step, loss: result.meanLoss,
                          sampleCount: result.sampleCount, learningRate: rate)
            epochSamples += result.sampleCount
            let step = trainer.position.step
            if trainer.position.batch == 0 {
                let seconds = seconds(since: epochStart)
                try finishEpoch(samplesPerSecond: Double(epochSamples) / max(seconds, 1e-9), seconds: seconds)
                epochStart = clock.now
                epochSamples = 0
                progress.startEpoch()
            } else if policy.everySteps > 0 && step % policy.everySteps == 0 {
                try save()
            }
            if result.agreed.contains(.save), lastSavedStep != step {
                try save()
            }
            // Alone, a signal during the step stops after it; in a job, after the step every rank heard of it.
            if result.agreed.contains(.stop) || (trainer.group == nil && signals.stopSignal != nil) {
                let signal = signals.stopSignal ?? SIGTERM
                let name = StopSignals.name(signal)
                if writes {
                    printError("\(name): finishing step \(step) and writing a checkpoint"
                               + (signal == SIGPIPE ? " (standard output was closed)" : " (send it again to exit at once)"))
                }
                if lastSavedStep != step { try save() }
                try events?.flush()
                progress.line("stopped by \(name) at epoch \(trainer.position.epoch + 1), batch \(trainer.position.batch), "
                      + "step \(step); checkpoint \(lastCheckpoint ?? "?")")
                progress.line("resume with: backprop train --resume \(directory.path)", minimum: .quiet)
                throw ExitCode(128 + signal)
            }
        }
        if lastSavedStep != trainer.position.step || trainer.position.step == 0 { try save() }
        guard writes else { return }
        try FileSystem.createDirectory(URL(fileURLWithPath: output).deletingLastPathComponent().path)
        // With early stopping the final model is the best epoch's (Keras' restore_best_weights), from
        // best.h5 — unless this directory lacks it (a branch whose best epoch came before it branched).
        var final = checkpoint()
        if configuration.earlyStopping != nil, let best = trainer.history.best {
            if let saved = try? Checkpoint.load(from: directory.bestPath), saved.position.epoch == best.epoch + 1, saved.position.batch == 0 {
                final = saved
            } else {
                printError("warning: \(directory.bestPath) does not hold epoch \(best.epoch + 1), the best; \(output) holds the last epoch's weights")
            }
        }
        try final.save(to: output)
        if let stopping = configuration.earlyStopping, let best = trainer.history.best, final.position.epoch == best.epoch + 1 {
            progress.line((stoppedEarly ? "early stopping: no better \(configuration.monitor.rawValue) for \(stopping.patience) epochs; "
                                        : "early stopping: the run trained all its epochs; ")
                          + "\(output) holds the weights of epoch \(best.epoch + 1), the best")
        }
        try reportTest(final)
        let waited = trainer.dataset.isStreamed ? String(format: ", %.2f s of them waiting for data", trainer.dataWaitSeconds) : ""
        progress.line(String(format: "trained to step %ld (%.2f s in optimizer steps%@, %.2f s in all); parameters %@; model written to %@",
                     trainer.position.step, stepSeconds, waited, seconds(since: started), final.network.fingerprint, output),
                      minimum: .quiet)
    }

    /// Logs the epoch that just ended (train loss from the step log, so that a
    /// resumed epoch counts its earlier steps), evaluates on the validation
    /// split (and the test split, with `--report-test every-epoch`), and
    /// checkpoints when the policy says so, as best.h5 if its validation score is the best yet.
    private func finishEpoch(samplesPerSecond: Double, seconds: Double) throws {
        let policySaves = policy.everyEpoch || (policy.everySteps > 0 && trainer.position.step % policy.everySteps == 0)
        guard writes || decidesOnValidation else {
            // Another rank: its part of the checkpoint's collective, nothing else.
            if policySaves || trainer.isFinished { try save() }
            return
        }
        let epoch = trainer.position.epoch - 1
        let losses = trainer.history.stepLosses.suffix(trainer.epochs.batchesPerEpoch)
        let sizes = (0..<losses.count).map { Double(trainer.epochs.batchRange($0).count) }
        let trainLoss = zip(losses, sizes).map { $0 * $1 }.reduce(0, +) / sizes.reduce(0, +)
        try requireFiniteParameters()
        let task = trainer.dataset.task
        var record = EpochRecord(
            epoch: epoch, step: trainer.position.step, trainLoss: trainLoss, testLoss: .nan, testScore: .nan,
            learningRate: trainer.learningRate, samplesPerSecond: samplesPerSecond, wallTime: earlierSeconds + self.seconds(since: started))
        var scores = ""
        if let validation {
            let evaluation = try evaluated(on: validation)
            (record.validationLoss, record.validationScore) = (evaluation.meanLoss, evaluation.score)
            scores += "  " + Self.shown(evaluation, on: "validation")
        }
        if testReport == .everyEpoch && writes {
            let evaluation = try evaluated(on: test)
            (record.testLoss, record.testScore) = (evaluation.meanLoss, evaluation.score)
            scores += "  " + Self.shown(evaluation, on: "test")
        }
        scores += measurements(into: &record.extras)
        if trainer.dataset.isStreamed {
            // How long the steps stood still for the reader this epoch.
            let waited = trainer.dataWaitSeconds - dataWaitBefore
            dataWaitBefore = trainer.dataWaitSeconds
            record.extras["data_wait_seconds"] = waited
            scores += String(format: "  waited for data %.2f s", waited)
        }
        progress.line(String(format: "epoch %ld/%ld  train loss %.4f%@  %@ samples/s  %.2f s",
                     epoch + 1, trainer.configuration.epochs, trainLoss, scores, grouped(samplesPerSecond), seconds))
        let isBest = trainer.history.log(record, task: task, monitor: trainer.configuration.monitor,
                                         minDelta: trainer.configuration.minDelta)
        if let stopping = trainer.configuration.earlyStopping, stopping.stops(after: epoch, best: trainer.history.best) { stoppedEarly = true }
        if case .plateau(_, let patience, _) = trainer.configuration.schedule.shape, !stoppedEarly,
           trainer.history.reducesRate(after: epoch, patience: patience) {
            progress.line(String(format: "plateau: no better %@ for %ld epoch%@; learning rate now %g", trainer.configuration.monitor.rawValue,
                                 patience, patience == 1 ? "" : "s", trainer.learningRate))
        }
        if policySaves || trainer.isFinished || stoppedEarly { try save(isBest: isBest) }
        guard writes else { return }
        try writeMetrics(record, task: task)
        try writeEvents(record, task: task)
        let title = "\(trainer.configuration.sizes.map(String.init).joined(separator: "-")) on \(URL(fileURLWithPath: dataPath).lastPathComponent)"
        try directory.write(Curves.svg(trainer.history, task: task, title: title), to: "\(directory.path)/curves.svg")
    }

    /// Whether the validation split steers the run (early stopping, a plateau
    /// schedule): then every rank of a job evaluates it and logs the epoch, so
    /// that each takes the same decision from the same bits, with no message
    /// between them (evaluation gives the same bits on any rank and worker
    /// count); the other ranks would wait for rank 0's evaluation anyway.
    private var decidesOnValidation: Bool {
        guard validation != nil else { return false }
        if trainer.configuration.earlyStopping != nil { return true }
        if case .plateau = trainer.configuration.schedule.shape { return true }
        return false
    }

    /// `network` (the trainer's, unless another is given) on `data`, with the run's workers and kernel.
    private func evaluated(_ network: Network<Float>? = nil, on data: Dataset) throws(TrainingError) -> Evaluation {
        try evaluate(network ?? trainer.network, on: data, workers: trainer.configuration.workers, kernel: trainer.kernel)
    }

    /// "validation loss 0.4123  validation accuracy 85.20 %".
    static func shown(_ evaluation: Evaluation, on split: String) -> String {
        String(format: "%@ loss %.4f  ", split, evaluation.meanLoss) + "\(evaluation.task.scoreName(on: split)) \(evaluation.task.format(evaluation.score))"
    }

    /// The test split, read once for the final model (the output file): it chose nothing.
    private func reportTest(_ final: Checkpoint) throws(TrainingError) {
        let evaluation = try evaluated(final.network, on: test)
        let best = trainer.history.best.map { "; best.h5 is epoch \($0.epoch + 1), chosen on the validation split" }
            ?? (validation == nil ? "; no best.h5: without a validation split (--validation-fraction) nothing chooses one" : "")
        progress.line(Self.shown(evaluation, on: "test") + " (the final model, epoch \(final.position.epoch)"
                      + (final.position.batch > 0 ? ", batch \(final.position.batch)" : "") + best + ")")
    }

    /// The epoch's scalars as TensorBoard events at its last step ("epoch/train_loss", …, its
    /// extras), made durable: metrics.csv's columns, by the same names.
    private func writeEvents(_ record: EpochRecord, task: LearningTask) throws {
        guard let events else { return }
        let values = EpochRecord.columns(task).filter { !$0.isCount && $0.name != "wall_time" && !($0.isOptional && $0.value(record).isNaN) }
            .map { ("epoch/\($0.name)", $0.value(record)) }
            + EpochRecord.extraNames.compactMap { name in record.extras[name].map { ("epoch/\(name)", $0) } }
        try events.scalars(values, step: record.step)
        try events.flush()
    }

    /// metrics.csv, the run's full epoch log: the epoch's line appended (a
    /// constant cost, however long the run), or, on this process's first
    /// epoch or when a new column appears, the file rewritten from the rows it
    /// holds (`RunDirectory.rewriteMetrics`).
    private func writeMetrics(_ record: EpochRecord, task: LearningTask) throws {
        if let metricsExtras, record.extras.keys.allSatisfy(metricsExtras.contains) {
            try directory.append(line: RunDirectory.metricsRow(record, task: task, extras: metricsExtras), to: directory.metricsPath)
            return
        }
        let source = metricsExtras == nil ? earlierMetrics ?? directory.metricsPath : directory.metricsPath
        let rewrite = try directory.rewriteMetrics(from: source, through: record, kept: trainer.history.epochs, task: task,
                                                   measured: Set(record.extras.keys))
        metricsExtras = rewrite.extras
        if let first = rewrite.missing.first, let last = rewrite.missing.last {
            let kept = rewrite.missing.filter { epoch in trainer.history.epochs.contains { $0.epoch == epoch - 1 } }.count
            progress.line("warning: \(source) lacked the rows of \(rewrite.missing.count) epoch\(rewrite.missing.count == 1 ? "" : "s") "
                          + "(\(first == last ? "\(first)" : "\(first)–\(last)")); \(directory.metricsPath) has the \(kept) the checkpoint's thinned log kept",
                          minimum: .quiet)
        }
    }

    /// The epoch's ε, gradient norm quantiles and noise scale, as extras of its
    /// record and as text for its line; the per-sample statistics start afresh.
    private func measurements(into extras: inout [String: Double]) -> String {
        var text = ""
        if let (epsilon, _) = trainer.privacySpent() {
            extras["epsilon"] = epsilon
            text += "  ε \(Self.shown(epsilon: epsilon))" + (trainer.configuration.samplingMethod == .shuffle ? " (not covered: shuffle)" : "")
        }
        let statistics = trainer.sampleStatistics
        if trainer.measuresSampleNorms, !statistics.norms.isEmpty {
            let names = ["grad_norm_min", "grad_norm_p10", "grad_norm_p50", "grad_norm_p90", "grad_norm_max"]
            let values = [0, 0.1, 0.5, 0.9, 1].compactMap { statistics.normQuantile($0) }
            for (name, value) in zip(names, values) { extras[name] = value }
            text += "  grad norm " + values.map { String(format: "%.3g", $0) }.joined(separator: "/") + " (min/10/50/90 %/max)"
        }
        if trainer.measuresNoiseScale, let scale = statistics.noiseScale {
            extras["noise_scale"] = scale
            text += String(format: "  noise scale %.4g", scale)
        }
        trainer.resetSampleStatistics()
        return text
    }

    /// ε as the lines show it: three decimals, or "∞ (no guarantee)" for noise too small to give one.
    static func shown(epsilon: Double) -> String {
        epsilon.isFinite ? String(format: "%.3f", epsilon) : "∞ (no guarantee)"
    }

    /// Stops the run when a step left a parameter that is not finite: nothing
    /// is evaluated, printed or saved from it.
    private func requireFiniteParameters() throws {
        guard trainer.network.parameters.allSatisfy(\.isFinite) else {
            throw TrainingError.nonFiniteParameters(step: trainer.position.step, lastCheckpoint: lastCheckpoint)
        }
    }

    /// Writes the trainer's state as the run directory's next checkpoint.
    private func save(isBest: Bool = false) throws {
        try requireFiniteParameters()
        trainer.gatherOptimizerState()
        if writes {
            trainer.history.wallTime = earlierSeconds + seconds(since: started)
            lastCheckpoint = try directory.save(checkpoint(), isBest: isBest, keep: policy.keep)
        }
        lastSavedStep = trainer.position.step
        lastSave = clock.now
    }

    /// config.json: the run's settings keyed by their flags, so that
    /// `backprop train --config <run>/config.json` runs it again (`Settings.recorded`),
    /// and, under "recorded", what it was run with (ignored as settings).
    private func configurationJSON() throws -> String {
        var settings = Settings.recorded(RecordedRun(configuration: trainer.configuration, dataPath: dataPath, policy: policy))
        settings[SettingsFile.recordedKey] = ["program-version": Checkpoint.programVersion, "data-fingerprint": fingerprint]
        return try SettingsFile.text(settings, json: true)
    }

    private func checkpoint() -> Checkpoint {
        Checkpoint(of: trainer, dataPath: dataPath, dataFingerprint: fingerprint,
                   classNames: classNames?.count == trainer.network.outputCount ? classNames : nil)
    }

    private func seconds(since instant: ContinuousClock.Instant) -> Double {
        let elapsed = clock.now - instant
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }
}
