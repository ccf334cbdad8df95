/// The activation function h of a layer, z = h(a), applied element by element
/// (softmax: row by row).
///
/// Every derivative is written through the layer's output z = h(a), which the
/// forward pass keeps anyway, so backward never needs a separate copy of a.
public enum Activation: String, CaseIterable, Sendable, Codable {
    case relu
    case leakyRelu = "leaky-relu"
    case tanh
    case sigmoid
    case identity
    /// Only as the output of a network trained with cross-entropy, where it is
    /// fused with the loss (δ_k = y_k − t_k).
    case softmax

    /// The negative-side slope of leaky ReLU (PyTorch's default).
    public static let leakySlope = 0.01

    /// True for activations allowed between layers (all but softmax).
    public var isElementwise: Bool { self != .softmax }

    /// z = h(a) for one element. Softmax is not element-wise: see `applySoftmax`.
    @inline(__always)
    public func value<T: NetworkScalar>(_ a: T) -> T {
        switch self {
        case .relu: return a > 0 ? a : 0
        case .leakyRelu: return a > 0 ? a : T(Activation.leakySlope) * a
        case .tanh: return T.tanh(a)
        case .sigmoid: return 1 / (1 + T.exp(-a))
        case .identity, .softmax: return a
        }
    }

    /// h'(a) expressed through z = h(a):
    /// relu 1[z > 0]; leaky-relu 1 or slope; tanh 1 − z²; sigmoid z(1 − z); identity 1.
    @inline(__always)
    public func derivative<T: NetworkScalar>(output z: T) -> T {
        switch self {
        case .relu: return z > 0 ? 1 : 0
        case .leakyRelu: return z > 0 ? 1 : T(Activation.leakySlope)
        case .tanh: return 1 - z * z
        case .sigmoid: return z * (1 - z)
        case .identity, .softmax: return 1
        }
    }
}

/// y_k = exp(a_k) / Σ_j exp(a_j) for each row of `a` ([rows, width]), in place;
/// the row maximum is subtracted first so that exp never overflows.
func applySoftmax<T: NetworkScalar>(_ a: UnsafeMutablePointer<T>, rows: Int, width: Int) {
    for r in 0..<rows {
        let row = a + r * width
        let logSumExp = logSumExp(row, width: width)
        for k in 0..<width { row[k] = T.exp(row[k] - logSumExp) }
    }
}

/// log Σ_k exp(a_k), computed as m + log Σ_k exp(a_k − m) with m = max_k a_k.
@inline(__always)
func logSumExp<T: NetworkScalar>(_ a: UnsafePointer<T>, width: Int) -> T {
    var m = a[0]
    for k in 1..<max(width, 1) where a[k] > m { m = a[k] }
    var sum: T = 0
    for k in 0..<width { sum += T.exp(a[k] - m) }
    return m + T.log(sum)
}

/// δ_ni ← h'(a_ni) δ_ni for a block `width` columns wide whose rows (of δ and
/// of z) lie `stride` apart, with h' written through z = h(a).
func applyDerivative<T: NetworkScalar>(_ h: Activation, to delta: UnsafeMutablePointer<T>, z: UnsafePointer<T>,
                                       rows: Int, width: Int, stride: Int) {
    switch h {
    case .identity, .softmax:
        return
    case .relu:
        for n in 0..<rows {
            let (d, zn) = (delta + n * stride, z + n * stride)
            var i = 0
            if let d = floatPointer(d), let zn = floatPointer(zn) {
                // δ_i ← 0 where z_i ≤ 0 (h'(a) = 1 for a > 0).
                while i + 8 <= width {
                    store8(load8(d + i).replacing(with: 0, where: .!(load8(zn + i) .> 0)), d + i)
                    i += 8
                }
            }
            while i < width {
                if !(zn[i] > 0) { d[i] = 0 }
                i += 1
            }
        }
    default:
        for n in 0..<rows {
            let (d, zn) = (delta + n * stride, z + n * stride)
            for i in 0..<width { d[i] *= h.derivative(output: zn[i]) }
        }
    }
}
