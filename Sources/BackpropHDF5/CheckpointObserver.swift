import BackpropCore
import BackpropIO
import Foundation

/// When to write checkpoints.
public struct CheckpointPolicy: Sendable, Equatable {
    /// Every N optimizer steps (0: never).
    public var everySteps = 0
    /// After every epoch.
    public var everyEpoch = true
    /// When this many seconds of wall time have passed since the last one.
    public var interval: Double?
    /// Step checkpoints kept in the run directory.
    public var keep = 3

    public init(everySteps: Int = 0, everyEpoch: Bool = true, interval: Double? = nil, keep: Int = 3) {
        self.everySteps = everySteps
        self.everyEpoch = everyEpoch
        self.interval = interval
        self.keep = keep
    }
}

/// The fit loop's checkpoints in a run directory (Keras' `ModelCheckpoint`):
/// after every epoch and every N steps as the policy says, when its
/// wall-clock interval passed, when an epoch is the last or early stopping
/// ends the run, and after the last step; and whenever an epoch is the best
/// yet on the validation split, as best.h5.
///
/// In a job every rank has one: a checkpoint gathers the optimizer's state
/// (a collective), and each rank reaches it at the same step from the same
/// decisions; only the writer (rank 0) writes. An interval that has passed is
/// a request the job agrees on after the step.
public final class CheckpointObserver: TrainingObserver {
    public let directory: RunDirectory
    public let policy: CheckpointPolicy
    /// Whether this process writes the files (rank 0, or the one process).
    public let writes: Bool
    /// The dataset file and its fingerprint, recorded in every checkpoint.
    public let dataPath: String
    public let dataFingerprint: String
    /// The dataset's class names, kept in the checkpoints (when one per output).
    public var classNames: [String]?
    /// The teacher file the run distils from, recorded in every checkpoint.
    public var teacherPath: String?
    /// The checkpoint file written last (or resumed from), for messages.
    public private(set) var lastCheckpoint: String?
    private var lastSavedStep: Int?
    private let clock = ContinuousClock()
    private var lastSave: ContinuousClock.Instant
    /// The job asked for a save after the step that ended the epoch: done with the epoch's.
    private var saveAgreed = false

    /// - Parameters:
    ///   - directory: where the checkpoints go (`RunDirectory.save`).
    ///   - policy: when.
    ///   - dataPath: the dataset file, recorded for resume.
    ///   - dataFingerprint: its training data's fingerprint, checked on resume.
    ///   - writes: whether this process writes (false on ranks other than 0).
    ///   - resumedFrom: the checkpoint the run resumed from: its step is saved already.
    public init(directory: RunDirectory, policy: CheckpointPolicy, dataPath: String, dataFingerprint: String,
                writes: Bool = true, resumedFrom: String? = nil) {
        self.directory = directory
        self.policy = policy
        self.dataPath = dataPath
        self.dataFingerprint = dataFingerprint
        self.writes = writes
        lastCheckpoint = resumedFrom
        lastSave = clock.now
    }

    /// The trainer's state as a checkpoint of this run.
    public func checkpoint(of trainer: Trainer) -> Checkpoint {
        var checkpoint = Checkpoint(of: trainer, dataPath: dataPath, dataFingerprint: dataFingerprint,
                                    classNames: classNames?.count == trainer.network.outputCount ? classNames : nil)
        checkpoint.teacherPath = teacherPath
        return checkpoint
    }

    public func didStart(_ loop: TrainingLoop) throws {
        // A resumed run's state is already on disk.
        if lastCheckpoint != nil { lastSavedStep = loop.trainer.position.step }
        lastSave = clock.now
    }

    public func requests(_ loop: TrainingLoop) -> StepRequests {
        guard let interval = policy.interval else { return [] }
        return (clock.now - lastSave) / .seconds(1) >= interval ? .save : []
    }

    public func didStep(_ loop: TrainingLoop, _ step: StepReport) throws {
        // An epoch's last step is saved (or not) with the epoch.
        guard !step.endsEpoch else {
            saveAgreed = step.agreed.contains(.save)
            return
        }
        if (policy.everySteps > 0 && step.step % policy.everySteps == 0) || step.agreed.contains(.save) { try save(loop) }
    }

    public func didEndEpoch(_ loop: TrainingLoop, _ epoch: EpochReport) throws {
        let step = loop.trainer.position.step
        let policySaves = policy.everyEpoch || (policy.everySteps > 0 && step % policy.everySteps == 0)
        // A new best epoch is always saved, as best.h5 (Keras' save_best_only), whatever the policy.
        if policySaves || loop.trainer.isFinished || epoch.stopsEarly || epoch.isBest {
            try save(loop, isBest: epoch.isBest)
        } else if saveAgreed {
            try save(loop)
        }
        saveAgreed = false
    }

    public func didFinish(_ loop: TrainingLoop, _ result: FitResult) throws {
        let step = loop.trainer.position.step
        if lastSavedStep != step || step == 0 { try save(loop) }
    }

    /// Writes the trainer's state as the run directory's next checkpoint.
    /// - Throws: `TrainingError.nonFiniteParameters` (nothing is saved of
    ///   such a state); `StorageError` when the file cannot be written.
    private func save(_ loop: TrainingLoop, isBest: Bool = false) throws {
        do {
            try loop.requireFiniteParameters()
        } catch {
            throw error.naming(lastCheckpoint: lastCheckpoint)
        }
        loop.trainer.gatherOptimizerState()
        if writes {
            loop.trainer.history.wallTime = loop.wallTime
            lastCheckpoint = try directory.save(checkpoint(of: loop.trainer), isBest: isBest, keep: policy.keep)
        }
        lastSavedStep = loop.trainer.position.step
        lastSave = clock.now
    }
}
