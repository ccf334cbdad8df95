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
    /// A real number must lie in it as training uses it, too: in float32, where
    /// 0.99999999 is 1 and 1e-50 is 0 (`float32Image`).
    public func contains(_ value: Any) -> Bool {
        let number: Double? = (value as? Double) ?? (value as? Int).map(Double.init) ?? (value as? UInt64).map(Double.init)
        guard let x = number else { return self == .any }
        guard holds(x) else { return false }
        if value is Double, let image = Self.float32Image(of: x) { return holds(image) }
        return true
    }

    /// The number training computes with where it is not `x` itself: x rounded to float32 (nil when that is x).
    public static func float32Image(of x: Double) -> Double? {
        let image = Double(Float(x))
        return image == x || (x.isNaN && image.isNaN) ? nil : image
    }

    /// What an error adds after "VALUE is not DOMAIN" when `value` (as given) lies in
    /// the domain only before its rounding to float32: " (in float32, in which the network and the optimizer compute, it is 1.0)".
    public func float32Note(_ value: String) -> String {
        guard let x = Double(value), holds(x), let image = Self.float32Image(of: x), !holds(image) else { return "" }
        return " (in float32, in which the network and the optimizer compute, it is \(image))"
    }

    private func holds(_ x: Double) -> Bool {
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
