/// One line of the training log: an epoch's summary. Two rows are equal when
/// every value is (NaN, a value not measured, equal to NaN).
public struct EpochRecord: Sendable, Equatable, Codable {
    public var epoch: Int
    public var step: Int
    public var trainLoss: Double
    /// The loss and the task's score (accuracy or RMSE, `LearningTask`) on the
    /// validation split: NaN when the run has none. They choose best.h5.
    public var validationLoss = Double.nan
    public var validationScore = Double.nan
    /// The loss and score on the test split: NaN in the epochs it was not
    /// measured (it is, at the end of the run, and each epoch with `--report-test every-epoch`).
    public var testLoss: Double
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
                                    "grad_norm_max", "noise_scale", "data_wait_seconds"]

    public static func == (a: EpochRecord, b: EpochRecord) -> Bool {
        func same(_ x: Double, _ y: Double) -> Bool { x == y || (x.isNaN && y.isNaN) }
        let values: [KeyPath<EpochRecord, Double>] = [\.trainLoss, \.validationLoss, \.validationScore, \.testLoss, \.testScore,
                                                      \.learningRate, \.samplesPerSecond, \.wallTime]
        return a.epoch == b.epoch && a.step == b.step && values.allSatisfy { same(a[keyPath: $0], b[keyPath: $0]) }
            && a.extras.keys.sorted() == b.extras.keys.sorted() && a.extras.allSatisfy { same($0.value, b.extras[$0.key]!) }
    }

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
        /// Whether an epoch may not have measured it (a split's loss and
        /// score): NaN then, an empty cell in metrics.csv, and a column files
        /// before 0.8 may lack.
        public let isOptional: Bool

        init(_ name: String, _ key: WritableKeyPath<EpochRecord, Double> & Sendable, optional: Bool = false) {
            self.name = name
            value = { $0[keyPath: key] }
            set = { $0[keyPath: key] = $1 }
            text = { "\($0[keyPath: key])" }
            isCount = false
            isOptional = optional
        }

        init(count name: String, _ key: WritableKeyPath<EpochRecord, Int> & Sendable, shownFrom first: Int = 0) {
            self.name = name
            value = { Double($0[keyPath: key]) }
            set = { $0[keyPath: key] = Int($1) }
            text = { "\($0[keyPath: key] + first)" }
            isCount = true
            isOptional = false
        }
    }

    /// The columns of every epoch row under `task`, in file order: epoch
    /// (0-based in checkpoints, 1-based in metrics.csv), step, train_loss,
    /// validation_loss and the task's score on it (validation_accuracy or
    /// validation_rmse), test_loss and test_accuracy (or test_rmse),
    /// learning_rate, samples_per_second, wall_time. The extras follow where measured.
    public static func columns(_ task: LearningTask) -> [Column] {
        [Column(count: "epoch", \.epoch, shownFrom: 1), Column(count: "step", \.step), Column("train_loss", \.trainLoss),
         Column("validation_loss", \.validationLoss, optional: true),
         Column(task.scoreColumn(on: "validation"), \.validationScore, optional: true),
         Column("test_loss", \.testLoss, optional: true), Column(task.scoreColumn, \.testScore, optional: true),
         Column("learning_rate", \.learningRate), Column("samples_per_second", \.samplesPerSecond), Column("wall_time", \.wallTime)]
    }

    /// An empty row, filled in column by column from a file.
    static var blank: EpochRecord {
        EpochRecord(epoch: 0, step: 0, trainLoss: 0, testLoss: 0, testScore: 0, learningRate: 0, samplesPerSecond: 0, wallTime: 0)
    }
}

/// What a run has logged, in a size that does not grow with the run: the
/// losses of the epoch under way, a digest of every step's loss, the epoch log
/// thinned to at most `keptEpochs` rows, and the best epoch. Checkpoints save
/// it whole, so a checkpoint costs the same at epoch 10 and at epoch 100,000;
/// the full epoch log is the run directory's metrics.csv (appended a row an epoch).
public struct History: Sendable, Equatable {
    /// (1/B) Σ_n E^n of each step of the epoch under way, in order (an
    /// epoch's train loss is their mean); cleared as the next epoch begins.
    public var stepLosses: [Double] = []
    /// FNV-1a over the bit patterns of every step's loss since the run began:
    /// two runs logged the same losses at every step, bit for bit, when these agree.
    public var stepLossDigest: UInt64 = History.emptyDigest
    /// The epoch log as kept: the epochs whose index is a multiple of
    /// `epochStride`, and the last one. The stride doubles whenever more
    /// than `keptEpochs` rows would be kept, so the rows are a pure function
    /// of the log, the same however often the run was resumed.
    public private(set) var epochs: [EpochRecord] = []
    /// A power of two: 1 until the run has logged more than `keptEpochs` epochs.
    public private(set) var epochStride = 1
    /// The epoch with the best validation score so far (best.h5's), whether
    /// or not it is still kept in `epochs`; nil without a validation split:
    /// the test split never chooses.
    public private(set) var best: Best?
    /// Wall-clock seconds the run had trained when this state was saved
    /// (summed across resumes).
    public var wallTime: Double = 0
    /// A plateau schedule's state: the reductions of η made so far, and the epoch of the last.
    public private(set) var reductions = 0
    public private(set) var lastReduction: Int?

    /// The most rows `epochs` keeps (and curves.svg draws).
    public static let keptEpochs = 400
    /// The digest of no losses (FNV-1a's offset basis).
    public static let emptyDigest: UInt64 = 0xCBF2_9CE4_8422_2325

    /// An epoch and its monitored value (`Monitor`).
    public struct Best: Sendable, Equatable {
        public var epoch: Int
        public var score: Double
        public init(epoch: Int, score: Double) {
            self.epoch = epoch
            self.score = score
        }
    }

    public init() {}

    /// A history read back from a file: its rows are thinned as `log` would
    /// have kept them, and `best` is taken from the rows when not given.
    public init(stepLosses: [Double], stepLossDigest: UInt64, epochs: [EpochRecord], epochStride: Int = 1,
                best: Best? = nil, task: LearningTask, wallTime: Double, reductions: Int = 0, lastReduction: Int? = nil) {
        self.reductions = reductions
        self.lastReduction = lastReduction
        self.stepLosses = stepLosses
        self.stepLossDigest = stepLossDigest
        self.epochStride = max(1, epochStride)
        self.wallTime = wallTime
        for record in epochs { log(record, task: task) }
        if let best { self.best = best }
    }

    /// Logs one step's loss.
    /// - Parameters:
    ///   - loss: (1/B) Σ_n E^n of the step.
    ///   - startsEpoch: whether the step was the first of its epoch.
    public mutating func log(stepLoss loss: Double, startsEpoch: Bool) {
        if startsEpoch { stepLosses.removeAll(keepingCapacity: true) }
        stepLosses.append(loss)
        stepLossDigest = Self.digest(stepLossDigest, loss)
    }

    /// The digest after one more loss: h ← (h ⊕ bits) · FNV prime.
    public static func digest(_ digest: UInt64, _ loss: Double) -> UInt64 {
        (digest ^ loss.bitPattern) &* 0x0000_0100_0000_01B3
    }

    /// Logs an epoch's row, thinning the kept rows, and updates the best
    /// epoch by `monitor` (its value improved by more than `minDelta`).
    /// - Returns: whether the epoch is the best so far (NaN, or no validation split, never is).
    @discardableResult
    public mutating func log(_ record: EpochRecord, task: LearningTask, monitor: Monitor = .validationScore,
                             minDelta: Double = 0) -> Bool {
        if let last = epochs.last, last.epoch % epochStride != 0 { epochs.removeLast() }
        epochs.append(record)
        while epochs.count > Self.keptEpochs {
            epochStride *= 2
            epochs = epochs.filter { $0.epoch % epochStride == 0 || $0 == record }
        }
        let score = monitor.value(of: record)
        guard !score.isNaN, best.map({ monitor.improves(score, on: $0.score, minDelta: minDelta, task: task) }) ?? true else { return false }
        best = Best(epoch: record.epoch, score: score)
        return true
    }

    /// Whether a plateau schedule lowers η after logging `epoch`: `patience`
    /// epochs have passed without a better monitor since the best epoch and
    /// since the last reduction (Keras' ReduceLROnPlateau, no cooldown). Counts the reduction.
    public mutating func reducesRate(after epoch: Int, patience: Int) -> Bool {
        guard let best else { return false }
        guard epoch - max(best.epoch, lastReduction ?? -1) >= patience else { return false }
        reductions += 1
        lastReduction = epoch
        return true
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
}

extension Monitor {
    /// The monitored value of an epoch's row (NaN without a validation split).
    public func value(of record: EpochRecord) -> Double {
        self == .validationScore ? record.validationScore : record.validationLoss
    }
}

extension EarlyStopping {
    /// Whether a run whose best epoch is `best` stops after logging `epoch`.
    public func stops(after epoch: Int, best: History.Best?) -> Bool {
        guard let best else { return false }
        return epoch - best.epoch >= patience
    }
}
