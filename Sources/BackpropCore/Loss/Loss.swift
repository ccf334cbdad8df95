/// The error function E^n of one sample, summed over the batch: E = Σ_n E^n.
///
/// Each loss also produces the output errors δ_k = g'(a_k) ∂E^n/∂y_k that start
/// the backward pass; with the canonical output activation (softmax for
/// cross-entropy, identity for sum-of-squares) they fuse to δ_k = y_k − t_k.
public enum Loss: String, CaseIterable, Sendable, Codable {
    /// E^n = −Σ_k t_k ln y_k with y = softmax(a).
    case crossEntropy = "cross-entropy"
    /// E^n = ½ Σ_k (y_k − t_k)² with y = g(a) for the output activation g.
    case sumOfSquares = "sum-of-squares"

    /// The output activation a network gets when none is named.
    public var defaultOutputActivation: Activation {
        self == .crossEntropy ? .softmax : .identity
    }

    /// Whether `activation` may be the output activation g for this loss.
    public func allowsOutput(_ activation: Activation) -> Bool {
        switch self {
        case .crossEntropy: return activation == .softmax
        case .sumOfSquares: return activation != .softmax
        }
    }

    /// Applies the output activation to the pre-activations `a` in place
    /// (a becomes y = g(a)), writes δ_k = g'(a_k) ∂E^n/∂y_k into `delta`, and
    /// returns Σ_n E^n over the rows.
    ///
    /// a, targets, delta: [rows, width], row-major.
    func outputErrors<T: NetworkScalar>(
        _ a: UnsafeMutablePointer<T>, targets t: UnsafePointer<T>,
        rows: Int, width: Int, outputActivation g: Activation,
        delta: UnsafeMutablePointer<T>
    ) -> T {
        var errorSum: T = 0
        switch self {
        case .crossEntropy:
            // ln y_k = a_k − log Σ_j exp(a_j), so E^n = Σ_k t_k (lse − a_k) without
            // ever taking the log of a rounded-to-zero probability.
            for n in 0..<rows {
                let row = a + n * width, target = t + n * width, d = delta + n * width
                let lse = logSumExp(row, width: width)
                for k in 0..<width {
                    errorSum += target[k] * (lse - row[k])
                    row[k] = T.exp(row[k] - lse)
                    d[k] = row[k] - target[k]  // δ_k = y_k − t_k
                }
            }
        case .sumOfSquares:
            for i in 0..<(rows * width) {
                let y = g.value(a[i])
                a[i] = y
                let difference = y - t[i]
                errorSum += difference * difference / 2
                delta[i] = g.derivative(output: y) * difference  // δ_k = g'(a_k)(y_k − t_k)
            }
        }
        return errorSum
    }
}

// MARK: - Label smoothing

extension Loss {
    /// Label smoothing (Szegedy et al. 2016, §7) for softmax cross-entropy:
    /// the one-hot target t is replaced by t̃ = (1 − ε) t + ε/K over K classes,
    /// so E^n = −Σ_k t̃_k ln y_k. Since Σ_k t̃_k = 1 still, the fused output
    /// error keeps its form: ∂E^n/∂a_k = Σ_j t̃_j (y_k − [j = k]) = y_k − t̃_k,
    /// so `outputErrors` runs unchanged on the smoothed targets. This writes
    /// t̃ over t for `rows` rows of `width` classes, in place.
    ///
    /// t: [rows, width], row-major.
    static func smoothTargets<T: NetworkScalar>(_ t: UnsafeMutablePointer<T>, rows: Int, width: Int, smoothing ε: T) {
        let keep = 1 - ε, floor = ε / T(width)
        for i in 0..<(rows * width) { t[i] = keep * t[i] + floor }
    }
}

