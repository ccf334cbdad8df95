import Foundation

/// The learning rate of every optimizer step t (0 for the first): a base
/// rate η and the shape of its change over the run. A schedule is a pure
/// function of t — and, for a plateau schedule, of the reductions made so far,
/// which the run's `History` holds — so its whole state is in a checkpoint.
/// The one place η_t is computed: the trainer and the checkpoint call `rate(at:reductions:)`.
public struct LearningRateSchedule: Sendable, Equatable, Codable {
    /// How η_t follows from η and t.
    public enum Shape: Sendable, Equatable, Codable {
        /// η_t = η.
        case constant
        /// η_t = η · γ^⌊t / stepSize⌋ (torch.optim.lr_scheduler.StepLR, stepped per optimizer step).
        case stepDecay(stepSize: Int, gamma: Double)
        /// Linear warm-up from 0 over `warmupSteps`, then cosine annealing to
        /// `minimum` at `totalSteps`: η_t = η_min + ½(η − η_min)(1 + cos(π (t − w)/(T − w))).
        case cosine(warmupSteps: Int, totalSteps: Int, minimum: Double)
        /// η_t = max(η · factor^r, η_min) after r reductions, one after each `patience`
        /// epochs without a better validation monitor (Keras' ReduceLROnPlateau, `History.reducesRate`).
        case plateau(factor: Double, patience: Int, minimum: Double)
    }

    /// η, the base rate (`--learning-rate`).
    public var base: Double
    public var shape: Shape

    /// γ of a step schedule when none is given (PyTorch's StepLR); a step
    /// schedule steps once an epoch and a cosine one starts from η_min = 0 with
    /// no warm-up unless told otherwise.
    public static let defaultGamma = 0.1
    /// A cosine schedule's warm-up steps and η_min when none are given.
    public static let defaultWarmupSteps = 0, defaultMinimum = 0.0
    /// A plateau schedule's factor and patience when none are given (PyTorch's ReduceLROnPlateau).
    public static let defaultPlateauFactor = 0.1, defaultPlateauPatience = 10

    /// The schedule of base rate `base` and shape `shape`.
    /// - Parameters:
    ///   - base: η, the rate of a constant schedule and the peak of the others.
    ///   - shape: how the rate changes with the step.
    public init(base: Double, _ shape: Shape = .constant) {
        self.base = base
        self.shape = shape
    }

    /// η_t, the rate of optimizer step t (0-based), after `reductions` plateau reductions.
    public func rate(at t: Int, reductions: Int = 0) -> Double {
        switch shape {
        case .plateau(let factor, _, let minimum):
            return max(base * Foundation.pow(factor, Double(reductions)), minimum)
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
}

extension LearningRateSchedule.Shape {
    /// A short name for logs and checkpoints ("constant", "step", "cosine").
    public var name: String {
        switch self {
        case .constant: return "constant"
        case .stepDecay: return "step"
        case .cosine: return "cosine"
        case .plateau: return "plateau"
        }
    }
}
