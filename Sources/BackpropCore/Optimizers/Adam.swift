import Foundation

/// Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), as
/// torch.optim.Adam / AdamW compute them:
///
///   AdamW only: w ← w − ηλw                      (decoupled weight decay)
///   Adam only:  g ← g + λw                       (L2 penalty in the gradient)
///   m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  t ← t + 1
///   w ← w − η · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
///
/// One departure from torch.optim: an m or v that would be subnormal is
/// stored as 0 (`UpdateRule.normalOrZero`): that keeps the update at full
/// speed where it would otherwise slow fourfold, and moves no update by more
/// than η·2⁻¹²⁶/((1 − β₁ᵗ)·ε) (from m) or √(2⁻¹²⁶) in the denominator (from v).
public struct Adam<Scalar: NetworkScalar>: Optimizer {
    public let kind: OptimizerKind
    public let beta1: Scalar, beta2: Scalar, epsilon: Scalar
    public let weightDecay: Scalar
    private var m: [Scalar]
    private var v: [Scalar]
    private var step = 0

    public init(settings: OptimizerSettings, parameterCount: Int) {
        precondition([.adam, .adamw].contains(settings.kind), "Adam cannot run \(settings.kind)")
        kind = settings.kind
        beta1 = Scalar(settings.beta1)
        beta2 = Scalar(settings.beta2)
        epsilon = Scalar(settings.epsilon)
        weightDecay = Scalar(settings.weightDecay)
        m = Array(repeating: 0, count: parameterCount)
        v = Array(repeating: 0, count: parameterCount)
    }

    public var state: OptimizerState<Scalar> {
        get { OptimizerState(step: step, buffers: ["m": m, "v": v]) }
        set {
            step = newValue.step
            if let newM = newValue.buffers["m"], let newV = newValue.buffers["v"] {
                precondition(newM.count == m.count && newV.count == v.count, "Adam moments have the wrong length")
                m = newM
                v = newV
            }
        }
    }

    public mutating func withStep<R>(learningRate: Scalar, _ body: (UpdateRule<Scalar>) throws -> R) rethrows -> R {
        step += 1
        var rule = UpdateRule<Scalar>(kind: kind == .adamw ? .adamW : .adam)
        (rule.η, rule.β1, rule.β2, rule.ε, rule.λ) = (learningRate, beta1, beta2, epsilon, weightDecay)
        // Bias corrections in Double: β^t for large t underflows gracefully there.
        rule.correction1 = Scalar(1 - Foundation.pow(Double(beta1), Double(step)))
        rule.correction2 = Scalar(1 - Foundation.pow(Double(beta2), Double(step)))
        return try m.withUnsafeMutableBufferPointer { m in
            try v.withUnsafeMutableBufferPointer { v in
                rule.first = m.baseAddress
                rule.second = v.baseAddress
                return try body(rule)
            }
        }
    }
}
