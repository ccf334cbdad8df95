import Foundation

/// Poisson sampling (the sampling DP-SGD's privacy analysis assumes): each
/// of N samples is taken independently with probability q.
enum PoissonSample {
    /// The samples step `step` takes, in ascending order, keyed by (seed,
    /// step) so any step's sample can be recomputed without replaying the
    /// run. The gaps between taken samples are geometric, so a step costs
    /// draws for its own samples only.
    static func indices(sampleCount n: Int, rate q: Double, seed: UInt64, step: Int) -> [Int32] {
        guard n > 0, q > 0 else { return [] }
        if q >= 1 { return (0..<n).map(Int32.init) }
        var taken: [Int32] = []
        taken.reserveCapacity(Int(Double(n) * q * 1.5) + 16)
        var next = -1, draw: UInt64 = 0
        // Each pass takes a sample or ends: next grows by at least 1.
        while true {
            let u = 1 - KeyedRandom.unit(seed: seed, stream: KeyedRandom.samplingStream, step: UInt64(step), index: draw)  // (0, 1]
            draw += 1
            // P(gap = k) = (1 − q)^k q: the next sample taken lies gap + 1 ahead.
            // (glibc's log gives the same bits everywhere checked; 1 − q is exact IEEE arithmetic.)
            let gap = (Foundation.log(u) / Foundation.log(1 - q)).rounded(.down)
            guard gap < Double(n - next - 1) else { break }
            next += Int(gap) + 1
            taken.append(Int32(next))
        }
        return taken
    }
}

/// How a step picks its samples.
public enum Sampling: String, CaseIterable, Sendable, Codable {
    /// Consecutive batches of a seeded shuffle, every sample once an epoch.
    case shuffle
    /// Each sample independently with probability q = batch size / N (the
    /// sampling DP-SGD's privacy analysis assumes): batches vary in size and
    /// may be empty; the gradient is divided by the expected batch size.
    case poisson
}
