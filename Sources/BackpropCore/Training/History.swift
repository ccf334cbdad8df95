/// One line of the training log: an epoch's summary.
public struct EpochRecord: Sendable, Equatable, Codable {
    public var epoch: Int
    public var step: Int
    public var trainLoss: Double
    public var testLoss: Double
    /// The run's task's score on the test split: accuracy or RMSE (`LearningTask`).
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

// MARK: - The epoch log's columns

extension EpochRecord {
    /// One column of the epoch log, declared once for every file that holds
    /// it: a checkpoint's /metrics/epochs/<name> (`value`, read back by
    /// `set`) and metrics.csv (`text`).
    public struct Column: Sendable {
        public let name: String
        /// The value as a checkpoint stores it (float64).
        public let value: @Sendable (EpochRecord) -> Double
        /// Sets the value read back from a checkpoint.
        public let set: @Sendable (inout EpochRecord, Double) -> Void
        /// The value as metrics.csv shows it.
        public let text: @Sendable (EpochRecord) -> String
        /// Whether the values are counts (whole numbers), checked on read.
        public let isCount: Bool

        init(_ name: String, _ key: WritableKeyPath<EpochRecord, Double> & Sendable) {
            self.name = name
            value = { $0[keyPath: key] }
            set = { $0[keyPath: key] = $1 }
            text = { "\($0[keyPath: key])" }
            isCount = false
        }

        init(count name: String, _ key: WritableKeyPath<EpochRecord, Int> & Sendable, shownFrom first: Int = 0) {
            self.name = name
            value = { Double($0[keyPath: key]) }
            set = { $0[keyPath: key] = Int($1) }
            text = { "\($0[keyPath: key] + first)" }
            isCount = true
        }
    }

    /// The columns of every epoch row under `task`, in file order: epoch
    /// (0-based in checkpoints, 1-based in metrics.csv), step, train_loss,
    /// test_loss, the task's score (test_accuracy or test_rmse),
    /// learning_rate, samples_per_second, wall_time. The extras follow where measured.
    public static func columns(_ task: LearningTask) -> [Column] {
        [Column(count: "epoch", \.epoch, shownFrom: 1), Column(count: "step", \.step), Column("train_loss", \.trainLoss),
         Column("test_loss", \.testLoss), Column(task.scoreColumn, \.testScore), Column("learning_rate", \.learningRate),
         Column("samples_per_second", \.samplesPerSecond), Column("wall_time", \.wallTime)]
    }

    /// An empty row, filled in column by column from a file.
    static var blank: EpochRecord {
        EpochRecord(epoch: 0, step: 0, trainLoss: 0, testLoss: 0, testScore: 0, learningRate: 0, samplesPerSecond: 0, wallTime: 0)
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

    /// The rows of `columns` read back from a file, one array of values per column, of equal lengths.
    /// - Parameters:
    ///   - values: each column's values, in the order of `columns`.
    ///   - columns: the columns they belong to (`EpochRecord.columns`).
    public static func epochs(from values: [[Double]], columns: [EpochRecord.Column]) -> [EpochRecord] {
        (0..<(values.first?.count ?? 0)).map { i in
            var record = EpochRecord.blank
            for (column, value) in zip(columns, values) { column.set(&record, value[i]) }
            return record
        }
    }

    /// The best test score logged so far under `task` (nil before the first epoch).
    public func best(_ task: LearningTask) -> Double? {
        epochs.map(\.testScore).filter { !$0.isNaN }
            .reduce(nil) { best, score in best.map { task.improves(score, on: $0) ? score : $0 } ?? score }
    }
}
