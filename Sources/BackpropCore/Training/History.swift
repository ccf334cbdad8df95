/// One line of the training log: an epoch's summary.
public struct EpochRecord: Sendable, Equatable, Codable {
    public var epoch: Int
    public var step: Int
    public var trainLoss: Double
    public var testLoss: Double
    public var testAccuracy: Double
    public var learningRate: Double
    public var samplesPerSecond: Double
    /// Seconds of training since the run started (across resumes).
    public var wallTime: Double

    public init(epoch: Int, step: Int, trainLoss: Double, testLoss: Double, testAccuracy: Double,
                learningRate: Double, samplesPerSecond: Double, wallTime: Double) {
        self.epoch = epoch
        self.step = step
        self.trainLoss = trainLoss
        self.testLoss = testLoss
        self.testAccuracy = testAccuracy
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

    /// The best test accuracy logged so far (nil before the first epoch).
    public var bestAccuracy: Double? { epochs.map(\.testAccuracy).max() }
}
