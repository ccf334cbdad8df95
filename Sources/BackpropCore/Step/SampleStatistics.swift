/// Per-sample measurements over some steps (an epoch): the gradient norms'
/// quantiles, and the gradient noise scale B_simple = tr(Σ)/|G|² (McCandlish
/// et al. 2018, appendix A.1) from the unbiased estimates of |G|² and tr(Σ)
/// that one batch of B samples gives with per-sample norms (B_small = 1):
///
///   |G|² ≈ (B |G_B|² − |g|²̄)/(B − 1),   tr(Σ) ≈ (|g|²̄ − |G_B|²)/(1 − 1/B),
///
/// where |g|²̄ is the mean of ‖∂E^n/∂w‖² (clipped, under DP-SGD) and G_B the
/// batch-mean gradient; numerator and denominator are summed over the steps
/// before their ratio is taken, as the paper advises.
public struct SampleStatistics: Sendable, Equatable {
    public private(set) var norms: [Float] = []
    public private(set) var gradientSquares = 0.0, traces = 0.0
    public private(set) var steps = 0

    mutating func add(norms stepNorms: [Float], clip: Double?, sumSquaredNorm: Double, keepNorms: Bool) {
        if keepNorms { norms += stepNorms }
        let b = Double(stepNorms.count)
        guard b >= 2 else { return }
        let meanSquare = stepNorms.reduce(0.0) { total, norm in
            let clipped = min(Double(norm), clip ?? .infinity)
            return total + clipped * clipped
        } / b
        let batchSquare = sumSquaredNorm / (b * b)
        gradientSquares += (b * batchSquare - meanSquare) / (b - 1)
        traces += (meanSquare - batchSquare) / (1 - 1 / b)
        steps += 1
    }

    /// B_simple over the steps so far; nil before a step of two or more samples.
    public var noiseScale: Double? { steps > 0 && gradientSquares > 0 ? traces / gradientSquares : nil }

    /// The norms' p-quantile (nearest rank), p in [0, 1]; nil without norms.
    public func normQuantile(_ p: Double) -> Double? {
        guard !norms.isEmpty else { return nil }
        let sorted = norms.sorted()
        return Double(sorted[min(Int((p * Double(sorted.count - 1)).rounded()), sorted.count - 1)])
    }
}
