/// Random numbers addressed by a key instead of drawn in sequence: the same
/// (seed, stream, step, index) always gives the same value, on any worker,
/// in any order, after any resume. DP-SGD's noise (one normal per
/// parameter and step) and Poisson sampling (one coin per example and step)
/// are drawn this way, so their bits depend on neither the worker count nor
/// the task order.
///
/// Not a cryptographic generator: see the README on what DP-SGD's guarantee
/// covers.
public enum KeyedRandom {
    /// Streams: independent uses of one seed.
    public static let noiseStream: UInt64 = 0x4E4F_4953_45  // "NOISE"
    public static let samplingStream: UInt64 = 0x5341_4D50  // "SAMP"

    /// SplitMix64's finaliser: a bijection of 64 bits with full avalanche.
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// 64 random bits for the key.
    @inline(__always)
    public static func bits(seed: UInt64, stream: UInt64, step: UInt64, index: UInt64) -> UInt64 {
        var z = mix(seed &+ stream &* 0x9E37_79B9_7F4A_7C15)
        z = mix(z ^ (step &+ 0x632B_E59B_D9B4_E019))
        return mix(z ^ (index &* 0xD1B5_4A32_D192_ED03))
    }

    /// A uniform Double in [0, 1) (53 bits) for the key.
    @inline(__always)
    public static func unit(seed: UInt64, stream: UInt64, step: UInt64, index: UInt64) -> Double {
        Double(bits(seed: seed, stream: stream, step: step, index: index) >> 11) * 0x1.0p-53
    }

    /// Two independent standard normals, the pair `pair` of `step`'s noise:
    /// Marsaglia's polar method in Float, whose only library call is logf
    /// (the same bits on every glibc checked, PLATFORM.md) besides the exact
    /// square root; attempt k of the pair is keyed (pair, k).
    @inline(__always)
    public static func normalPair(seed: UInt64, step: UInt64, pair: UInt64) -> (Float, Float) {
        var attempt: UInt64 = 0
        while true {
            let h = bits(seed: seed, stream: noiseStream, step: step, index: pair &* 64 &+ attempt)
            // u, v uniform in [−1, 1) with 24 bits each.
            let u = Float(h >> 40) * 0x1.0p-23 - 1, v = Float((h >> 16) & 0xFF_FFFF) * 0x1.0p-23 - 1
            let s = u * u + v * v
            if s > 0 && s < 1 {
                let f = (-2 * Float.log(s) / s).squareRoot()
                return (u * f, v * f)
            }
            attempt &+= 1
        }
    }

    /// Adds `standardDeviation` × N(0, 1) to `values[k]` for parameters
    /// `first + k`, k < count: normal i of `step` is element i % 2 of pair i / 2.
    public static func addNormalNoise<T: BinaryFloatingPoint>(to values: UnsafeMutablePointer<T>, count: Int, first: Int,
                                                              standardDeviation: Float, seed: UInt64, step: UInt64) {
        var i = first
        let end = first + count
        while i < end {
            let (a, b) = normalPair(seed: seed, step: step, pair: UInt64(i / 2))
            if i % 2 == 0 {
                values[i - first] += T(standardDeviation * a)
                if i + 1 < end { values[i + 1 - first] += T(standardDeviation * b) }
                i += 2
            } else {
                values[i - first] += T(standardDeviation * b)
                i += 1
            }
        }
    }
}
