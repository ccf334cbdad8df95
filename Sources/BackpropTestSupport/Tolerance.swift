import RealModule

/// The tolerances the tests compare numbers with, each with the reason for
/// its size: a test names the kind of comparison, not a bare literal.
/// Results that must be bit-identical (worker counts, resume, ranks, kernel
/// paths) are compared with `==` on bit patterns instead.
public enum Tolerance: Sendable {
    /// The same Double arithmetic in another order (a sum of per-sample
    /// gradients against a batch gradient, a norm from δ and z against the
    /// norm of the materialised gradient): a few ulps of 2⁻⁵² per operation
    /// over at most a few thousand terms, 1e-12 relative.
    case doubleReordered
    /// A Float32 result against its Double counterpart: about 2⁻²⁴ ≈ 6e-8 per
    /// operation, grown over sums of a few hundred terms, 1e-5 relative.
    case floatAgainstDouble
    /// An analytic gradient against central differences in Double with
    /// h = 1e-5: truncation O(h²) ≈ 1e-10 and rounding O(ε/h) ≈ 1e-11 per
    /// difference, amplified by the function's curvature, 1e-6 relative.
    case finiteDifference
    /// Float32 results against references NumPy computed in float64 from the
    /// same inputs (Tests/BackpropCoreTests/References), 1e-6 absolute on
    /// values of order one.
    case float32Reference
    /// Our accountant against Opacus 1.5.2's: the same formulas, summed in
    /// another order with another log-sum-exp, 1e-6 relative.
    case accountant
    /// A value written as text with Swift's shortest round-trip form and
    /// read back (config.json, metrics.csv), 1e-12 relative.
    case textRoundTrip

    /// The relative (and, near zero, absolute) tolerance.
    public var value: Double {
        switch self {
        case .doubleReordered, .textRoundTrip: return 1e-12
        case .floatAgainstDouble: return 1e-5
        case .finiteDifference, .float32Reference, .accountant: return 1e-6
        }
    }
}

/// Whether `a` and `b` agree within `tolerance`: relative to the larger
/// magnitude, and absolute (the same value) for numbers near zero, as
/// swift-numerics' `isApproximatelyEqual` defines it.
public func isClose(_ a: Double, _ b: Double, _ tolerance: Tolerance) -> Bool {
    a.isApproximatelyEqual(to: b, absoluteTolerance: tolerance.value, relativeTolerance: tolerance.value)
}
