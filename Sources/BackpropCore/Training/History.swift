/// One line of the training log: an epoch's summary.
public struct EpochRecord: Sendable, Equatable, Codable {
    public var epoch: Int
    public var step: Int
    public var trainLoss: Double
    public var testLoss: Double
    /// The run's task's score on the test split: accuracy or RMSE (`Task`).
    public var testScore: Double
    public var learningRate: Double
    public var samplesPerSecond: Double
    /// Seconds of training since the run started (across resumes).
    public var wallTime: Double
    /// What a run measures besides (`EpochRecord.extraNames`): ε under
    /// DP-SGD, per-sample gradient norm quantiles, the gradient noise scale.
    public var extras: [String: Double] = [:]

    /// The extras' names, in the order of metrics.csv and the epoch line.
    public static let extraNames = ["epsilon", "grad_norm_min", "grad_norm_p10", "grad_norm_p50", "grad_norm_p90",
                                    "grad_norm_max", "noise_scale"]

    public init(epoch: Int, step: Int, trainLoss: Double, testLoss: Double, testScore: Double,
                learningRate: Double, samplesPerSecond: Double, wallTime: Double) {
        self.epoch = epoch
        self.step = step
        self.trainLoss = trainLoss
        self.testLoss = testLoss
        self.testScore = testScore
        self.learningRate = learningRate
        self.samplesPerSecond = samplesPerSecond
        self.wallTime = wallTime
    }
}

/// Everything a run has logged so far; saved in checkpoints so that a resumed
/// run continues the same record.
public struct History: Sendable, Equatable {
    /// (1/B) Σ_n E^n of every optimizer step, in order.
    public var stepLosses: [Double] = []
    public var epochs: [EpochRecord] = []
    /// Wall-clock seconds the run had trained when this state was saved
    /// (summed across resumes).
    public var wallTime: Double = 0

    public init(stepLosses: [Double] = [], epochs: [EpochRecord] = [], wallTime: Double = 0) {
        self.stepLosses = stepLosses
        self.epochs = epochs
        self.wallTime = wallTime
    }

    /// The best test score logged so far under `task` (nil before the first epoch).
    public func best(_ task: LearningTask) -> Double? {
        epochs.map(\.testScore).filter { !$0.isNaN }
            .reduce(nil) { best, score in best.map { task.improves(score, on: $0) ? score : $0 } ?? score }
    }
}
