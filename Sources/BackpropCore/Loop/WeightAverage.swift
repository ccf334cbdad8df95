/// An average of the parameters that is evaluated, chosen by the monitor and
/// saved instead of them, while the optimizer goes on updating the
/// parameters themselves.
///
///   EMA (`TrainingConfiguration.ema`, d):  θ̄_0 = θ_0,  θ̄_t = d·θ̄_{t−1} + (1 − d)·θ_t  after step t
///       (timm's ModelEmaV2, Keras' use_ema: no bias correction; the start θ_0 weighs d^t);
///   SWA (`TrainingConfiguration.swaStart`, e_0):  θ̄_n = θ̄_{n−1} + (θ − θ̄_{n−1})/n
///       at the end of epoch e_0 + n − 1, θ̄_n the mean of the n epoch-end parameters so far
///       (torch.optim.swa_utils.AveragedModel's running mean).
///
/// Element-wise in Float, each element's operations in a fixed order (two
/// products and a sum, no fused multiply-add), so the same bits for any
/// worker count, kernel path or rank count, as the parameters themselves.
/// The batch-norm statistics SWA recomputes in torch have no counterpart here.
public struct WeightAverage: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// d.
        case exponential(decay: Float)
        /// e_0, counted from 1.
        case uniform(startEpoch: Int)
    }

    public let kind: Kind
    /// θ̄; empty until the first parameters are averaged in (SWA before its start).
    public private(set) var parameters: [Float]
    /// The parameters averaged in: steps for the EMA, epoch ends for SWA.
    public private(set) var count: Int

    /// The average `configuration` asks for, starting from `parameters` (θ_0), or nil for none.
    public init?(_ configuration: TrainingConfiguration, parameters: [Float]) {
        if let decay = configuration.ema {
            self.init(kind: .exponential(decay: Float(decay)), parameters: parameters, count: 0)
        } else if let start = configuration.swaStart {
            self.init(kind: .uniform(startEpoch: start), parameters: [], count: 0)
        } else {
            return nil
        }
    }

    /// A saved average (a checkpoint's).
    public init(kind: Kind, parameters: [Float], count: Int) {
        self.kind = kind
        self.parameters = parameters
        self.count = count
    }

    /// Whether there is an average to evaluate (SWA: once its first epoch has ended).
    public var isActive: Bool { !parameters.isEmpty }

    /// After a step to `position`, the `parameters` θ (of `count` values) folded in as the kind says, on the workers of `team`.
    mutating func update(after position: TrainingPosition, parameters θ: UnsafePointer<Float>, count: Int, on team: Team) {
        let source = SharedPointer(base: UnsafeMutablePointer(mutating: θ))
        switch kind {
        case .exponential(let d):
            self.count += 1
            let e = 1 - d
            // θ̄ ← d·θ̄ + (1 − d)·θ, eight lanes at a time, then the rest: the same operations either way.
            Self.forEachChunk(of: &parameters, on: team) { a, range in
                let θ = source.base
                var i = range.lowerBound
                while i + 8 <= range.upperBound {
                    store8(d * load8(a + i) + e * load8(θ + i), a + i)
                    i += 8
                }
                while i < range.upperBound {
                    a[i] = d * a[i] + e * θ[i]
                    i += 1
                }
            }
        case .uniform(let start):
            // An epoch has just ended when the position is at a batch 0; epochs finished = position.epoch.
            guard position.batch == 0, position.epoch >= start else { return }
            self.count += 1
            guard self.count > 1 else {
                parameters = Array(UnsafeBufferPointer(start: θ, count: count))
                return
            }
            let n = Float(self.count)
            Self.forEachChunk(of: &parameters, on: team) { a, range in
                let θ = source.base
                for i in range { a[i] = a[i] + (θ[i] - a[i]) / n }
            }
        }
    }

    /// `body(θ̄, range)` over every index, a chunk of 16,384 a task, on the workers of `team`.
    private static func forEachChunk(of values: inout [Float], on team: Team,
                                     _ body: @escaping @Sendable (UnsafeMutablePointer<Float>, Range<Int>) -> Void) {
        let chunk = 16_384
        let count = values.count
        values.withUnsafeMutableBufferPointer { buffer in
            let average = SharedPointer(base: buffer.baseAddress!)
            team.forEach((count + chunk - 1) / chunk) { c in
                body(average.base, (c * chunk)..<min((c + 1) * chunk, count))
            }
        }
    }
}
