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
                withStep(learningRate: η) { rule in rule.apply(w.baseAddress!, along: g.baseAddress!, range: 0..<w.count) }
            }
        }
    }
}

/// One step of an optimizer as an element-wise rule: w_i, and the state at
/// i, change from g_i alone. So disjoint ranges of the parameters can be
/// updated on different threads, right after their part of the gradient is
/// reduced, with the same bits as one pass over all of them.
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

    /// A rule that changes no parameter and copies the gradient to
    /// `gradient` (at the parameters' indices): a step whose update needs
    /// all of g first (`GradientNormClip`).
    static func copying(into gradient: UnsafeMutablePointer<Scalar>) -> UpdateRule {
        var rule = UpdateRule(kind: .copy)
        rule.first = gradient
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

    /// w_i ← rule(w_i, g_i, state_i) for i in `range` (see SGD and Adam for
    /// the equations). `gradient` points at g_{range.lowerBound}: the
    /// reduction hands over one block of the gradient at a time.
    @_specialize(where Scalar == Float)
    public func apply(_ w: UnsafeMutablePointer<Scalar>, along gradient: UnsafePointer<Scalar>, range: Range<Int>) {
        let g = gradient - range.lowerBound
        switch kind {
        case .copy:
            // Not an update: the gradient kept whole (`copying(into:)`).
            let kept = first!
            for i in range { kept[i] = g[i] }
        case .sgd:
            for i in range { w[i] -= η * (g[i] + λ * w[i]) }
        case .momentum, .nesterov:
            let v = first!
            let nesterov = kind == .nesterov
            for i in range {
                let gi = g[i] + λ * w[i]
                v[i] = Self.normalOrZero(μ * v[i] + gi)
                w[i] -= η * (nesterov ? gi + μ * v[i] : v[i])
            }
        case .adam, .adamW:
            let (m, v) = (first!, second!)
            let decoupled = kind == .adamW
            var start = range.lowerBound
            if let w = floatPointer(w), let g = floatPointer(UnsafePointer(g)), let m = floatPointer(m), let v = floatPointer(v) {
                start = adamFloats(w, g, m, v, range: range, decoupled: decoupled)
            }
            for i in start..<range.upperBound {
                if decoupled { w[i] -= η * λ * w[i] }
                let gi = decoupled ? g[i] : g[i] + λ * w[i]
                m[i] = Self.normalOrZero(β1 * m[i] + (1 - β1) * gi)
                v[i] = Self.normalOrZero(β2 * v[i] + (1 - β2) * gi * gi)
                let mHat = m[i] / correction1
                let vHat = v[i] / correction2
                w[i] -= η * mHat / (vHat.squareRoot() + ε)
            }
        case .rmsprop:
            let (v, buffer, average) = (first!, second, third)
            for i in range {
                let gi = g[i] + λ * w[i]
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
            for i in range {
                let gi = g[i] + λ * w[i]
                sum[i] += gi * gi
                w[i] -= η * gi / (sum[i].squareRoot() + ε)
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
