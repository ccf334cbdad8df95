/// What chooses among a run's epochs — best.h5, and when early stopping
/// ends the run: a quantity measured on the validation split, never the test split.
public enum Monitor: String, CaseIterable, Sendable, Codable {
    /// The task's score (accuracy: higher is better; RMSE: lower).
    case validationScore = "validation-score"
    /// The mean loss (lower is better).
    case validationLoss = "validation-loss"

    /// Whether `value` improves on `best` by more than `minDelta` under `task`
    /// (Keras' EarlyStopping: `value < best − min_delta` for a loss).
    public func improves(_ value: Double, on best: Double, minDelta: Double, task: LearningTask) -> Bool {
        let lowerIsBetter = self == .validationLoss || task == .regression
        return lowerIsBetter ? value < best - minDelta : value > best + minDelta
    }
}

/// Early stopping (Keras' `EarlyStopping(patience:, min_delta:,
/// restore_best_weights: true)`): the run ends after `patience` epochs
/// without an improvement of the monitor, and the final model is the best epoch's.
public struct EarlyStopping: Sendable, Equatable, Codable {
    /// Epochs without an improvement before the run stops.
    public var patience: Int

    public init(patience: Int) {
        self.patience = patience
    }
}
