/// What `TrainingLoop.fit(observers:)` tells the outside world: Keras'
/// `Callback`, Lightning's `Callback`. Everything that is output — the
/// progress bar, checkpoints and best.h5, metrics.csv, TensorBoard events,
/// signals — is an observer; the loop itself writes nothing and prints nothing.
///
/// Within one step the loop calls, in the order the observers were given:
/// `requests(_:)` before the step; `didStep(_:_:)` after it; at an epoch's
/// end `willEndEpoch(_:_:)` (observers add measurements to the epoch's row
/// before it is logged), then `didEndEpoch(_:_:)` (the row is logged and the
/// loop's decisions are made); then `shouldStop(_:)`. `didFinish(_:_:)` comes
/// once, after the last step, however the run ended.
///
/// In a job of several ranks every rank runs the loop with its own
/// observers; a collective an observer performs (gathering the optimizer's
/// state for a checkpoint) must be performed by every rank at the same step,
/// which the same decisions from the same bits guarantee.
///
/// Every method has a default that does nothing.
public protocol TrainingObserver: AnyObject {
    /// The run is about to take its first step (of this process).
    func didStart(_ loop: TrainingLoop) throws
    /// What this process asks of the job after the next step (a save, a stop);
    /// `StepReport.agreed` then holds every rank's requests.
    func requests(_ loop: TrainingLoop) -> StepRequests
    /// One optimizer step was taken.
    func didStep(_ loop: TrainingLoop, _ step: StepReport) throws
    /// An epoch ended: its row is not logged yet; add measurements to it
    /// (`EpochReport.record`'s test columns and extras, `notes` for the line).
    func willEndEpoch(_ loop: TrainingLoop, _ epoch: inout EpochReport) throws
    /// An epoch ended and was logged: best, early stopping and the plateau
    /// schedule have decided.
    func didEndEpoch(_ loop: TrainingLoop, _ epoch: EpochReport) throws
    /// Whether the run should stop after the step just taken (a signal).
    func shouldStop(_ loop: TrainingLoop) -> Bool
    /// The run ended: all its steps, early stopping, or a stop asked for.
    func didFinish(_ loop: TrainingLoop, _ result: FitResult) throws
}

extension TrainingObserver {
    public func didStart(_ loop: TrainingLoop) throws {}
    public func requests(_ loop: TrainingLoop) -> StepRequests { [] }
    public func didStep(_ loop: TrainingLoop, _ step: StepReport) throws {}
    public func willEndEpoch(_ loop: TrainingLoop, _ epoch: inout EpochReport) throws {}
    public func didEndEpoch(_ loop: TrainingLoop, _ epoch: EpochReport) throws {}
    public func shouldStop(_ loop: TrainingLoop) -> Bool { false }
    public func didFinish(_ loop: TrainingLoop, _ result: FitResult) throws {}
}

/// One optimizer step, as observers see it.
public struct StepReport: Sendable {
    /// The epoch the step belonged to (0-based) and its batch within it (1-based: 1 … `batches`).
    public var epoch: Int
    public var batch: Int
    public var batches: Int
    /// The optimizer steps taken in all, this one included.
    public var step: Int
    /// (1/B) Σ_n E^n over the step's batch.
    public var meanLoss: Double
    public var sampleCount: Int
    /// η of the step.
    public var learningRate: Double
    /// The requests of every rank of the job (this process's alone without one).
    public var agreed: StepRequests
    /// Whether the step was the last of its epoch (`willEndEpoch` follows).
    public var endsEpoch: Bool
}

/// An epoch's end, as observers see it.
public struct EpochReport: Sendable {
    /// The epoch's row: train loss, validation columns, rate, speed, wall time.
    public var record: EpochRecord
    /// Wall-clock seconds the epoch took in this process.
    public var seconds: Double
    /// Whether this process evaluated and logged the epoch. In a job, a rank
    /// other than 0 does so only when the validation split steers the run
    /// (`TrainingLoop.steersOnValidation`); otherwise it only takes part in collectives.
    public var isLogged: Bool
    /// Whether the epoch's monitor is the best yet (best.h5's epoch).
    public var isBest = false
    /// Whether early stopping ends the run after this epoch.
    public var stopsEarly = false
    /// Whether a plateau schedule lowered η after this epoch (the new rate is the trainer's `learningRate`).
    public var reducedRate = false
    /// Text observers add to the epoch's line, in the order they add it.
    public var notes: [String] = []
}

/// How `TrainingLoop.fit(observers:)` ended, and the model it ends with.
public struct FitResult: Sendable {
    /// Why the loop ended.
    public enum Reason: Sendable, Equatable {
        /// The configured epochs (or steps) are done.
        case finished
        /// Early stopping: `patience` epochs without a better monitor.
        case stoppedEarly
        /// An observer asked to stop (`shouldStop`), after the step it saw.
        case stopRequested
    }

    public var reason: Reason
    /// The epoch the monitor chose (best.h5's); nil without a validation split.
    public var best: History.Best?
    /// The final model: with early stopping the best epoch's weights when the
    /// loop holds them (Keras' `restore_best_weights`), else the last step's.
    public var network: Network<Float>
    /// Whether `network` is the best epoch's.
    public var isBest: Bool
    /// Every epoch's row (losses, scores, learning rate, time), the run's
    /// earlier processes included: Keras' `History`, what metrics.csv holds.
    public var history: History
}
