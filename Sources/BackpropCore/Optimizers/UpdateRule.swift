/// One step of an optimizer as an element-wise rule: w_i, and the state at
/// i, change from g_i alone. So disjoint ranges of the parameters can be
/// updated on different threads, right after their part of the gradient is
/// reduced, with the same bits as one pass over all of them.
///
/// Every route to the parameters ends here (the step's gradient blocks, the
/// clipped gradient, a rank's slice under `mpirun`): the gradient is handed
/// over unscaled with the factor to scale it by, g_i · s, so that no route
/// makes a pass of its own over g before the rule's.
///
/// It points into the optimizer's buffers and is valid only inside
/// `Optimizer.withStep`.
public struct UpdateRule<Scalar: NetworkScalar>: @unchecked Sendable {
    enum Kind { case sgd, momentum, nesterov, adam, adamW, rmsprop, adagrad, copy }
    let kind: Kind
    /// η, μ, λ (SGD family); η, β₁, β₂, ε, λ and the bias corrections
    /// 1 − β₁ᵗ, 1 − β₂ᵗ of this step (Adam).
    var η: Scalar = 0, μ: Scalar = 0, λ: Scalar = 0
    var β1: Scalar = 0, β2: Scalar = 0, ε: Scalar = 0, correction1: Scalar = 1, correction2: Scalar = 1
    /// α, RMSprop's smoothing constant; whether it is centred.
    var α: Scalar = 0, centered = false
    /// v (momentum, Nesterov) or m (Adam); nil for plain SGD.
    var first: UnsafeMutablePointer<Scalar>?
    /// v (Adam); RMSprop's momentum buffer (nil without momentum).
    var second: UnsafeMutablePointer<Scalar>?
    /// RMSprop's average gradient (centred only).
    var third: UnsafeMutablePointer<Scalar>?
    /// The vector path of the rules that have one of their own (Adam's):
    /// the step's kernel, so that a run on any path takes every path's
    /// code and gets the same bits.
    var kernel = Kernel.automatic

    /// A rule that changes no parameter and copies the scaled gradient
    /// g_i · s to `gradient` (at the parameters' indices): a step whose
    /// update needs all of g first (`GradientNormClip`).
    static func copying(into gradient: UnsafeMutablePointer<Scalar>) -> UpdateRule {
        var rule = UpdateRule(kind: .copy)
        rule.first = gradient
        return rule
    }

    /// This rule on `kernel`'s vector path.
    func on(_ kernel: Kernel) -> UpdateRule {
        var rule = self
        rule.kernel = kernel
        return rule
    }

    /// x, or 0 where |x| is subnormal (below 2⁻¹²⁶ in Float). The moving
    /// averages of Adam and RMSprop, and momentum's velocity, decay geometrically where a weight's
    /// gradient is (nearly) always 0 — border pixels, dead units — and would
    /// sit in the subnormal range for thousands of steps, where every
    /// operation on them costs x86 a microcode assist (measured: the update
    /// took 70 % of a step, 4× slower, by epoch 40 of an AdamW run). Flushed
    /// here, in the rule's own arithmetic, the bits stay the same on every CPU.
    @inline(__always)
    static func normalOrZero(_ x: Scalar) -> Scalar { abs(x) < Scalar.leastNormalMagnitude ? 0 : x }

    /// w_i ← rule(w_i, g_i · s, state_i) for i in `range` (see SGD, Adam and
    /// RMSprop for the equations). `gradient` points at g_{range.lowerBound}:
    /// the step hands over one block of the gradient at a time.
    ///
    /// In Float the bulk runs eight parameters at a time
    /// (UpdateRule+Vectorized.swift) with the same operations in the same
    /// order, so the same bits; this loop takes the rest, and all of Double.
    @_specialize(where Scalar == Float)
    public func apply(_ w: UnsafeMutablePointer<Scalar>, along gradient: UnsafePointer<Scalar>, scaledBy s: Scalar,
                      range: Range<Int>) {
        var start = range.lowerBound
        if let w = floatPointer(w), let g = floatPointer(gradient) {
            start = applyFloats(w, along: g, scaledBy: Float(s), range: range)
        }
        if start == range.upperBound { return }
        let g = gradient - range.lowerBound
        switch kind {
        case .copy:
            // Not an update: the gradient kept whole (`copying(into:)`).
            let kept = first!
            for i in start..<range.upperBound { kept[i] = g[i] * s }
        case .sgd:
            for i in start..<range.upperBound { w[i] -= η * (g[i] * s + λ * w[i]) }
        case .momentum, .nesterov:
            let v = first!
            let nesterov = kind == .nesterov
            for i in start..<range.upperBound {
                let gi = g[i] * s + λ * w[i]
                v[i] = Self.normalOrZero(μ * v[i] + gi)
                w[i] -= η * (nesterov ? gi + μ * v[i] : v[i])
            }
        case .adam, .adamW:
            let (m, v) = (first!, second!)
            let decoupled = kind == .adamW
            for i in start..<range.upperBound {
                if decoupled { w[i] -= η * λ * w[i] }
                let gi = decoupled ? g[i] * s : g[i] * s + λ * w[i]
                m[i] = Self.normalOrZero(β1 * m[i] + (1 - β1) * gi)
                v[i] = Self.normalOrZero(β2 * v[i] + (1 - β2) * gi * gi)
                let mHat = m[i] / correction1
                let vHat = v[i] / correction2
                w[i] -= η * mHat / (vHat.squareRoot() + ε)
            }
        case .rmsprop:
            let (v, buffer, average) = (first!, second, third)
            for i in start..<range.upperBound {
                let gi = g[i] * s + λ * w[i]
                v[i] = Self.normalOrZero(α * v[i] + (1 - α) * gi * gi)
                var meanSquare = v[i]
                if let average {
                    average[i] = α * average[i] + (1 - α) * gi
                    meanSquare -= average[i] * average[i]
                }
                let denominator = meanSquare.squareRoot() + ε
                if let buffer {
                    buffer[i] = μ * buffer[i] + gi / denominator
                    w[i] -= η * buffer[i]
                } else {
                    w[i] -= η * gi / denominator
                }
            }
        case .adagrad:
            let sum = first!
            for i in start..<range.upperBound {
                let gi = g[i] * s + λ * w[i]
                sum[i] += gi * gi
                w[i] -= η * gi / (sum[i].squareRoot() + ε)
            }
        }
    }
}
