import Foundation

/// What a dataset asks of a model, chosen once from its targets: the score
/// each epoch is judged by, and how every consumer names and shows it.
public enum LearningTask: String, Sendable, Codable, CaseIterable {
    /// Class labels: judged by accuracy, the fraction of samples whose
    /// largest output is the label (higher is better).
    case classification
    /// Real-valued targets: judged by the RMSE √((1/NK) Σ_n Σ_k (y_k − t_k)²)
    /// (lower is better).
    case regression

    /// The score in words: "test accuracy" or "test RMSE".
    public var scoreName: String { scoreName(on: "test") }

    /// The score on a split in words: "validation accuracy", "test RMSE".
    public func scoreName(on split: String) -> String {
        switch self {
        case .classification: return "\(split) accuracy"
        case .regression: return "\(split) RMSE"
        }
    }

    /// The score's column in metrics.csv and in a checkpoint's /metrics/epochs.
    public var scoreColumn: String { scoreColumn(on: "test") }

    /// The column of the score on a split: "validation_accuracy", "test_rmse".
    public func scoreColumn(on split: String) -> String {
        switch self {
        case .classification: return "\(split)_accuracy"
        case .regression: return "\(split)_rmse"
        }
    }

    /// The name a checkpoint stores in the "metric" attribute of /data.
    public var metricName: String {
        switch self {
        case .classification: return "accuracy"
        case .regression: return "rmse"
        }
    }

    /// The task whose `metricName` this is.
    public init?(metricName: String) {
        guard let task = LearningTask.allCases.first(where: { $0.metricName == metricName }) else { return nil }
        self = task
    }

    /// Whether `score` beats `best`.
    public func improves(_ score: Double, on best: Double) -> Bool {
        switch self {
        case .classification: return score > best
        case .regression: return score < best
        }
    }

    /// A score as people read it: "85.12%" or "0.1234".
    public func format(_ score: Double) -> String {
        switch self {
        case .classification: return String(format: "%.2f%%", 100 * score)
        case .regression: return String(format: "%.4g", score)
        }
    }
}
