import Glibc

/// Where the time of training steps went, in worker-seconds (summed over
/// the workers; divide by the worker count for the time per worker).
public struct PhaseTimes: Sendable, Equatable, Codable {
    /// Gathering the batch's samples and converting their bytes to Float.
    public var conversion = 0.0
    /// Forward pass and output errors δ_k.
    public var forward = 0.0
    /// Backward pass: hidden errors δ_j and the weight and bias gradients.
    public var backward = 0.0
    /// The optimizer's update of each gradient block's parameters (the
    /// gradient's scale folded in), and the transposition of the updated
    /// weights for the next forward pass.
    public var update = 0.0
    /// Each worker's seconds in all of the above (worker 0 first): the rest
    /// of the steps' time it spent waiting, claiming, or not scheduled.
    public var workerBusy: [Double] = []

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
