import Foundation

/// The floating-point types a network computes in: `Float` for training and
/// `Double` for gradient checks, with the same code for both.
///
/// Besides arithmetic, a scalar type supplies the elementary functions the
/// activations and losses need.
public protocol NetworkScalar: BinaryFloatingPoint, Sendable, Codable
where RawSignificand: FixedWidthInteger {
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    static func tanh(_ x: Self) -> Self
}

func _log(_ x: Double) -> Double { Foundation.log(x) }
func _cos(_ x: Double) -> Double { Foundation.cos(x) }

extension Float: NetworkScalar {
    @inline(__always) public static func exp(_ x: Float) -> Float { Foundation.expf(x) }
    @inline(__always) public static func log(_ x: Float) -> Float { Foundation.logf(x) }
    @inline(__always) public static func tanh(_ x: Float) -> Float { Foundation.tanhf(x) }
}

extension Double: NetworkScalar {
    @inline(__always) public static func exp(_ x: Double) -> Double { Foundation.exp(x) }
    @inline(__always) public static func log(_ x: Double) -> Double { Foundation.log(x) }
    @inline(__always) public static func tanh(_ x: Double) -> Double { Foundation.tanh(x) }
}
