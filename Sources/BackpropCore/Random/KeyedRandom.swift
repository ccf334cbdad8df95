import Foundation

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
        bits(key: key(seed: seed, stream: stream, step: step), index: index)
    }

    /// The part of a key that a whole step shares, hashed once.
    @inline(__always)
    public static func key(seed: UInt64, stream: UInt64, step: UInt64) -> UInt64 {
        mix(mix(seed &+ stream &* 0x9E37_79B9_7F4A_7C15) ^ (step &+ 0x632B_E59B_D9B4_E019))
    }

    @inline(__always)
    static func bits(key: UInt64, index: UInt64) -> UInt64 {
        mix(key ^ (index &* 0xD1B5_4A32_D192_ED03))
    }

    /// A uniform Double in [0, 1) (53 bits) for the key.
    @inline(__always)
    public static func unit(seed: UInt64, stream: UInt64, step: UInt64, index: UInt64) -> Double {
        Double(bits(seed: seed, stream: stream, step: step, index: index) >> 11) * 0x1.0p-53
    }

    /// The ziggurat of the standard normal density f(x) = e^{−x²/2} (Marsaglia
    /// and Tsang 2000): 128 layers of equal area v, right edges x[0] > x[1] = r
    /// > … > x[128] = 0 (x[0] = v/f(r) is the base strip's width, the tail
    /// beyond r included), and f at each edge. Computed once with glibc's exp
    /// and log in Double (the same bits on every machine checked) and the exact
    /// square root; kept in one allocation that lives as long as the process,
    /// read without bounds checks in the hot loop.
    struct Ziggurat: @unchecked Sendable {
        /// x[i + 1]/x[i] (Float, 128), x[i] (Float, 128).
        let ratio: UnsafePointer<Float>, width: UnsafePointer<Float>
        /// x[i] and f(x[i]) (Double, 129 each).
        let x: UnsafePointer<Double>, f: UnsafePointer<Double>

        static let shared: Ziggurat = {
            let r = 3.442619855899, v = 9.91256303526217e-3
            func density(_ x: Double) -> Double { Foundation.exp(-0.5 * x * x) }
            var edges = [Double](repeating: 0, count: 129)
            edges[0] = v / density(r)
            edges[1] = r
            for i in 1..<127 { edges[i + 1] = (-2 * Foundation.log(v / edges[i] + density(edges[i]))).squareRoot() }
            let floats = UnsafeMutablePointer<Float>.allocate(capacity: 256)
            let doubles = UnsafeMutablePointer<Double>.allocate(capacity: 258)
            for i in 0..<128 {
                floats[i] = Float(edges[i + 1] / edges[i])
                floats[128 + i] = Float(edges[i])
            }
            for i in 0..<129 {
                doubles[i] = edges[i]
                doubles[129 + i] = density(edges[i])
            }
            return Ziggurat(ratio: floats, width: floats + 128, x: doubles, f: doubles + 129)
        }()
    }

    /// wyrand's output at position `index` of the sequence that starts at
    /// `key` (Wang Yi's wyhash family: one 64 × 64 → 128-bit product; passes
    /// BigCrush and PractRand): the cheap hash of the noise's hot loop.
    @inline(__always)
    static func wyrand(key: UInt64, index: UInt64) -> UInt64 {
        let x = key &+ (index &+ 1) &* 0xA076_1D64_78BD_642F
        let (high, low) = x.multipliedFullWidth(by: x ^ 0xE703_7ED1_A0B4_28DB)
        return high ^ low
    }

    /// One standard normal from 32 random bits (7 for the ziggurat's layer, 1
    /// for the sign, 24 for the position); 98.8 % of them are accepted by one
    /// comparison. The rest (the wedges, by the density; the tail beyond r, by
    /// Marsaglia's exponential method) draw again, keyed by (element, attempt).
    @inline(__always)
    static func normal(_ draw: UInt32, key: UInt64, element: UInt64, _ table: Ziggurat) -> Float {
        let layer = Int(truncatingIfNeeded: draw & 127)
        let u = Float(draw >> 8) * 0x1.0p-24  // [0, 1)
        guard u < table.ratio[layer] else { return rejected(draw, key: key, element: element, table) }
        let x = u * table.width[layer]
        // The sign by its bit: a branch on a random bit is mispredicted half the time.
        return Float(bitPattern: x.bitPattern ^ ((draw & 128) << 24))
    }

    /// The 1.2 % of draws outside the ziggurat's rectangles, out of line so
    /// that the hot loop keeps its registers.
    @inline(never)
    static func rejected(_ first: UInt32, key: UInt64, element: UInt64, _ table: Ziggurat) -> Float {
        var draw = first
        var attempt: UInt64 = 0
        while true {
            let layer = Int(truncatingIfNeeded: draw & 127), negative = draw & 128 != 0
            let u = Float(draw >> 8) * 0x1.0p-24
            if u < table.ratio[layer] {
                let x = u * table.width[layer]
                return negative ? -x : x
            }
            let more = bits(key: key ^ 0x5EC0_4D5E_C04D, index: element &* 64 &+ attempt)
            attempt &+= 1
            if layer == 0 {
                // The tail beyond r: x = −ln(U₁)/r, y = −ln(U₂) until 2y > x².
                let r = table.x[1]
                var t = more
                while true {
                    let x = -Foundation.log(1 - Double(t >> 11) * 0x1.0p-53) / r
                    let y = -Foundation.log(1 - Double(t & 0x1F_FFFF) * 0x1.0p-21)
                    if 2 * y > x * x { return Float(negative ? -(r + x) : r + x) }
                    t = bits(key: key ^ 0x5EC0_4D5E_C04D, index: element &* 64 &+ attempt)
                    attempt &+= 1
                }
            }
            // A wedge: accept by the density between the layer's two edges.
            let u2 = Double(more >> 40) * 0x1.0p-24
            let x = Double(u) * table.x[layer]
            if table.f[layer] + u2 * (table.f[layer + 1] - table.f[layer]) < Foundation.exp(-0.5 * x * x) {
                return Float(negative ? -x : x)
            }
            draw = UInt32(truncatingIfNeeded: more)
        }
    }

    /// Adds `standardDeviation` × N(0, 1) to `values[k]` for parameters
    /// `first + k`, k < count: parameter i gets normal i of the step's key.
    public static func addNormalNoise<T: BinaryFloatingPoint>(to values: UnsafeMutablePointer<T>, count: Int, first: Int,
                                                              standardDeviation: Float, seed: UInt64, step: UInt64) {
        if T.self == Float.self {
            // The training path, specialised: a generic T(Float) per element costs more than the noise itself.
            values.withMemoryRebound(to: Float.self, capacity: count) {
                addNoise($0, count: count, first: first, standardDeviation: standardDeviation, seed: seed, step: step)
            }
        } else {
            addNoise(values, count: count, first: first, standardDeviation: standardDeviation, seed: seed, step: step)
        }
    }

    @_specialize(where T == Float)
    @_specialize(where T == Double)
    private static func addNoise<T: BinaryFloatingPoint>(_ values: UnsafeMutablePointer<T>, count: Int, first: Int,
                                                         standardDeviation: Float, seed: UInt64, step: UInt64) {
        let key = key(seed: seed, stream: noiseStream, step: step)
        let table = Ziggurat.shared
        // Parameter i's normal comes from half i % 2 of draw i / 2.
        var i = first
        let end = first + count
        while i < end {
            let draw = wyrand(key: key, index: UInt64(truncatingIfNeeded: i >> 1))
            let half = i & 1 == 0 ? UInt32(truncatingIfNeeded: draw) : UInt32(truncatingIfNeeded: draw >> 32)
            values[i - first] += T(standardDeviation * normal(half, key: key, element: UInt64(truncatingIfNeeded: i), table))
            if i & 1 == 0 && i + 1 < end {
                let other = UInt32(truncatingIfNeeded: draw >> 32)
                values[i + 1 - first] += T(standardDeviation * normal(other, key: key, element: UInt64(truncatingIfNeeded: i + 1), table))
                i += 2
            } else {
                i += 1
            }
        }
    }
}
