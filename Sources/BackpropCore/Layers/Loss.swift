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

// MARK: - Class weights

extension Loss {
    /// Class-weighted cross-entropy (Keras' `class_weight`; PyTorch's
    /// `CrossEntropyLoss(weight=)` summed): E^n = −Σ_k w_k t_k ln y_k with
    /// y = softmax(a), which for a one-hot t of class c is w_c · CE. With
    /// ∂ln y_j/∂a_k = [j = k] − y_k, ∂E^n/∂a_k = Σ_j w_j t_j (y_k − [j = k]), so
    ///
    ///     δ_k = y_k Σ_j w_j t_j − w_k t_k,
    ///
    /// which is w_c (y_k − t_k) for a one-hot target and y_k − t_k when every w is 1.
    /// Leaves y in `a`, writes δ into `delta`, and returns Σ_n E^n over the rows.
    ///
    /// a, targets t, delta: [rows, width], row-major; w: [width].
    static func classWeightedErrors<T: NetworkScalar>(
        _ a: UnsafeMutablePointer<T>, targets t: UnsafePointer<T>, weights w: [T],
        rows: Int, width: Int, delta: UnsafeMutablePointer<T>
    ) -> T {
        var errorSum: T = 0
        for n in 0..<rows {
            let row = a + n * width, target = t + n * width, d = delta + n * width
            let lse = logSumExp(row, width: width)
            var weight: T = 0  // Σ_j w_j t_j
            for k in 0..<width {
                weight += w[k] * target[k]
                errorSum += w[k] * target[k] * (lse - row[k])
            }
            for k in 0..<width {
                row[k] = T.exp(row[k] - lse)
                d[k] = row[k] * weight - w[k] * target[k]
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


// MARK: - Distillation

/// Knowledge distillation (Hinton, Vinyals and Dean 2015, §2): a student
/// trained on a teacher's class probabilities p as well as on its labels.
///
/// At temperature T both distributions are softened: the student's
/// s = softmax(a/T), the teacher's q_k = p_k^{1/T} / Σ_j p_j^{1/T} (that is
/// softmax(z/T) of the teacher's logits z, since p ∝ exp z). The error of a
/// sample is
///
///     E^n = α T² KL(q ‖ s) + (1 − α) (−Σ_k t_k ln y_k),   y = softmax(a).
///
/// With KL(q ‖ s) = Σ_j q_j ln q_j − Σ_j q_j ln s_j and ln s_j = a_j/T − ln Σ_i exp(a_i/T),
/// ∂(−Σ_j q_j ln s_j)/∂a_k = (1/T)(s_k Σ_j q_j − q_k) = (s_k − q_k)/T, so the fused output error is
///
///     δ_k = α T (s_k − q_k) + (1 − α)(y_k − t_k).
///
/// The T² keeps the soft term's gradient on the scale of the hard one's as
/// T grows (Hinton et al.). α = 1 trains on the teacher alone; at T = 1 the
/// loss is cross-entropy against the mixed target α q + (1 − α) t.
public struct Distillation: Sendable, Equatable {
    /// α, the soft term's weight, in (0, 1].
    public var weight: Double
    /// T > 0.
    public var temperature: Double

    public init(weight: Double, temperature: Double = 1) {
        self.weight = weight
        self.temperature = temperature
    }
}

extension Loss {
    /// q_k = p_k^{1/T} / Σ_j p_j^{1/T}: the teacher's probabilities `p` at
    /// temperature T, in place (computed as exp((ln p_k − max_j ln p_j)/T),
    /// so that no power underflows before it is normalised; p_k = 0 stays 0).
    /// At T = 1 too each row is divided by its sum: stored rows sum to 1 only
    /// to float32's rounding, and the fused δ above needs Σ_k q_k = 1 exactly.
    ///
    /// p: [rows, width], row-major, each row a distribution.
    static func temper<T: NetworkScalar>(_ p: UnsafeMutablePointer<T>, rows: Int, width: Int, temperature: T) {
        for n in 0..<rows {
            let row = p + n * width
            var largest: T = 0
            for k in 0..<width where row[k] > largest { largest = row[k] }
            guard largest > 0 else { continue }
            if temperature != 1 {
                let top = T.log(largest)
                for k in 0..<width { row[k] = row[k] > 0 ? T.exp((T.log(row[k]) - top) / temperature) : 0 }
            }
            var sum: T = 0
            for k in 0..<width { sum += row[k] }
            for k in 0..<width { row[k] /= sum }
        }
    }

    /// The distillation loss of softmax cross-entropy (`Distillation`):
    /// leaves y = softmax(a) in `a`, writes δ_k = αT(s_k − q_k) + (1 − α)(y_k − t_k)
    /// into `delta`, and returns Σ_n E^n over the rows.
    ///
    /// a, targets t, teacher q (already at temperature T), delta: [rows, width], row-major.
    static func distillationErrors<T: NetworkScalar>(
        _ a: UnsafeMutablePointer<T>, targets t: UnsafePointer<T>, teacher q: UnsafePointer<T>,
        rows: Int, width: Int, weight α: T, temperature: T, delta: UnsafeMutablePointer<T>
    ) -> T {
        let soft = α * temperature * temperature, hard = 1 - α
        var errorSum: T = 0
        for n in 0..<rows {
            let row = a + n * width, target = t + n * width, teacher = q + n * width, d = delta + n * width
            // ln s_k = a_k/T − lseT and ln y_k = a_k − lse.
            let lse = logSumExp(row, width: width)
            var top = row[0], sumT: T = 0
            for k in 1..<width where row[k] > top { top = row[k] }
            for k in 0..<width { sumT += T.exp((row[k] - top) / temperature) }
            let lseT = top / temperature + T.log(sumT)
            var kl: T = 0, crossEntropy: T = 0
            for k in 0..<width {
                let lnS = row[k] / temperature - lseT
                if teacher[k] > 0 { kl += teacher[k] * (T.log(teacher[k]) - lnS) }
                crossEntropy += target[k] * (lse - row[k])
                let s = T.exp(lnS)
                row[k] = T.exp(row[k] - lse)
                d[k] = α * temperature * (s - teacher[k]) + hard * (row[k] - target[k])
            }
            errorSum += soft * kl + hard * crossEntropy
        }
        return errorSum
    }
}
