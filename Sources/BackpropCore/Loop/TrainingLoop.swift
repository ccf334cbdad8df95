/// The fit loop: epochs of optimizer steps, the validation split evaluated
/// after each epoch, the monitor that chooses the best epoch, early stopping,
/// the plateau schedule — and observers for everything that is output
/// (`TrainingObserver`). Keras' `Model.fit`, Lightning's fit loop.
///
/// ```swift
/// let loop = try TrainingLoop(trainer: trainer, validation: validation)
/// let result = try loop.fit(observers: [progress])
/// ```
///
/// The loop decides only from the validation split; the test split is never
/// its business. Every decision is a function of the logged bits, so a job's
/// ranks (each running its own loop) decide alike without a message, and a
/// resumed run decides as the run would have straight through.
public final class TrainingLoop {
    public let trainer: Trainer
    /// The split that chooses (the best epoch, when to stop, when to lower η); nil: none.
    public let validation: (any RowSource)?
    /// Whether the loop keeps a copy of the best epoch's parameters under
    /// early stopping and ends with them (Keras' `restore_best_weights`).
    /// Off where the best epoch's checkpoint is on disk anyway.
    public var restoresBestWeights = true
    /// Whether early stopping has ended the run (here, or before a resume).
    public private(set) var stoppedEarly = false
    /// Seconds this process spent inside optimizer steps.
    public private(set) var stepSeconds = 0.0
    /// The best epoch's parameters, when `restoresBestWeights` kept them.
    private var bestNetwork: Network<Float>?
    /// The trainer's wall time when the loop began (earlier processes of the run).
    private let earlierSeconds: Double
    private let clock = ContinuousClock()
    private let started: ContinuousClock.Instant

    /// A loop over `trainer`'s remaining steps.
    /// - Parameters:
    ///   - trainer: the run, fresh or restored from a checkpoint.
    ///   - validation: the split that chooses; needed by early stopping and the plateau schedule.
    /// - Throws: `TrainingError.invalidSetting("earlyStopping" or "lrSchedule", …)`
    ///   when early stopping or a plateau schedule has no validation split to watch.
    public init(trainer: Trainer, validation: (any RowSource)?) throws(TrainingError) {
        try Self.check(trainer.configuration, hasValidation: validation != nil)
        self.trainer = trainer
        self.validation = validation
        earlierSeconds = trainer.history.wallTime
        started = clock.now
        // A resumed run that early stopping had ended stays ended.
        if let stopping = trainer.configuration.earlyStopping, trainer.position.batch == 0,
           let last = trainer.history.epochs.last, stopping.stops(after: last.epoch, best: trainer.history.best) {
            stoppedEarly = true
        }
    }

    /// Refuses a configuration that watches a validation split (early
    /// stopping, a plateau schedule) for a run without one: the loop's rule,
    /// which a caller may check before it reads or writes anything.
    /// - Throws: `TrainingError.invalidSetting("earlyStopping" or "lrSchedule", …)`.
    public static func check(_ configuration: TrainingConfiguration, hasValidation: Bool) throws(TrainingError) {
        guard !hasValidation else { return }
        if let stopping = configuration.earlyStopping {
            throw .invalidSetting("earlyStopping", value: "\(stopping.patience)", reason: "early stopping watches a validation split, and none was given")
        }
        if case .plateau = configuration.schedule.shape {
            throw .invalidSetting("lrSchedule", value: "plateau", reason: "a plateau schedule watches a validation split, and none was given")
        }
    }

    /// Whether `configuration` needs a validation split: what `check` refuses without one.
    public static func needsValidation(_ configuration: TrainingConfiguration) -> Bool {
        (try? check(configuration, hasValidation: false)) == nil
    }

    /// Whether the validation split steers the run — the best epoch (whose
    /// checkpoint an observer may write), early stopping, a plateau schedule:
    /// whenever there is one. Then every rank of a job evaluates it and logs
    /// the epoch, so that each takes the same decisions from the same bits
    /// (evaluation gives the same bits on any rank and worker count); the
    /// other ranks would wait for rank 0's evaluation at the next collective anyway.
    public var steersOnValidation: Bool { validation != nil }

    /// Whether this process leads: rank 0 of a job, or the one process. It
    /// evaluates and logs every epoch; the other ranks only when the validation split steers.
    public var isLeader: Bool { (trainer.group?.rank ?? 0) == 0 }

    /// Wall-clock seconds the run has trained, its earlier processes included.
    public var wallTime: Double { earlierSeconds + seconds(since: started) }

    /// Seconds since this loop was made.
    public var elapsed: Double { seconds(since: started) }

    /// Trains until the configured epochs or steps are done, early stopping
    /// ends the run, or an observer asks to stop.
    /// - Parameter observers: told of every step and epoch, in this order.
    /// - Returns: why the run ended, the best epoch, and the final model.
    /// - Throws: `TrainingError.diverged` (a non-finite loss) or
    ///   `.nonFiniteParameters`, with no checkpoint named (the loop knows no
    ///   files); `.dataUnreadable`; whatever an observer throws.
    @discardableResult
    public func fit(observers: [any TrainingObserver] = []) throws -> FitResult {
        for observer in observers { try observer.didStart(self) }
        var epochStart = clock.now
        var epochSamples = 0
        var reason = FitResult.Reason.finished
        while !trainer.isFinished && !stoppedEarly {
            let (epoch, batches, rate) = (trainer.position.epoch, trainer.epochs.batchesPerEpoch, trainer.learningRate)
            var requests: StepRequests = []
            for observer in observers { requests.formUnion(observer.requests(self)) }
            let before = clock.now
            let result = try trainer.step(requests: requests)
            stepSeconds += seconds(since: before)
            epochSamples += result.sampleCount
            let endsEpoch = trainer.position.batch == 0
            let report = StepReport(epoch: epoch, batch: endsEpoch ? batches : trainer.position.batch, batches: batches,
                                    step: trainer.position.step, meanLoss: result.meanLoss, sampleCount: result.sampleCount,
                                    learningRate: rate, agreed: result.agreed, endsEpoch: endsEpoch)
            for observer in observers { try observer.didStep(self, report) }
            if endsEpoch {
                let seconds = seconds(since: epochStart)
                try endEpoch(seconds: seconds, samplesPerSecond: Double(epochSamples) / max(seconds, 1e-9), observers: observers)
                (epochStart, epochSamples) = (clock.now, 0)
            }
            if observers.contains(where: { $0.shouldStop(self) }) {
                reason = .stopRequested
                break
            }
        }
        if reason == .finished && stoppedEarly { reason = .stoppedEarly }
        var result = FitResult(reason: reason, best: trainer.history.best, network: trainer.evaluatedNetwork, isBest: false,
                               history: trainer.history)
        if trainer.configuration.earlyStopping != nil, reason != .stopRequested, let bestNetwork {
            (result.network, result.isBest) = (bestNetwork, true)
        }
        for observer in observers { try observer.didFinish(self, result) }
        return result
    }

    /// The epoch that just ended: its row (train loss from the step log, so
    /// that a resumed epoch counts its earlier steps; the validation split's
    /// loss and score), logged with the monitor's verdict; early stopping's
    /// and the plateau schedule's decisions.
    private func endEpoch(seconds: Double, samplesPerSecond: Double, observers: [any TrainingObserver]) throws {
        let configuration = trainer.configuration
        let epoch = trainer.position.epoch - 1
        var report = EpochReport(
            record: EpochRecord(epoch: epoch, step: trainer.position.step, trainLoss: .nan, testLoss: .nan, testScore: .nan,
                                learningRate: trainer.learningRate, samplesPerSecond: samplesPerSecond, wallTime: wallTime),
            seconds: seconds, isLogged: isLeader || steersOnValidation)
        if report.isLogged {
            // The epoch's train loss: Σ_b |b| · loss_b / Σ_b |b| over its batches.
            let losses = trainer.history.stepLosses.suffix(trainer.epochs.batchesPerEpoch)
            let sizes = (0..<losses.count).map { Double(trainer.epochs.batchRange($0).count) }
            report.record.trainLoss = zip(losses, sizes).map { $0 * $1 }.reduce(0, +) / sizes.reduce(0, +)
            try requireFiniteParameters()
            if let validation {
                // The monitor judges what is saved: the parameters' average, where there is one.
                let evaluation = try evaluate(trainer.evaluatedNetwork, on: validation, workers: configuration.workers, products: trainer.evaluationProducts)
                (report.record.validationLoss, report.record.validationScore) = (evaluation.meanLoss, evaluation.score)
            }
            for observer in observers { try observer.willEndEpoch(self, &report) }
            report.isBest = trainer.history.log(report.record, task: trainer.dataset.task, monitor: configuration.monitor,
                                                minDelta: configuration.minDelta)
            if report.isBest && restoresBestWeights && configuration.earlyStopping != nil { bestNetwork = trainer.evaluatedNetwork }
            if let stopping = configuration.earlyStopping, stopping.stops(after: epoch, best: trainer.history.best) {
                (stoppedEarly, report.stopsEarly) = (true, true)
            }
            if case .plateau(_, let patience, _) = configuration.schedule.shape, !stoppedEarly {
                report.reducedRate = trainer.history.reducesRate(after: epoch, patience: patience)
            }
        }
        for observer in observers { try observer.didEndEpoch(self, report) }
    }

    /// Stops the run when a step left a parameter that is not finite:
    /// nothing is evaluated, logged or saved from it.
    /// - Throws: `TrainingError.nonFiniteParameters` (no checkpoint named).
    public func requireFiniteParameters() throws(TrainingError) {
        guard trainer.network.parameters.allSatisfy(\.isFinite) else {
            throw .nonFiniteParameters(step: trainer.position.step, lastCheckpoint: nil)
        }
    }

    private func seconds(since instant: ContinuousClock.Instant) -> Double {
        let elapsed = clock.now - instant
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }
}
