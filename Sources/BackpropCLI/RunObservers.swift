import BackpropCore
import BackpropHDF5
import BackpropTensorBoard
import Foundation

// The outputs of `backprop train`, each an observer of Core's fit loop
// (`TrainingObserver`): the progress bar and epoch lines, the epoch's
// measurements, metrics.csv and curves.svg, TensorBoard events, stop signals.
// Checkpoints are BackpropHDF5's `CheckpointObserver`. TrainingRun wires them.

// MARK: - Progress

/// The live bar and the epoch's summary line ("epoch 3/10  train loss …"), and the plateau's reductions.
final class ProgressObserver: TrainingObserver {
    let progress: ProgressReporter

    init(_ progress: ProgressReporter) {
        self.progress = progress
    }

    func didStep(_ loop: TrainingLoop, _ step: StepReport) throws {
        progress.step(epoch: step.epoch, epochs: loop.trainer.configuration.epochs, batch: step.batch, batches: step.batches,
                      step: step.step, loss: step.meanLoss, sampleCount: step.sampleCount, learningRate: step.learningRate)
    }

    func didEndEpoch(_ loop: TrainingLoop, _ epoch: EpochReport) throws {
        defer { progress.startEpoch() }
        guard epoch.isLogged else { return }
        let (record, configuration) = (epoch.record, loop.trainer.configuration)
        let validation = loop.validation == nil ? ""
            : "  " + Self.shown(loss: record.validationLoss, score: record.validationScore, task: loop.trainer.dataset.task, on: "validation")
        progress.line(String(format: "epoch %ld/%ld  train loss %.4f%@  %@ samples/s  %.2f s",
                             record.epoch + 1, configuration.epochs, record.trainLoss,
                             validation + epoch.notes.map { "  " + $0 }.joined(), grouped(record.samplesPerSecond), epoch.seconds))
        if epoch.reducedRate, case .plateau(_, let patience, _) = configuration.schedule.shape {
            progress.line(String(format: "plateau: no better %@ for %ld epoch%@; learning rate now %g", configuration.monitor.rawValue,
                                 patience, patience == 1 ? "" : "s", loop.trainer.learningRate))
        }
    }

    /// "validation loss 0.4123  validation accuracy 85.20 %".
    static func shown(loss: Double, score: Double, task: LearningTask, on split: String) -> String {
        String(format: "%@ loss %.4f  ", split, loss) + "\(task.scoreName(on: split)) \(task.format(score))"
    }

    static func shown(_ evaluation: Evaluation, on split: String) -> String {
        shown(loss: evaluation.meanLoss, score: evaluation.score, task: evaluation.task, on: split)
    }
}

// MARK: - Measurements

/// What an epoch measures besides its losses, as columns of its row and text
/// for its line: the test split (`--report-test every-epoch`, never choosing),
/// DP-SGD's ε, per-sample gradient norm quantiles, the noise scale, and the
/// time a streamed run waited for data.
final class EpochMeasurements: TrainingObserver {
    /// Read each epoch when given (`--report-test every-epoch`).
    let test: (any RowSource)?
    /// The trainer's `dataWaitSeconds` at the end of the last epoch.
    private var dataWaitBefore = 0.0

    init(test: (any RowSource)?) {
        self.test = test
    }

    func willEndEpoch(_ loop: TrainingLoop, _ epoch: inout EpochReport) throws {
        let trainer = loop.trainer
        if let test {
            let evaluation = try evaluate(trainer.evaluatedNetwork, on: test, workers: trainer.configuration.workers, products: trainer.evaluationProducts)
            (epoch.record.testLoss, epoch.record.testScore) = (evaluation.meanLoss, evaluation.score)
            epoch.notes.append(ProgressObserver.shown(evaluation, on: "test"))
        }
        if let (epsilon, _) = trainer.privacySpent() {
            epoch.record.extras["epsilon"] = epsilon
            epoch.notes.append("ε \(TrainingRun.shown(epsilon: epsilon))" + (trainer.configuration.samplingMethod == .shuffle ? " (not covered: shuffle)" : ""))
        }
        let statistics = trainer.sampleStatistics
        if trainer.measuresSampleNorms, !statistics.norms.isEmpty {
            let names = ["grad_norm_min", "grad_norm_p10", "grad_norm_p50", "grad_norm_p90", "grad_norm_max"]
            let values = [0, 0.1, 0.5, 0.9, 1].compactMap { statistics.normQuantile($0) }
            for (name, value) in zip(names, values) { epoch.record.extras[name] = value }
            epoch.notes.append("grad norm " + values.map { String(format: "%.3g", $0) }.joined(separator: "/") + " (min/10/50/90 %/max)")
        }
        if trainer.measuresNoiseScale, let scale = statistics.noiseScale {
            epoch.record.extras["noise_scale"] = scale
            epoch.notes.append(String(format: "noise scale %.4g", scale))
        }
        trainer.resetSampleStatistics()
        if trainer.waitsForData {
            // How long the steps stood still for the reader this epoch.
            let waited = trainer.dataWaitSeconds - dataWaitBefore
            dataWaitBefore = trainer.dataWaitSeconds
            epoch.record.extras["data_wait_seconds"] = waited
            epoch.notes.append(String(format: "waited for data %.2f s", waited))
        }
    }
}

// MARK: - Run files

/// metrics.csv, the run's full epoch log (a row appended each epoch; on this
/// process's first epoch, or when a new column appears, the file rewritten
/// from the rows it holds: `RunDirectory.rewriteMetrics`), and curves.svg.
final class MetricsObserver: TrainingObserver {
    let directory: RunDirectory
    let progress: ProgressReporter
    /// The curves' title: "784-256-128-10 on fashion-mnist.h5".
    let title: String
    /// The metrics.csv whose rows the first write keeps: this directory's, or
    /// that of the run a resume branches from (`--run-dir NEW`).
    let earlierMetrics: String?
    /// The extra columns of the metrics.csv this process wrote; nil before it wrote one.
    private var metricsExtras: [String]?

    init(directory: RunDirectory, progress: ProgressReporter, title: String, earlierMetrics: String?) {
        self.directory = directory
        self.progress = progress
        self.title = title
        self.earlierMetrics = earlierMetrics
    }

    func didEndEpoch(_ loop: TrainingLoop, _ epoch: EpochReport) throws {
        guard epoch.isLogged else { return }
        let (record, task) = (epoch.record, loop.trainer.dataset.task)
        try writeMetrics(record, task: task, kept: loop.trainer.history.epochs)
        try directory.write(Curves.svg(loop.trainer.history, task: task, title: title), to: "\(directory.path)/curves.svg")
    }

    private func writeMetrics(_ record: EpochRecord, task: LearningTask, kept: [EpochRecord]) throws {
        if let metricsExtras, record.extras.keys.allSatisfy(metricsExtras.contains) {
            try directory.append(line: RunDirectory.metricsRow(record, task: task, extras: metricsExtras), to: directory.metricsPath)
            return
        }
        let source = metricsExtras == nil ? earlierMetrics ?? directory.metricsPath : directory.metricsPath
        let rewrite = try directory.rewriteMetrics(from: source, through: record, kept: kept, task: task, measured: Set(record.extras.keys))
        metricsExtras = rewrite.extras
        if let first = rewrite.missing.first, let last = rewrite.missing.last {
            let kept = rewrite.missing.filter { epoch in kept.contains { $0.epoch == epoch - 1 } }.count
            progress.line("warning: \(source) lacked the rows of \(rewrite.missing.count) epoch\(rewrite.missing.count == 1 ? "" : "s") "
                          + "(\(first == last ? "\(first)" : "\(first)–\(last)")); \(directory.metricsPath) has the \(kept) the checkpoint's thinned log kept",
                          minimum: .quiet)
        }
    }
}

// MARK: - TensorBoard

/// TensorBoard events: each epoch's scalars at its last step
/// ("epoch/train_loss", …: metrics.csv's columns, by the same names), made
/// durable; and every `logEvery` steps the step's loss and rate.
final class EventsObserver: TrainingObserver {
    let events: EventWriter
    /// Steps between step events (0: per epoch only).
    let logEvery: Int

    init(_ events: EventWriter, logEvery: Int) {
        self.events = events
        self.logEvery = logEvery
    }

    func didStep(_ loop: TrainingLoop, _ step: StepReport) throws {
        guard logEvery > 0, step.step % logEvery == 0 else { return }
        try events.scalars([("step/loss", step.meanLoss), ("step/learning_rate", step.learningRate)], step: step.step)
    }

    func didEndEpoch(_ loop: TrainingLoop, _ epoch: EpochReport) throws {
        guard epoch.isLogged else { return }
        let (record, task) = (epoch.record, loop.trainer.dataset.task)
        let values = EpochRecord.columns(task).filter { !$0.isCount && $0.name != "wall_time" && !($0.isOptional && $0.value(record).isNaN) }
            .map { ("epoch/\($0.name)", $0.value(record)) }
            + EpochRecord.extraNames.compactMap { name in record.extras[name].map { ("epoch/\(name)", $0) } }
        try events.scalars(values, step: record.step)
        try events.flush()
    }

    func didFinish(_ loop: TrainingLoop, _ result: FitResult) throws {
        try events.flush()
    }
}

// MARK: - Signals

/// SIGINT, SIGTERM, SIGHUP or SIGPIPE as a request to stop after the step
/// (`StopSignals`). Alone, a signal during a step stops after it; in a job,
/// after the step at which every rank heard of it.
final class SignalObserver: TrainingObserver {
    let signals = StopSignals()
    /// Whether this process prints (rank 0, or the one process).
    let writes: Bool
    private var agreed: StepRequests = []

    init(writes: Bool) {
        self.writes = writes
    }

    /// The signal that stopped the run (SIGTERM for a stop another rank heard of).
    var signal: Int32 { signals.stopSignal ?? SIGTERM }

    func requests(_ loop: TrainingLoop) -> StepRequests {
        signals.stopSignal != nil ? .stop : []
    }

    func didStep(_ loop: TrainingLoop, _ step: StepReport) throws {
        agreed = step.agreed
    }

    func shouldStop(_ loop: TrainingLoop) -> Bool {
        guard agreed.contains(.stop) || (loop.trainer.group == nil && signals.stopSignal != nil) else { return false }
        if writes {
            printError("\(StopSignals.name(signal)): finishing step \(loop.trainer.position.step) and writing a checkpoint"
                       + (signal == SIGPIPE ? " (standard output was closed)" : " (send it again to exit at once)"))
        }
        return true
    }
}
