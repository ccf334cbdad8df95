/// The values a numeric setting may take. Its description is what an
/// error says the value is not ("--momentum: 1.5 is not a number in [0, 1).").
public enum SettingDomain: Sendable, Equatable {
    /// Any value of its type.
    case any
    /// A finite number > 0.
    case positive
    /// A finite number ≥ 0.
    case nonNegative
    /// A number in [0, 1).
    case fraction
    /// A number in (0, 1).
    case openUnit
    /// A number in (0, 1].
    case probability
    /// A whole number ≥ the bound.
    case atLeast(Int)
    /// A whole number in the closed range.
    case wholeRange(Int, Int)

    /// "a finite number > 0", as in "--clip-norm: 0 is not a finite number > 0".
    public var description: String {
        switch self {
        case .any: return "a value"
        case .positive: return "a finite number > 0"
        case .nonNegative: return "a finite number ≥ 0"
        case .fraction: return "a number in [0, 1)"
        case .openUnit: return "a number in (0, 1)"
        case .probability: return "a number in (0, 1]"
        case .atLeast(let bound): return "a whole number ≥ \(bound)"
        case .wholeRange(let low, let high): return "a whole number in \(low) … \(high)"
        }
    }

    /// Whether `value` lies in the domain; a value that is not a number lies in `.any` only.
    public func contains(_ value: Any) -> Bool {
        let number: Double? = (value as? Double) ?? (value as? Int).map(Double.init) ?? (value as? UInt64).map(Double.init)
        guard let x = number else { return self == .any }
        switch self {
        case .any: return true
        case .positive: return x.isFinite && x > 0
        case .nonNegative: return x.isFinite && x >= 0
        case .fraction: return x >= 0 && x < 1
        case .openUnit: return x > 0 && x < 1
        case .probability: return x > 0 && x <= 1
        case .atLeast(let bound): return x >= Double(bound)
        case .wholeRange(let low, let high): return x >= Double(low) && x <= Double(high)
        }
    }
}
