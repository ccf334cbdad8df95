import ArgumentParser
import BackpropConfig
import BackpropCore
import BackpropHDF5
import BackpropIO
import BackpropTensorBoard
import Foundation

extension CheckpointPolicy {
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

/// `backprop train`'s run: Core's fit loop (`TrainingLoop`) with the
/// observers that make its output — the progress bar and epoch lines, the
/// epoch's measurements, checkpoints and best.h5, metrics.csv and
/// curves.svg, TensorBoard events, stop signals — and, after the last step,
/// the final model and the one reading of the test split.
///
/// In a job of several ranks every rank runs the loop; only the writer (rank
/// 0) prints and writes (see `TrainingLoop.steersOnValidation` and
/// `CheckpointObserver` for what the other ranks share).
final class TrainingRun {
    let loop: TrainingLoop
    var trainer: Trainer { loop.trainer }
    /// Read for the final model, and each epoch only when `testReport` says so: it never chooses.
    /// nil when `testReport` is none: then the run read nothing of it.
    let test: (any RowSource)?
    var testReport = TestReport.end
    let dataPath: String
    let directory: RunDirectory
    let checkpoints: CheckpointObserver
    /// Installed as the run is set up, so that a signal from then on stops it cleanly.
    let signals: SignalObserver
    let output: String
    let progress: ProgressReporter
    /// Whether this process writes files (rank 0, or the one process).
    let writes: Bool
    /// Whether the run resumed from a checkpoint.
    let isResumed: Bool
    /// The metrics.csv whose rows the first write keeps: this directory's, or
    /// that of the run a resume branches from (`--run-dir NEW`).
    var earlierMetrics: String?
    /// Whether the run writes TensorBoard events (`--tensorboard`).
    var writesEvents = true
    /// Steps between step events (`--log-every`; 0: per epoch only).
    var logEvery = 0
    /// The free settings given (`Train.freeSettings`), recorded in config.json.
    var freeSettings: [String: any Sendable] = [:]

    init(trainer: Trainer, validation: (any RowSource)?, test: (any RowSource)?, dataPath: String, fingerprint: String,
         directory: RunDirectory, policy: CheckpointPolicy, output: String, progress: ProgressReporter, writes: Bool = true,
         resumedFrom checkpoint: String? = nil) throws {
        loop = try TrainingLoop(trainer: trainer, validation: validation)
        // best.h5 holds the best epoch's weights, however long ago (a resume) it came.
        loop.restoresBestWeights = false
        self.test = test
        self.dataPath = dataPath
        self.directory = directory
        checkpoints = CheckpointObserver(directory: directory, policy: policy, dataPath: dataPath, dataFingerprint: fingerprint,
                                         writes: writes, resumedFrom: checkpoint)
        signals = SignalObserver(writes: writes)
        self.output = output
        self.progress = progress
        self.writes = writes
        isResumed = checkpoint != nil
    }

    /// The dataset's class names, kept in the checkpoints (when one per output).
    var classNames: [String]? {
        get { checkpoints.classNames }
        set { checkpoints.classNames = newValue }
    }

    /// The teacher file distilled from, kept in the checkpoints and config.json.
    var teacherPath: String? {
        get { checkpoints.teacherPath }
        set { checkpoints.teacherPath = newValue }
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
        // The event file first: a run directory whose tensorboard/ is refused (a link) gets no config.json either.
        // A resumed run's file starts just after the step it resumes from, so TensorBoard drops
        // what the earlier run logged after it (steps past its last checkpoint, which run again).
        let events = writes && writesEvents
            ? try EventWriter(directory: directory.eventsPath, resumedAt: isResumed ? trainer.position.step + 1 : nil) : nil
        if writes { try directory.write(configurationJSON(), to: directory.configurationPath) }
        var observers: [any TrainingObserver] = [ProgressObserver(progress),
                                                 EpochMeasurements(test: testReport == .everyEpoch && writes ? test : nil),
                                                 checkpoints]
        if writes {
            let title = "\(configuration.sizes.map(String.init).joined(separator: "-")) on \(URL(fileURLWithPath: dataPath).lastPathComponent)"
            observers.append(MetricsObserver(directory: directory, progress: progress, title: title, earlierMetrics: earlierMetrics))
        }
        if let events { observers.append(EventsObserver(events, logEvery: logEvery)) }
        observers.append(signals)
        if configuration.privacy != nil { try reportPrivacy() }
        if trainer.isFinished && isResumed {
            progress.line("the run had already finished (\(configuration.epochs) epochs, step \(trainer.position.step)); "
                  + "give --epochs or --steps with --override to train on")
        }
        if loop.stoppedEarly, let stopping = configuration.earlyStopping, let last = trainer.history.epochs.last {
            progress.line("the run had stopped early after epoch \(last.epoch + 1) (no better \(configuration.monitor.rawValue) "
                          + "for \(stopping.patience) epochs); give a larger \(Settings["earlyStopping"].flag) with --override to train on")
        }
        let result: FitResult
        do {
            result = try loop.fit(observers: observers)
        } catch let error as TrainingError {
            throw error.naming(lastCheckpoint: checkpoints.lastCheckpoint)
        }
        if result.reason == .stopRequested {
            let name = StopSignals.name(signals.signal)
            progress.line("stopped by \(name) at epoch \(trainer.position.epoch + 1), batch \(trainer.position.batch), "
                  + "step \(trainer.position.step); checkpoint \(checkpoints.lastCheckpoint ?? "?")")
            progress.line("resume with: backprop train --resume \(directory.path)", minimum: .quiet)
            throw ExitCode(128 + signals.signal)
        }
        guard writes else { return }
        try writeFinalModel(result)
    }

    /// model.h5 — with early stopping the best epoch's checkpoint (Keras'
    /// restore_best_weights), from best.h5 unless this directory lacks it (a
    /// branch whose best epoch came before it branched) — then the test split, read once.
    private func writeFinalModel(_ result: FitResult) throws {
        let configuration = trainer.configuration
        try FileSystem.createDirectory(URL(fileURLWithPath: output).deletingLastPathComponent().path)
        var final = checkpoints.checkpoint(of: trainer)
        // What best.h5 holds: the best epoch's checkpoint, unless this directory branched after it.
        let bestOnDisk = result.best.flatMap { best in
            (try? Checkpoint.load(from: directory.bestPath)).flatMap { $0.position.epoch == best.epoch + 1 && $0.position.batch == 0 ? $0 : nil }
        }
        if configuration.earlyStopping != nil, let best = result.best {
            if let bestOnDisk {
                final = bestOnDisk
            } else {
                printError("warning: \(directory.bestPath) does not hold epoch \(best.epoch + 1), the best; \(output) holds the last epoch's weights")
            }
        }
        try final.save(to: output)
        if let stopping = configuration.earlyStopping, let best = result.best, final.position.epoch == best.epoch + 1 {
            progress.line((result.reason == .stoppedEarly ? "early stopping: no better \(configuration.monitor.rawValue) for \(stopping.patience) epochs; "
                                                          : "early stopping: the run trained all its epochs; ")
                          + "\(output) holds the weights of epoch \(best.epoch + 1), the best")
        }
        try reportTest(final, bestWritten: bestOnDisk != nil)
        let waited = trainer.waitsForData ? String(format: ", %.2f s of them waiting for data", trainer.dataWaitSeconds) : ""
        progress.line(String(format: "trained to step %ld (%.2f s in optimizer steps%@, %.2f s in all); parameters %@; model written to %@",
                     trainer.position.step, loop.stepSeconds, waited, loop.elapsed, final.network.fingerprint, output),
                      minimum: .quiet)
    }

    /// DP-SGD's settings and the ε its planned steps spend.
    private func reportPrivacy() throws {
        let configuration = trainer.configuration
        guard let privacy = configuration.privacy else { return }
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

    /// The test split, read once for the final model (the output file): it chose nothing.
    private func reportTest(_ final: Checkpoint, bestWritten: Bool) throws(TrainingError) {
        guard testReport != .none, let test else { return }
        let evaluation = try evaluate(final.network, on: test, workers: trainer.configuration.workers, products: trainer.evaluationProducts)
        let best = trainer.history.best.map {
            bestWritten ? "; best.h5 is epoch \($0.epoch + 1), chosen on the validation split"
                : "; the validation split chose epoch \($0.epoch + 1), which \(directory.bestPath) does not hold (this run directory branched after it)"
        } ?? (loop.validation == nil ? "; no best.h5: without a validation split (--validation-fraction) nothing chooses one" : "")
        progress.line(ProgressObserver.shown(evaluation, on: "test") + " (the final model, epoch \(final.position.epoch)"
                      + (final.position.batch > 0 ? ", batch \(final.position.batch)" : "") + best + ")")
    }

    /// ε as the lines show it: three decimals, or "∞ (no guarantee)" for noise too small to give one.
    static func shown(epsilon: Double) -> String {
        epsilon.isFinite ? String(format: "%.3f", epsilon) : "∞ (no guarantee)"
    }

    /// config.json: the run's settings keyed by their flags, so that
    /// `backprop train --config <run>/config.json` runs it again (`Settings.recorded`),
    /// and, under "recorded", what it was run with (ignored as settings).
    private func configurationJSON() throws -> String {
        var settings = Settings.recorded(RecordedRun(configuration: trainer.configuration, dataPath: dataPath, policy: checkpoints.policy,
                                                     teacherPath: teacherPath, free: freeSettings))
        settings[SettingsFile.recordedKey] = ["program-version": Checkpoint.programVersion, "data-fingerprint": checkpoints.dataFingerprint]
        return try SettingsFile.text(settings, json: true)
    }
}
