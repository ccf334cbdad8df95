/// Global gradient-norm clipping (Keras' `clipnorm`, PyTorch's
/// `clip_grad_norm_`, Lightning's `gradient_clip_val`): before the update,
/// the step's gradient g — (1/B) Σ_n ∂E^n/∂w over every weight and bias, as
/// the optimizer would receive it — becomes
///
///     g ← g · min(1, C / ‖g‖),   ‖g‖ = (Σ_i g_i²)^½,
///
/// so that no step moves along a gradient longer than C; the direction is
/// kept. It is not the gradient of any E (unlike DP-SGD's per-sample clip,
/// which bounds each ∂E^n/∂w): a rescaling of the step, one factor for all
/// parameters.
///
/// The same bits on any worker or rank count: ‖g‖² is Σ_c s_c over fixed
/// chunks c of `chunkSize` parameters, s_c = Σ_{i∈c} g_i² summed in Double in
/// index order (each g_i² is exact in Double), the s_c added in chunk order.
/// Workers take whole chunks, and so do ranks (`ShardPlan.parameterSlice`).
/// The factor is rounded to Float once and g_i · factor is one rounding, so
/// a gradient shorter than C is left exactly as it was.
public struct GradientNormClip: Sendable, Equatable {
    /// C, the longest gradient a step follows.
    public let maximumNorm: Double

    /// The parameters whose squares are summed together, in index order.
    public static let chunkSize = 4096

    public init(maximumNorm: Double) {
        self.maximumNorm = maximumNorm
    }

    /// s_c = Σ_{i∈c} g_i² of each chunk of `range`, in chunk order.
    /// - Precondition: `range` starts on a chunk boundary.
    static func chunkSquares(_ g: UnsafePointer<Float>, range: Range<Int>, workers: Int) -> [Double] {
        precondition(range.lowerBound % chunkSize == 0, "\(range) does not start on a chunk of \(chunkSize)")
        let chunks = (range.count + chunkSize - 1) / chunkSize
        var squares = [Double](repeating: 0, count: chunks)
        let gradient = SharedPointer(base: UnsafeMutablePointer(mutating: g))
        squares.withUnsafeMutableBufferPointer { s in
            let sums = SharedPointer(base: s.baseAddress!)
            // Each chunk writes only its own slot.
            forEachShard(chunks, workers: workers) { _, c in
                let first = range.lowerBound + c * chunkSize, last = min(first + chunkSize, range.upperBound)
                var sum = 0.0
                for i in first..<last { sum += Double(gradient.base[i]) * Double(gradient.base[i]) }
                sums.base[c] = sum
            }
        }
        return squares
    }

    /// min(1, C/‖g‖) from every chunk's s_c, in chunk order; 1 for g = 0.
    func factor(chunkSquares: [Double]) -> Float {
        let norm = chunkSquares.reduce(0, +).squareRoot()
        return norm > maximumNorm ? Float(maximumNorm / norm) : 1
    }

    /// `rule` over all `count` parameters at `w` along g · min(1, C/‖g‖)
    /// (one process), a chunk a task on `workers` workers: the chunks' Σ g_i²
    /// first, then the rule, which scales each g_i as it reads it (the
    /// rule is element-wise: the same bits as one pass).
    /// - Returns: the factor min(1, C/‖g‖).
    @discardableResult
    func apply(_ rule: UpdateRule<Float>, to w: UnsafeMutablePointer<Float>, along g: UnsafePointer<Float>,
               count: Int, workers: Int) -> Float {
        let factor = factor(chunkSquares: Self.chunkSquares(g, range: 0..<count, workers: workers))
        let (parameters, gradient) = (SharedPointer(base: w), SharedPointer(base: UnsafeMutablePointer(mutating: g)))
        forEachShard((count + Self.chunkSize - 1) / Self.chunkSize, workers: workers) { _, c in
            let first = c * Self.chunkSize
            rule.apply(parameters.base, along: gradient.base + first, scaledBy: factor,
                       range: first..<min(first + Self.chunkSize, count))
        }
        return factor
    }
}
