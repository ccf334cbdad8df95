import CGemm

// Every update rule in Float, eight parameters at a time (Adam and AdamW on
// the rule's kernel path: AVX-512F or AVX lanes in adam.c, these otherwise).
//
// Each is the scalar loop of `UpdateRule.apply` with the lanes side by side:
// the same operations in the same order, each rounded once (Swift never
// fuses a multiply and an add), so the same bits as that loop on every CPU.
// The gradient's scale is the first operation, g_i · s, as it was when the
// step scaled g in a pass of its own. Not here: the last range.count mod 8
// parameters, which the scalar loop takes.

extension UpdateRule {
    typealias Lanes = SIMD8<Float>

    /// The rule over the first ⌊range.count / 8⌋·8 parameters of `range`;
    /// returns where the scalar loop goes on.
    @inline(__always)
    func applyFloats(_ w: UnsafeMutablePointer<Float>, along gradient: UnsafePointer<Float>, scaledBy s: Float,
                     range: Range<Int>) -> Int {
        let g = gradient - range.lowerBound
        let (η, μ, λ) = (Float(self.η), Float(self.μ), Float(self.λ))
        let end = range.lowerBound + (range.count / 8) * 8
        let first = self.first.flatMap(floatPointer), second = self.second.flatMap(floatPointer)
        let third = self.third.flatMap(floatPointer)
        switch kind {
        case .copy:
            let kept = first!
            for i in stride(from: range.lowerBound, to: end, by: 8) { store8(load8(g + i) * s, kept + i) }
        case .sgd:
            for i in stride(from: range.lowerBound, to: end, by: 8) {
                let wi = load8(w + i)
                store8(wi - η * (load8(g + i) * s + λ * wi), w + i)
            }
        case .momentum:
            let v = first!
            for i in stride(from: range.lowerBound, to: end, by: 8) {
                let wi = load8(w + i)
                let vi = Self.normalOrZero(μ * load8(v + i) + (load8(g + i) * s + λ * wi))
                store8(vi, v + i)
                store8(wi - η * vi, w + i)
            }
        case .nesterov:
            let v = first!
            for i in stride(from: range.lowerBound, to: end, by: 8) {
                let wi = load8(w + i)
                let gi = load8(g + i) * s + λ * wi
                let vi = Self.normalOrZero(μ * load8(v + i) + gi)
                store8(vi, v + i)
                store8(wi - η * (gi + μ * vi), w + i)
            }
        case .adam, .adamW:
            let (m, v) = (first!, second!)
            let (β1, β2, ε) = (Float(self.β1), Float(self.β2), Float(self.ε))
            let (c1, c2) = (Float(correction1), Float(correction2))
            // η * λ * w is (η · λ) · w, as the scalar loop evaluates it.
            let (ηλ, oneMinusβ1, oneMinusβ2) = (η * λ, 1 - β1, 1 - β2)
            let decoupled = kind == .adamW
            var start = range.lowerBound
            #if arch(x86_64)
            if kernel != .portable {
                var r = backprop_adam_rule(eta: η, lambda: λ, beta1: β1, beta2: β2, epsilon: ε, correction1: c1, correction2: c2,
                                           scale: s, decoupled: decoupled ? 1 : 0)
                let (wp, gp, mp, vp, n) = (w + start, g + start, m + start, v + start, end - start)
                start += kernel == .avx512 ? backprop_adam_avx512(&r, wp, gp, mp, vp, n) : backprop_adam_avx2(&r, wp, gp, mp, vp, n)
            }
            #endif
            for i in stride(from: start, to: end, by: 8) {
                var wi = load8(w + i)
                if decoupled { wi -= ηλ * wi }
                let gi = decoupled ? load8(g + i) * s : load8(g + i) * s + λ * wi
                let mi = Self.normalOrZero(β1 * load8(m + i) + oneMinusβ1 * gi)
                let vi = Self.normalOrZero(β2 * load8(v + i) + oneMinusβ2 * gi * gi)
                store8(mi, m + i)
                store8(vi, v + i)
                store8(wi - η * (mi / c1) / ((vi / c2).squareRoot() + ε), w + i)
            }
        case .rmsprop:
            let v = first!
            let (α, ε) = (Float(self.α), Float(self.ε))
            let oneMinusα = 1 - α
            for i in stride(from: range.lowerBound, to: end, by: 8) {
                let wi = load8(w + i)
                let gi = load8(g + i) * s + λ * wi
                let vi = Self.normalOrZero(α * load8(v + i) + oneMinusα * gi * gi)
                store8(vi, v + i)
                var meanSquare = vi
                if let average = third {
                    let ai = α * load8(average + i) + oneMinusα * gi
                    store8(ai, average + i)
                    meanSquare -= ai * ai
                }
                let denominator = meanSquare.squareRoot() + ε
                if let buffer = second {
                    let bi = μ * load8(buffer + i) + gi / denominator
                    store8(bi, buffer + i)
                    store8(wi - η * bi, w + i)
                } else {
                    store8(wi - η * gi / denominator, w + i)
                }
            }
        case .adagrad:
            let sum = first!
            let ε = Float(self.ε)
            for i in stride(from: range.lowerBound, to: end, by: 8) {
                let wi = load8(w + i)
                let gi = load8(g + i) * s + λ * wi
                let si = load8(sum + i) + gi * gi
                store8(si, sum + i)
                store8(wi - η * gi / (si.squareRoot() + ε), w + i)
            }
        }
        return end
    }

    /// `normalOrZero`, lane by lane (NaN is kept, as there).
    @inline(__always)
    static func normalOrZero(_ x: Lanes) -> Lanes {
        let tiny = Lanes(repeating: Float.leastNormalMagnitude)
        return x.replacing(with: 0, where: (x .< tiny) .& (x .> -tiny))
    }
}
