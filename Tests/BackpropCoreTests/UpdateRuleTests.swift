@testable import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// The update rules: their eight-lane Float path against the scalar loop and
/// Adam's against its equations, bit for bit, and the state that would be
/// subnormal stored as 0.
struct UpdateRuleTests {
    /// Every rule with every buffer it can keep: RMSprop plain, with momentum, centred, both.
    static let rules: [OptimizerSettings] = OptimizerKind.allCases.map { OptimizerSettings(kind: $0, weightDecay: 0.001) } + [
        { var s = OptimizerSettings(kind: .rmsprop, momentum: 0.5, weightDecay: 0.001); s.centered = true; return s }(),
        { var s = OptimizerSettings(kind: .rmsprop, momentum: 0, weightDecay: 0); s.centered = true; return s }(),
        OptimizerSettings(kind: .rmsprop, momentum: 0.9),
    ]

    /// The values that take other paths through the arithmetic: zeros of both signs,
    /// subnormals, the smallest normals, the largest finite, infinities and NaN.
    static let special: [Float] = [0, -0, .leastNonzeroMagnitude, -.leastNormalMagnitude.nextDown, .leastNormalMagnitude,
                                   -.greatestFiniteMagnitude, .infinity, -.infinity, .nan, 1e-20, 3e19]

    @Test("every rule on every vector path this CPU runs gives the bits of the scalar loop, scale and special values included, step after step",
          arguments: rules, Kernel.allCases)
    func lanesEqualScalarLoop(settings: OptimizerSettings, kernel: Kernel) {
        guard kernel.isAvailable else { return }  // the CPU cannot run this path's lanes
        let n = 203
        var generator = SeededGenerator(seed: 12)
        func values(_ special: Bool) -> [Float] {
            (0..<n).map { i in special && i % 7 == 3 ? Self.special[(i / 7) % Self.special.count] : Float(generator.nextNormal()) }
        }
        var lanes = settings.makeOptimizer(parameterCount: n, scalar: Float.self)
        var scalar = settings.makeOptimizer(parameterCount: n, scalar: Float.self)
        // A state that starts with special values too (the step count stays 0).
        var state = lanes.state
        // (Centred RMSprop's ḡ small beside v, so that v − ḡ² stays mostly positive.)
        for name in state.buffers.keys.sorted() {
            state.buffers[name] = values(true).map { name == "grad_avg" ? 0.01 * $0 : ["square_avg", "v", "sum"].contains(name) ? abs($0) : $0 }
        }
        lanes.state = state
        scalar.state = state
        let start = values(true)
        var (w1, w2) = (start, start)
        let scales: [Float] = [1, 1 / 256, 0.3, 7]
        for (t, scale) in scales.enumerated() {
            let g = values(t % 2 == 0)
            w1.withUnsafeMutableBufferPointer { w in
                g.withUnsafeBufferPointer { g in
                    lanes.withStep(learningRate: 0.01) { rule in
                        rule.on(kernel).apply(w.baseAddress!, along: g.baseAddress!, scaledBy: scale, range: 0..<n)
                    }
                }
            }
            // Pieces of 1 to 7 parameters: the scalar loop alone.
            w2.withUnsafeMutableBufferPointer { w in
                g.withUnsafeBufferPointer { g in
                    scalar.withStep(learningRate: 0.01) { rule in
                        var first = 0
                        while first < n {
                            let last = min(n, first + 1 + first % 7)
                            rule.apply(w.baseAddress!, along: g.baseAddress! + first, scaledBy: scale, range: first..<last)
                            first = last
                        }
                    }
                }
            }
            /// The first parameter whose bits differ, if any.
            func firstDifference(_ a: [Float], _ b: [Float]) -> Int? { a.indices.first { a[$0].bitPattern != b[$0].bitPattern } }
            #expect(firstDifference(w1, w2) == nil, "\(settings.kind) on \(kernel): w, step \(t + 1)")
            for (name, buffer) in lanes.state.buffers {
                #expect(firstDifference(buffer, scalar.state.buffers[name]!) == nil, "\(settings.kind) on \(kernel): \(name), step \(t + 1)")
            }
        }
        #expect(w1.map(\.bitPattern) != start.map(\.bitPattern))
    }

    @Test("the copying rule keeps g · s, lanes and loop alike")
    func copyingScales() {
        let g: [Float] = (0..<19).map { Float($0) * 0.7 - 3 } + Self.special
        var kept = [Float](repeating: .nan, count: g.count), w = [Float](repeating: 5, count: g.count)
        kept.withUnsafeMutableBufferPointer { k in
            w.withUnsafeMutableBufferPointer { w in
                g.withUnsafeBufferPointer { g in
                    UpdateRule<Float>.copying(into: k.baseAddress!).apply(w.baseAddress!, along: g.baseAddress!, scaledBy: 0.1, range: 0..<g.count)
                }
            }
        }
        #expect(kept.map(\.bitPattern) == g.map { ($0 * 0.1).bitPattern })
        #expect(w.allSatisfy { $0 == 5 })
    }

    /// The rule of Adam.swift's comment written out for one parameter, in Float, each operation rounded once.
    func scalarStep(w: inout Float, g: Float, m: inout Float, v: inout Float, η: Float, λ: Float, decoupled: Bool, t: Int) {
        let (β1, β2, ε): (Float, Float, Float) = (0.9, 0.999, 1e-8)
        // The corrections in Double, of the Float β's (as Adam.withStep computes them).
        let c1 = Float(1 - Foundation.pow(Double(β1), Double(t))), c2 = Float(1 - Foundation.pow(Double(β2), Double(t)))
        if decoupled { w -= η * λ * w }
        let gi = decoupled ? g : g + λ * w
        m = β1 * m + (1 - β1) * gi
        if abs(m) < Float.leastNormalMagnitude { m = 0 }
        v = β2 * v + (1 - β2) * gi * gi
        if abs(v) < Float.leastNormalMagnitude { v = 0 }
        w -= η * (m / c1) / ((v / c2).squareRoot() + ε)
    }

    @Test("Adam and AdamW over 21 parameters (two blocks of 8 lanes and 5 left over) give the scalar rule's bits, step after step",
          arguments: [OptimizerKind.adam, .adamw])
    func lanesEqualScalar(kind: OptimizerKind) {
        var generator = SeededGenerator(seed: 4)
        let count = 21
        var w = (0..<count).map { _ in Float(generator.nextNormal()) }
        var (m, v) = ([Float](repeating: 0, count: count), [Float](repeating: 0, count: count))
        var expected = w
        var optimizer = OptimizerSettings(kind: kind, weightDecay: 0.01).makeOptimizer(parameterCount: count, scalar: Float.self)
        for t in 1...5 {
            // Gradients of every size, tiny ones among them: g² below 2⁻¹²⁶ reaches v.
            let g = (0..<count).map { i in Float(generator.nextNormal()) * (i % 3 == 0 ? 1e-21 : 1) }
            optimizer.update(&w, along: g, learningRate: 0.01)
            for i in 0..<count {
                scalarStep(w: &expected[i], g: g[i], m: &m[i], v: &v[i], η: 0.01, λ: 0.01, decoupled: kind == .adamw, t: t)
            }
            #expect(w.map(\.bitPattern) == expected.map(\.bitPattern), "step \(t)")
            #expect(optimizer.state.buffers["m"]! == m && optimizer.state.buffers["v"]! == v, "step \(t)")
        }
    }

    @Test("a moment that decays into the subnormal range is stored as 0, never as a subnormal")
    func subnormalMoments() {
        var optimizer = OptimizerSettings(kind: .adam).makeOptimizer(parameterCount: 9, scalar: Float.self)
        var w = [Float](repeating: 1, count: 9)
        optimizer.update(&w, along: [Float](repeating: 1e-3, count: 9), learningRate: 1e-3)
        // Then a gradient of exactly 0: m shrinks by β₁ = 0.9 a step, and v by β₂.
        var sawZero = false
        for _ in 0..<900 {
            optimizer.update(&w, along: [Float](repeating: 0, count: 9), learningRate: 1e-3)
            let moments = optimizer.state.buffers["m"]! + optimizer.state.buffers["v"]!
            #expect(!moments.contains { $0 != 0 && abs($0) < Float.leastNormalMagnitude })
            if optimizer.state.buffers["m"]!.allSatisfy({ $0 == 0 }) { sawZero = true }
        }
        #expect(sawZero, "m never reached 0")
        #expect(UpdateRule<Float>.normalOrZero(Float.leastNormalMagnitude) == Float.leastNormalMagnitude)
        #expect(UpdateRule<Float>.normalOrZero(-Float.leastNormalMagnitude.nextDown) == 0)
        #expect(UpdateRule<Float>.normalOrZero(.nan).isNaN)
    }

    @Test("momentum's and Nesterov's velocity that decays into the subnormal range is stored as 0, never as a subnormal",
          arguments: [OptimizerKind.momentum, .nesterov])
    func subnormalVelocity(kind: OptimizerKind) {
        var optimizer = OptimizerSettings(kind: kind, momentum: 0.9).makeOptimizer(parameterCount: 5, scalar: Float.self)
        var w = [Float](repeating: 1, count: 5)
        optimizer.update(&w, along: [Float](repeating: 1e-3, count: 5), learningRate: 0.05)
        var sawZero = false
        for _ in 0..<900 {
            optimizer.update(&w, along: [Float](repeating: 0, count: 5), learningRate: 0.05)
            let v = optimizer.state.buffers.values.flatMap { $0 }
            #expect(!v.isEmpty && !v.contains { $0 != 0 && abs($0) < Float.leastNormalMagnitude })
            if v.allSatisfy({ $0 == 0 }) { sawZero = true }
        }
        #expect(sawZero, "v never reached 0")
    }
}
