/// RMSprop (Hinton 2012) and Adagrad (Duchi et al. 2011), as torch.optim.RMSprop
/// and torch.optim.Adagrad compute them:
///
///   RMSprop:  g ← g + λw;  v ← αv + (1 − α)g²;  centred: ḡ ← αḡ + (1 − α)g, v̂ = v − ḡ², else v̂ = v
///             momentum μ > 0: b ← μb + g/(√v̂ + ε), w ← w − ηb;  else w ← w − η g/(√v̂ + ε)
///   Adagrad:  g ← g + λw;  s ← s + g²;  w ← w − η_t g/(√s + ε),  η_t = η/(1 + (t − 1)·decay)
public struct RMSprop<Scalar: NetworkScalar>: Optimizer {
    public let kind = OptimizerKind.rmsprop
    public let settings: OptimizerSettings
    /// v; b (empty without momentum); ḡ (empty unless centred).
    private var squareAverage: [Scalar], momentumBuffer: [Scalar], gradientAverage: [Scalar]
    private var step = 0

    public init(settings: OptimizerSettings, parameterCount: Int) {
        precondition(settings.kind == .rmsprop, "RMSprop cannot run \(settings.kind)")
        self.settings = settings
        squareAverage = [Scalar](repeating: 0, count: parameterCount)
        momentumBuffer = settings.momentum > 0 ? [Scalar](repeating: 0, count: parameterCount) : []
        gradientAverage = settings.isCentered ? [Scalar](repeating: 0, count: parameterCount) : []
    }

    public var state: OptimizerState<Scalar> {
        get {
            var buffers = ["square_avg": squareAverage]
            if !momentumBuffer.isEmpty { buffers["momentum_buffer"] = momentumBuffer }
            if !gradientAverage.isEmpty { buffers["grad_avg"] = gradientAverage }
            return OptimizerState(step: step, buffers: buffers)
        }
        set {
            step = newValue.step
            restore(&squareAverage, from: newValue, "square_avg")
            restore(&momentumBuffer, from: newValue, "momentum_buffer")
            restore(&gradientAverage, from: newValue, "grad_avg")
        }
    }

    public mutating func withStep<R>(learningRate: Scalar, _ body: (UpdateRule<Scalar>) throws -> R) rethrows -> R {
        step += 1
        var rule = UpdateRule<Scalar>(kind: .rmsprop)
        (rule.η, rule.μ, rule.λ, rule.ε, rule.α) = (learningRate, Scalar(settings.momentum), Scalar(settings.weightDecay),
                                                 Scalar(settings.epsilon), Scalar(settings.smoothing))
        return try squareAverage.withUnsafeMutableBufferPointer { v in
            try momentumBuffer.withUnsafeMutableBufferPointer { b in
                try gradientAverage.withUnsafeMutableBufferPointer { average in
                    rule.first = v.baseAddress
                    rule.second = b.isEmpty ? nil : b.baseAddress
                    rule.third = average.isEmpty ? nil : average.baseAddress
                    return try body(rule)
                }
            }
        }
    }
}

public struct Adagrad<Scalar: NetworkScalar>: Optimizer {
    public let kind = OptimizerKind.adagrad
    public let settings: OptimizerSettings
    /// s, starting at the initial accumulator value.
    private var sum: [Scalar]
    private var step = 0

    public init(settings: OptimizerSettings, parameterCount: Int) {
        precondition(settings.kind == .adagrad, "Adagrad cannot run \(settings.kind)")
        self.settings = settings
        sum = [Scalar](repeating: Scalar(settings.accumulatorStart), count: parameterCount)
    }

    public var state: OptimizerState<Scalar> {
        get { OptimizerState(step: step, buffers: ["sum": sum]) }
        set {
            step = newValue.step
            restore(&sum, from: newValue, "sum")
        }
    }

    public mutating func withStep<R>(learningRate: Scalar, _ body: (UpdateRule<Scalar>) throws -> R) rethrows -> R {
        step += 1
        var rule = UpdateRule<Scalar>(kind: .adagrad)
        // η_t in Double, as PyTorch forms it from Python floats.
        let rate = Double(learningRate) / (1 + Double(step - 1) * settings.decay)
        (rule.η, rule.λ, rule.ε) = (Scalar(rate), Scalar(settings.weightDecay), Scalar(settings.epsilon))
        return try sum.withUnsafeMutableBufferPointer { s in
            rule.first = s.baseAddress
            return try body(rule)
        }
    }
}

/// Replaces `buffer` by `saved`'s buffer `name`, if it has one (of the same length).
private func restore<Scalar>(_ buffer: inout [Scalar], from saved: OptimizerState<Scalar>, _ name: String) {
    guard !buffer.isEmpty, let restored = saved.buffers[name] else { return }
    precondition(restored.count == buffer.count, "\(name) has \(restored.count) values, expected \(buffer.count)")
    buffer = restored
}
