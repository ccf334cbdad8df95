/// Stochastic gradient descent, with optional momentum or Nesterov momentum,
/// in PyTorch's convention (torch.optim.SGD, dampening 0):
///
///   g ← g + λw;  v ← μv + g;  w ← w − η·v          (momentum)
///                             w ← w − η·(g + μv)   (Nesterov)
///                             w ← w − η·g          (plain, μ unused)
public struct SGD<Scalar: NetworkScalar>: Optimizer {
    public let kind: OptimizerKind
    public var learningRate: Scalar
    public let momentum: Scalar
    public let weightDecay: Scalar
    /// v, as long as the parameters (empty for plain SGD).
    private var velocity: [Scalar]
    private var step = 0

    public init(settings: OptimizerSettings, parameterCount: Int) {
        precondition([.sgd, .momentum, .nesterov].contains(settings.kind), "SGD cannot run \(settings.kind)")
        kind = settings.kind
        learningRate = Scalar(settings.learningRate)
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

    @_specialize(where Scalar == Float)
    public mutating func update(_ parameters: inout [Scalar], along gradient: [Scalar]) {
        precondition(parameters.count == gradient.count, "gradient length \(gradient.count) != \(parameters.count)")
        let (η, μ, λ) = (learningRate, momentum, weightDecay)
        let nesterov = kind == .nesterov
        step += 1
        parameters.withUnsafeMutableBufferPointer { w in
            gradient.withUnsafeBufferPointer { g in
                if kind == .sgd {
                    for i in 0..<w.count { w[i] -= η * (g[i] + λ * w[i]) }
                    return
                }
                velocity.withUnsafeMutableBufferPointer { v in
                    for i in 0..<w.count {
                        let gi = g[i] + λ * w[i]
                        v[i] = μ * v[i] + gi
                        w[i] -= η * (nesterov ? gi + μ * v[i] : v[i])
                    }
                }
            }
        }
    }
}
