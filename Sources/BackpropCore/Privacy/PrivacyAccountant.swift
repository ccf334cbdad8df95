import Foundation

/// The privacy spent by DP-SGD: Rényi differential privacy of the subsampled
/// Gaussian mechanism (Mironov, Talwar and Zhang 2019, "Rényi Differential
/// Privacy of the Sampled Gaussian Mechanism", §3.3), composed over the steps
/// and converted to (ε, δ) as Opacus's RDP accountant does (Balle et al. 2020,
/// Theorem 21), at Opacus's orders.
///
/// Each step releases Σ_n clip(g_n) + N(0, σ²C²): a sum with L2 sensitivity C
/// over a Poisson sample that takes each example with probability q. Its RDP
/// at order α is log(A_α)/(α − 1) per step, and T steps compose to T times that.
public enum PrivacyAccountant {
    /// Opacus's default orders: 1.1, 1.2, …, 10.9, then 12, 13, …, 63.
    public static let orders: [Double] = (1..<100).map { 1 + Double($0) / 10 } + (12..<64).map(Double.init)

    /// ε(α) of one step at order α, for sampling rate q and noise multiplier σ.
    public static func rdp(samplingRate q: Double, noise σ: Double, order α: Double) -> Double {
        if q == 0 { return 0 }
        if σ == 0 { return .infinity }
        if q == 1 { return α / (2 * σ * σ) }
        // σ so small that 1/(2σ²) overflows (σ below about 1e-154): no privacy to speak of,
        // and the series below would meet 0/0.
        if α.isInfinite || !(1 / (2 * σ * σ)).isFinite { return .infinity }
        let logA = α.rounded() == α ? logAForIntegerOrder(q, σ, Int(α)) : logAForFractionalOrder(q, σ, α)
        return logA / (α - 1)
    }

    /// (ε, the order that gave it) after `steps` steps at δ, the smallest over `orders`.
    public static func epsilon(samplingRate q: Double, noise σ: Double, steps: Int, delta δ: Double)
        -> (epsilon: Double, order: Double) {
        // Nothing released yet (the conversion alone would report a small positive ε).
        if steps == 0 { return (0, .nan) }
        var best = (epsilon: Double.infinity, order: Double.nan)
        for α in orders {
            let total = Double(steps) * rdp(samplingRate: q, noise: σ, order: α)
            let ε = total - (log(δ) + log(α)) / (α - 1) + log((α - 1) / α)
            if ε < best.epsilon { best = (ε, α) }
        }
        return best
    }

    /// Whether the best order lies at the edge of `orders` (the bound may then be loose).
    public static func isAtEdge(_ order: Double) -> Bool {
        order == orders.first || order == orders.last
    }

    /// The smallest noise multiplier σ (to 0.1 % by bisection) that keeps ε ≤ `epsilon`
    /// after `steps` steps at δ; nil when none up to 1,000 does.
    public static func noise(forEpsilon target: Double, samplingRate q: Double, steps: Int, delta δ: Double) -> Double? {
        var (low, high) = (0.0, 1.0)
        while epsilon(samplingRate: q, noise: high, steps: steps, delta: δ).epsilon > target {
            high *= 2
            if high > 1000 { return nil }
        }
        while high - low > 1e-3 * high {
            let middle = (low + high) / 2
            if epsilon(samplingRate: q, noise: middle, steps: steps, delta: δ).epsilon > target { low = middle } else { high = middle }
        }
        return high
    }

    // MARK: - log A_α

    /// log(A_α) for integer α: log Σ_{i=0}^{α} C(α, i) qⁱ (1 − q)^{α−i} exp((i² − i)/(2σ²)).
    static func logAForIntegerOrder(_ q: Double, _ σ: Double, _ α: Int) -> Double {
        var logA = -Double.infinity
        for i in 0...α {
            let term = logBinomial(Double(α), Double(i)).magnitude + Double(i) * log(q) + Double(α - i) * log(1 - q)
                + Double(i * i - i) / (2 * σ * σ)
            logA = logAdd(logA, term)
        }
        return logA
    }

    /// The most terms `logAForFractionalOrder` sums before it gives up (∞:
    /// no bound). Its terms fall below e^−30 within a few hundred for σ ≥ 0.1
    /// at Opacus's orders.
    static let fractionalTermLimit = 100_000

    /// log(A_α) for fractional α: the two series over (−∞, z₀] and [z₀, ∞) of
    /// §3.3, summed until both terms fall below e^−30; ∞ (no guarantee) when a
    /// term is not a number or `fractionalTermLimit` terms did not get there.
    static func logAForFractionalOrder(_ q: Double, _ σ: Double, _ α: Double) -> Double {
        var (logA0, logA1) = (-Double.infinity, -Double.infinity)
        let z0 = σ * σ * log(1 / q - 1) + 0.5
        var i = 0.0
        for _ in 0..<fractionalTermLimit {
            let (logCoefficient, positive) = logBinomial(α, i)
            let j = α - i
            let logT0 = logCoefficient + i * log(q) + j * log(1 - q)
            let logT1 = logCoefficient + j * log(q) + i * log(1 - q)
            let logE0 = log(0.5) + logErfc((i - z0) / (2.0.squareRoot() * σ))
            let logE1 = log(0.5) + logErfc((z0 - j) / (2.0.squareRoot() * σ))
            let logS0 = logT0 + (i * i - i) / (2 * σ * σ) + logE0
            let logS1 = logT1 + (j * j - j) / (2 * σ * σ) + logE1
            if positive {
                logA0 = logAdd(logA0, logS0)
                logA1 = logAdd(logA1, logS1)
            } else {
                logA0 = logSubtract(logA0, logS0)
                logA1 = logSubtract(logA1, logS1)
            }
            i += 1
            guard !logS0.isNaN, !logS1.isNaN else { return .infinity }
            if max(logS0, logS1) < -30 { return logAdd(logA0, logA1) }
        }
        return .infinity
    }

    /// log |C(α, i)| for real α and whole i ≥ 0, and whether C(α, i) > 0.
    static func logBinomial(_ α: Double, _ i: Double) -> (magnitude: Double, positive: Bool) {
        // C(α, i) = Γ(α + 1) / (Γ(i + 1) Γ(α − i + 1)); Γ(α − i + 1) changes sign below 0.
        var sign: Int32 = 0
        let logDenominator = lgamma_r(α - i + 1, &sign)
        return (lgamma(α + 1) - lgamma(i + 1) - logDenominator, sign > 0)
    }

    /// log(eˣ + eʸ).
    static func logAdd(_ x: Double, _ y: Double) -> Double {
        let (a, b) = (min(x, y), max(x, y))
        if a == -.infinity { return b }
        return log1p(exp(a - b)) + b
    }

    /// log(eˣ − eʸ), x ≥ y.
    static func logSubtract(_ x: Double, _ y: Double) -> Double {
        if y == -.infinity { return x }
        if x == y { return -.infinity }
        let difference = expm1(x - y)
        return difference.isFinite ? log(difference) + y : x
    }

    /// log(erfc(x)), accurate where erfc underflows (large x): there the
    /// asymptotic series erfc(x) ≈ e^{−x²}/(x√π) · (1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶) + 105/(16x⁸)).
    static func logErfc(_ x: Double) -> Double {
        if x < 25 { return log(erfc(x)) }
        let r = 1 / (2 * x * x)
        let series = 1 - r + 3 * r * r - 15 * r * r * r + 105 * r * r * r * r
        return -x * x - log(x * Double.pi.squareRoot()) + log(series)
    }
}
