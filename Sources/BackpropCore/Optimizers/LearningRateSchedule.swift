import Foundation

/// How the learning rate changes with the optimizer step t (0 for the first
/// step). A schedule is a pure function of t, so its whole state is the step
/// count the checkpoint already holds.
public enum LearningRateSchedule: Sendable, Equatable, Codable {
    /// η_t = η.
    case constant
    /// η_t = η · γ^⌊t / stepSize⌋ (torch.optim.lr_scheduler.StepLR, stepped per optimizer step).
    case stepDecay(stepSize: Int, gamma: Double)
    /// Linear warm-up from 0 over `warmupSteps`, then cosine annealing to
    /// `minimum` at `totalSteps`: η_t = η_min + ½(η − η_min)(1 + cos(π (t − w)/(T − w))).
    case cosine(warmupSteps: Int, totalSteps: Int, minimum: Double)

    /// γ of a step schedule when none is given (PyTorch's StepLR); a step
    /// schedule steps once an epoch and a cosine one starts from η_min = 0 with
    /// no warm-up unless told otherwise.
    public static let defaultGamma = 0.1

    /// η_t for base rate η.
    public func rate(base: Double, step t: Int) -> Double {
        switch self {
        case .constant:
            return base
        case .stepDecay(let stepSize, let gamma):
            return base * Foundation.pow(gamma, Double(t / max(stepSize, 1)))
        case .cosine(let warmup, let total, let minimum):
            if t < warmup { return base * Double(t + 1) / Double(warmup) }
            let span = max(total - warmup, 1)
            let progress = min(Double(t - warmup) / Double(span), 1)
            return minimum + 0.5 * (base - minimum) * (1 + Foundation.cos(Double.pi * progress))
        }
    }

    /// A short name for logs and checkpoints.
    public var name: String {
        switch self {
        case .constant: return "constant"
        case .stepDecay: return "step"
        case .cosine: return "cosine"
        }
    }
}
