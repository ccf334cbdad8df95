import Foundation

/// Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), as
/// torch.optim.Adam / AdamW compute them:
///
///   AdamW only: w ← w − ηλw                      (decoupled weight decay)
///   Adam only:  g ← g + λw                       (L2 penalty in the gradient)
///   m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  t ← t + 1
///   w ← w − η · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)
public struct Adam<Scalar: NetworkScalar>: Optimizer {
    public let kind: OptimizerKind
    public var learningRate: Scalar
    public let beta1: Scalar, beta2: Scalar, epsilon: Scalar
    public let weightDecay: Scalar
    private var m: [Scalar]
    private var v: [Scalar]
    private var step = 0

    public init(settings: OptimizerSettings, parameterCount: Int) {
        precondition([.adam, .adamw].contains(settings.kind), "Adam cannot run \(settings.kind)")
        kind = settings.kind
        learningRate = Scalar(settings.learningRate)
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

    @_specialize(where Scalar == Float)
    public mutating func update(_ parameters: inout [Scalar], along gradient: [Scalar]) {
        precondition(parameters.count == gradient.count, "gradient length \(gradient.count) != \(parameters.count)")
        step += 1
        let (η, β1, β2, ε, λ) = (learningRate, beta1, beta2, epsilon, weightDecay)
        // Bias corrections in Double: β^t for large t underflows gracefully there.
        let correction1 = Scalar(1 - Foundation.pow(Double(beta1), Double(step)))
        let correction2 = Scalar(1 - Foundation.pow(Double(beta2), Double(step)))
        let decoupled = kind == .adamw
        parameters.withUnsafeMutableBufferPointer { w in
            gradient.withUnsafeBufferPointer { g in
                m.withUnsafeMutableBufferPointer { m in
                    v.withUnsafeMutableBufferPointer { v in
                        for i in 0..<w.count {
                            if decoupled { w[i] -= η * λ * w[i] }
                            let gi = decoupled ? g[i] : g[i] + λ * w[i]
                            m[i] = β1 * m[i] + (1 - β1) * gi
                            v[i] = β2 * v[i] + (1 - β2) * gi * gi
                            let mHat = m[i] / correction1
                            let vHat = v[i] / correction2
                            w[i] -= η * mHat / (vHat.squareRoot() + ε)
                        }
                    }
                }
            }
        }
    }
}
