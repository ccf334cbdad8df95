/// One rule for moving the parameters along a gradient.
///
/// The gradient given is the one to step along (already divided by the batch
/// size under `--reduction mean`). An optimizer's state (moments, step count)
/// is plain stored data, exposed as `state` so that checkpoints can save and
/// restore it without knowing the rule.
public protocol Optimizer<Scalar>: Sendable {
    associatedtype Scalar: NetworkScalar
    /// Which rule this is.
    var kind: OptimizerKind { get }
    /// Everything the rule remembers between steps.
    var state: OptimizerState<Scalar> { get set }
    /// Begins one step (the step count advances) and hands `body` the rule of
    /// this step with learning rate η (the schedule's, handed in each step:
    /// the optimizer keeps no copy), pointing at the optimizer's state;
    /// `body` applies it to every parameter once, in any ranges, on any threads.
    mutating func withStep<R>(learningRate η: Scalar, _ body: (UpdateRule<Scalar>) throws -> R) rethrows -> R
}

extension Optimizer {
    /// One step over all parameters: parameters ← rule(parameters, gradient, state).
    public mutating func update(_ parameters: inout [Scalar], along gradient: [Scalar], learningRate η: Scalar) {
        precondition(parameters.count == gradient.count, "gradient length \(gradient.count) != \(parameters.count)")
        parameters.withUnsafeMutableBufferPointer { w in
            gradient.withUnsafeBufferPointer { g in
                withStep(learningRate: η) { rule in rule.apply(w.baseAddress!, along: g.baseAddress!, scaledBy: 1, range: 0..<w.count) }
            }
        }
    }
}

/// The optimizers a run can name (`--optimizer`).
public enum OptimizerKind: String, CaseIterable, Sendable, Codable {
    case sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad

    /// The state buffers an optimizer of this kind keeps, for `settings`.
    public func bufferNames(_ settings: OptimizerSettings) -> [String] {
        switch self {
        case .sgd: return []
        case .momentum, .nesterov: return ["velocity"]
        case .adam, .adamw: return ["m", "v"]
        case .rmsprop:
            return ["square_avg"] + (settings.momentum > 0 ? ["momentum_buffer"] : []) + (settings.isCentered ? ["grad_avg"] : [])
        case .adagrad: return ["sum"]
        }
    }

    /// Every buffer name any kind can keep, in a fixed order: what a
    /// checkpoint's /optimizer may hold (`bufferNames` with every option on).
    public static var allBufferNames: [String] {
        var everything = OptimizerSettings(kind: .rmsprop, momentum: 1)
        everything.centered = true
        var names: [String] = []
        for kind in allCases { for name in kind.bufferNames(everything) where !names.contains(name) { names.append(name) } }
        return names
    }
}

/// An optimizer's memory: the number of steps taken and named per-parameter
/// buffers (each as long as the parameter vector), e.g. "velocity", or "m" and "v".
public struct OptimizerState<Scalar: NetworkScalar>: Sendable, Equatable {
    public var step: Int
    public var buffers: [String: [Scalar]]

    public init(step: Int = 0, buffers: [String: [Scalar]] = [:]) {
        self.step = step
        self.buffers = buffers
    }
}

/// The hyper-parameters that pick and tune an optimizer.
public struct OptimizerSettings: Sendable, Equatable, Codable {
    public var kind: OptimizerKind
    /// μ for momentum and Nesterov (PyTorch's `momentum`).
    public var momentum: Double
    /// λ: L2 penalty added to the gradient (SGD family, Adam) or decoupled (AdamW).
    public var weightDecay: Double
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double
    /// RMSprop: α, the smoothing constant of the squared gradients (nil: 0.99).
    public var alpha: Double? = nil
    /// RMSprop: divide by the variance estimate, centred by the mean gradient (nil: no).
    public var centered: Bool? = nil
    /// Adagrad: η_t = η / (1 + (t − 1) · decay) (nil: 0).
    public var learningRateDecay: Double? = nil
    /// Adagrad: the accumulator's starting value (nil: 0).
    public var initialAccumulator: Double? = nil

    public var smoothing: Double { alpha ?? 0.99 }
    public var isCentered: Bool { centered ?? false }
    public var decay: Double { learningRateDecay ?? 0 }
    public var accumulatorStart: Double { initialAccumulator ?? 0 }

    /// PyTorch's defaults for `kind`: momentum 0.9 for the momentum rules and
    /// 0 for RMSprop; ε 1e-8, but 1e-10 for Adagrad. (The learning rate is the
    /// schedule's, `LearningRateSchedule.base`.)
    public static func defaults(for kind: OptimizerKind) -> OptimizerSettings {
        OptimizerSettings(kind: kind, momentum: kind == .rmsprop ? 0 : 0.9,
                          epsilon: kind == .adagrad ? 1e-10 : 1e-8)
    }

    public init(
        kind: OptimizerKind, momentum: Double = 0.9,
        weightDecay: Double = 0, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8
    ) {
        self.kind = kind
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    /// A fresh optimizer of this kind for `parameterCount` parameters.
    public func makeOptimizer<T: NetworkScalar>(parameterCount: Int, scalar _: T.Type = T.self) -> any Optimizer<T> {
        switch kind {
        case .sgd, .momentum, .nesterov:
            return SGD<T>(settings: self, parameterCount: parameterCount)
        case .adam, .adamw:
            return Adam<T>(settings: self, parameterCount: parameterCount)
        case .rmsprop:
            return RMSprop<T>(settings: self, parameterCount: parameterCount)
        case .adagrad:
            return Adagrad<T>(settings: self, parameterCount: parameterCount)
        }
    }
}
