// Inverted dropout (Srivastava et al. 2014), derived like the dense layer.
//
// In training, unit j of z_l (the inputs, l = 0, or a hidden layer's output)
// is kept with probability 1 − p_l:
//   z̃_j = m_j z_j / (1 − p),  m_j ∈ {0, 1},  P(m_j = 1) = 1 − p,  so E[z̃_j] = z_j,
// and evaluation and prediction use z_j unchanged. The layer above reads z̃:
//   a_k = Σ_j w_kj z̃_j + b_k,  so  ∂E^n/∂w_kj = δ_k z̃_j,
// and the chain rule through z̃_j = m_j z_j/(1 − p), z_j = h(a_j) gives
//   δ_j = ∂E^n/∂a_j = h'(a_j) · m_j/(1 − p) · Σ_k w_kj δ_k:
// δ goes down through the same mask and scale. The step keeps only z̃ (no
// copy of z): h'(a_j) is written through the stored output, and z̃_j has z_j's
// sign (it is 0 where dropped, and there the mask zeroes δ_j anyway), so this
// is exact for relu, leaky-relu and identity, whose h' depends on the sign
// alone. Those are the hidden activations dropout allows; input dropout
// needs no h' and goes with any.
//
// A mask is a pure function of (seed, step, the sample's index in the
// dataset, layer, unit), never a draw from a shared stream: any worker
// count, rank count, kernel path or resume gives the same masks, and a
// sample's mask is its own, so per-sample gradient norms (DP-SGD) stay exact.

/// The dropout of a run: the probability p_l that each unit of z_l is dropped
/// in training, for the inputs and each hidden layer.
public struct Dropout: Sendable, Equatable, Codable {
    /// p_0, on the inputs.
    public var input: Double
    /// p_1 … p_{L−1}, one per hidden layer; a single value applies to every hidden layer.
    public var hidden: [Double]

    public init(input: Double = 0, hidden: [Double] = []) {
        self.input = input
        self.hidden = hidden
    }

    /// Whether any unit is ever dropped.
    public var isActive: Bool { input > 0 || hidden.contains { $0 > 0 } }

    /// p_l for l = 0 … L−1 of a network of `layerCount` layers (a single hidden value broadcast).
    public func rates(layerCount L: Int) -> [Double] {
        let hiddenRates = hidden.count == 1 ? Array(repeating: hidden[0], count: max(L - 1, 0)) : hidden
        return [input] + hiddenRates + Array(repeating: 0, count: max(L - 1 - hiddenRates.count, 0))
    }

    /// The probability a mask really drops with: p rounded to a multiple of
    /// 2⁻¹⁶ (a unit is dropped when its 16 random bits are below 2¹⁶·p).
    public static func effectiveRate(_ p: Double) -> Double { Double(threshold(p)) / 65536 }

    static func threshold(_ p: Double) -> UInt32 { UInt32(min(max((p * 65536).rounded(), 0), 65535)) }
}

/// The masks of one run: each layer's threshold and 1/(1 − p), and the seed.
struct DropoutMasks<T: NetworkScalar>: Sendable {
    static var stream: UInt64 { 0x4452_4F50 }  // "DROP"

    let seed: UInt64
    /// Per l = 0 … L−1: a unit is dropped when its 16 bits are below `thresholds[l]`.
    let thresholds: [UInt32]
    /// Per l: 1/(1 − p_l) for the effective p_l, rounded once to T.
    let scales: [T]

    init?(_ dropout: Dropout, layerCount: Int, seed: UInt64) {
        guard dropout.isActive else { return nil }
        self.seed = seed
        thresholds = dropout.rates(layerCount: layerCount).map(Dropout.threshold)
        scales = thresholds.map { T(65536 / Double(65536 - $0)) }
    }

    /// Whether layer l's z is masked at all.
    func masks(_ l: Int) -> Bool { l < thresholds.count && thresholds[l] > 0 }

    /// v ← m ⊙ v / (1 − p) for rows `rows` (row n belongs to sample
    /// `samples[n]`) and `columns` of layer l's units, in a block of row
    /// stride `stride` whose first element is (rows.lowerBound, 0). The same
    /// call masks z̃ = m z/(1 − p) going up and δ going down.
    ///
    /// Unit j of a sample takes bits 16·(j mod 4) … of the 64 drawn for j/4
    /// from the key of (seed, step, sample, layer): one hash per four units.
    func apply(layer l: Int, step: UInt64, to block: UnsafeMutablePointer<T>, rows: Range<Int>, columns: Range<Int>,
               stride: Int, samples: UnsafePointer<Int32>) {
        let threshold = thresholds[l], scale = scales[l]
        let stepKey = KeyedRandom.key(seed: seed, stream: Self.stream, step: step)
        let floatScale = T.self == Float.self ? Float(scale) : nil
        for n in rows {
            let key = KeyedRandom.bits(key: stepKey, index: UInt64(l) << 32 | UInt64(UInt32(bitPattern: samples[n])))
            let row = block + (n - rows.lowerBound) * stride
            if let row = floatPointer(row), let scale = floatScale {
                Self.maskFloats(row, columns: columns, key: key, threshold: threshold, scale: scale)
            } else {
                for j in columns { row[j] = Self.unitBits(key: key, unit: j) < threshold ? 0 : row[j] * scale }
            }
        }
    }

    /// Unit j's 16 bits: bits 16·(j mod 4) … of wyrand's 64 for j/4.
    @inline(__always)
    static func unitBits(key: UInt64, unit j: Int) -> UInt32 {
        UInt32(truncatingIfNeeded: KeyedRandom.wyrand(key: key, index: UInt64(j >> 2)) >> (16 * UInt64(j & 3))) & 0xFFFF
    }

    /// `apply`'s row for Float, four units (one hash) at a time, without a
    /// branch on the mask: the same values as unit by unit.
    @inline(__always)
    static func maskFloats(_ row: UnsafeMutablePointer<Float>, columns: Range<Int>, key: UInt64, threshold: UInt32, scale: Float) {
        var j = columns.lowerBound
        while j < columns.upperBound && j & 3 != 0 {
            row[j] = unitBits(key: key, unit: j) < threshold ? 0 : row[j] * scale
            j += 1
        }
        let limit = SIMD4<UInt32>(repeating: threshold), shifts = SIMD4<UInt64>(0, 16, 32, 48)
        while j + 4 <= columns.upperBound {
            let bits = SIMD4<UInt64>(repeating: KeyedRandom.wyrand(key: key, index: UInt64(j >> 2))) &>> shifts
            let units = SIMD4<UInt32>(truncatingIfNeeded: bits) & 0xFFFF
            let values = UnsafeRawPointer(row + j).loadUnaligned(as: SIMD4<Float>.self) * scale
            let masked = SIMD4<Float>(repeating: 0).replacing(with: values, where: units .>= limit)
            UnsafeMutableRawPointer(row + j).storeBytes(of: masked, as: SIMD4<Float>.self)
            j += 4
        }
        while j < columns.upperBound {
            row[j] = unitBits(key: key, unit: j) < threshold ? 0 : row[j] * scale
            j += 1
        }
    }
}

extension Dropout {
    /// Whether hidden dropout may follow `activation`: its h' must depend on the sign of z alone (see above).
    public static func allows(_ activation: Activation) -> Bool { [.relu, .leakyRelu, .identity].contains(activation) }
}
