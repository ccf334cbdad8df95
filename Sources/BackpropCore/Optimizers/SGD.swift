/// Stochastic gradient descent, with optional momentum or Nesterov momentum,
/// in PyTorch's convention (torch.optim.SGD, dampening 0):
///
///   g ← g + λw;  v ← μv + g;  w ← w − η·v          (momentum)
///                             w ← w − η·(g + μv)   (Nesterov)
///                             w ← w − η·g          (plain, μ unused)
///
/// One departure from torch.optim, as in Adam: a v that would be subnormal
/// is stored as 0 (`UpdateRule.normalOrZero`). Where a weight's gradient is
/// 0 for good (a dead unit), v decays through the subnormal range for about
/// 150 steps at μ = 0.9, each operation on it a microcode assist on x86
/// (measured: the update took 36 % of a step on data with many dead units);
/// it moves no update by more than η·2⁻¹²⁶.
public struct SGD<Scalar: NetworkScalar>: Optimizer {
    public let kind: OptimizerKind
    public let momentum: Scalar
    public let weightDecay: Scalar
    /// v, as long as the parameters (empty for plain SGD).
    private var velocity: [Scalar]
    private var step = 0

    public init(settings: OptimizerSettings, parameterCount: Int) {
        precondition([.sgd, .momentum, .nesterov].contains(settings.kind), "SGD cannot run \(settings.kind)")
        kind = settings.kind
        momentum = kind == .sgd ? 0 : Scalar(settings.momentum)
        weightDecay = Scalar(settings.weightDecay)
        velocity = kind == .sgd ? [] : Array(repeating: 0, count: parameterCount)
    }

    public var state: OptimizerState<Scalar> {
        get { OptimizerState(step: step, buffers: kind == .sgd ? [:] : ["velocity": velocity]) }
        set {
            step = newValue.step
            if kind != .sgd, let v = newValue.buffers["velocity"] {
                precondition(v.count == velocity.count, "velocity has \(v.count) values, expected \(velocity.count)")
                velocity = v
            }
        }
    }

    public mutating func withStep<R>(learningRate: Scalar, _ body: (UpdateRule<Scalar>) throws -> R) rethrows -> R {
        step += 1
        var rule = UpdateRule<Scalar>(kind: kind == .sgd ? .sgd : kind == .nesterov ? .nesterov : .momentum)
        (rule.η, rule.μ, rule.λ) = (learningRate, momentum, weightDecay)
        if kind == .sgd { return try body(rule) }
        return try velocity.withUnsafeMutableBufferPointer { v in
            rule.first = v.baseAddress
            return try body(rule)
        }
    }
}
