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
    /// η; schedules change it between steps.
    var learningRate: Scalar { get set }
    /// Everything the rule remembers between steps.
    var state: OptimizerState<Scalar> { get set }
    /// One step: parameters ← rule(parameters, gradient, state).
    mutating func update(_ parameters: inout [Scalar], along gradient: [Scalar])
}

/// The optimizers a run can name (`--optimizer`).
public enum OptimizerKind: String, CaseIterable, Sendable, Codable {
    case sgd, momentum, nesterov, adam, adamw
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
    public var learningRate: Double
    /// μ for momentum and Nesterov (PyTorch's `momentum`).
    public var momentum: Double
    /// λ: L2 penalty added to the gradient (SGD family, Adam) or decoupled (AdamW).
    public var weightDecay: Double
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double

    public init(
        kind: OptimizerKind, learningRate: Double, momentum: Double = 0.9,
        weightDecay: Double = 0, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8
    ) {
        self.kind = kind
        self.learningRate = learningRate
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
        }
    }
}
