import Glibc

/// Where the time of training steps went, in seconds. Conversion, forward
/// and backward are summed over the workers (worker-seconds); the update is
/// wall-clock seconds.
public struct PhaseTimes: Sendable, Equatable, Codable {
    /// Gathering a shard's samples and converting their bytes to Float.
    public var conversion = 0.0
    /// Forward pass and output errors δ_k.
    public var forward = 0.0
    /// Backward pass: weight gradients and hidden errors δ_j.
    public var backward = 0.0
    /// Summing the shard gradients in shard order and the optimizer's update,
    /// fused: each worker updates its chunk of the parameters as soon as it
    /// has summed it.
    public var update = 0.0

    public init() {}
}

/// Monotonic nanoseconds (clock_gettime(CLOCK_MONOTONIC): about 20 ns, no allocation).
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

@inline(__always)
func seconds(from start: UInt64, to end: UInt64) -> Double {
    Double(end &- start) * 1e-9
}
