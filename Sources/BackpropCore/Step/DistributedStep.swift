/// The processes of a data-parallel job, ranks 0…count−1, and the few
/// collectives a step needs. Every rank makes the same calls in the same
/// order; a transport failure ends the whole job (MPI's default).
/// Core knows no transport: `BackpropMPI` implements this over Open MPI.
public protocol ProcessGroup: AnyObject {
    var rank: Int { get }
    var count: Int { get }
    /// In place: rank r's `counts[r]` values, at offset Σ_{q<r} counts[q] of
    /// `buffer`, are copied to that offset on every rank.
    func allGather(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int])
    /// Rank r sends `sendCounts[q]` values to each rank q (from `send`, in rank
    /// order) and receives `receiveCounts[q]` from each rank q (into `receive`, in rank order).
    func allToAll(send: UnsafeBufferPointer<Float>, sendCounts: [Int],
                  receive: UnsafeMutableBufferPointer<Float>, receiveCounts: [Int])
    /// Every rank's bytes, in rank order.
    func allGather(bytes: [UInt8]) -> [[UInt8]]
}

/// What a rank asks of every rank at the end of a step; a request made by
/// any rank holds for all (their union), so every rank acts after the same step.
public struct StepRequests: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// Stop after this step (a signal arrived).
    public static let stop = StepRequests(rawValue: 1)
    /// Write a checkpoint after this step (its wall-clock interval passed).
    public static let save = StepRequests(rawValue: 2)
}

/// Who computes and who owns what, in a job of `ranks` processes: the
/// global batch's S shards are dealt in contiguous blocks in rank order,
/// and the P parameters (with the optimizer's state: ZeRO-1) in contiguous
/// slices. Both depend on S, P and the rank count only.
public struct ShardPlan: Sendable, Equatable {
    public let ranks: Int

    public init(ranks: Int) {
        precondition(ranks > 0, "a job has at least one rank")
        self.ranks = ranks
    }

    /// Part r of `total` things cut into `ranks` nearly equal contiguous parts.
    public func part(_ r: Int, of total: Int) -> Range<Int> {
        (total * r / ranks)..<(total * (r + 1) / ranks)
    }

    /// The sizes of every rank's part of `total`.
    public func counts(of total: Int) -> [Int] {
        (0..<ranks).map { part($0, of: total).count }
    }

    /// Rank r's slice of `parameterCount` parameters (and of the optimizer's
    /// state): whole chunks of `GradientNormClip.chunkSize`, dealt as `part`
    /// deals things, so that a gradient's norm sums the same chunks on any rank count.
    public func parameterSlice(_ r: Int, of parameterCount: Int) -> Range<Int> {
        let chunk = GradientNormClip.chunkSize
        let chunks = part(r, of: (parameterCount + chunk - 1) / chunk)
        return min(chunks.lowerBound * chunk, parameterCount)..<min(chunks.upperBound * chunk, parameterCount)
    }
}

/// One optimizer step split across the ranks of a `ProcessGroup`, with the
/// bits of one process (`TrainingStep.step`) whatever the rank count:
///
/// 1. each rank runs the forward and backward pass of its block of shards,
///    giving Σ_{n∈s} E^n and the gradient chain c_s = Σ_{n∈s} ∂E^n/∂w of
///    each of its shards (`TrainingStep.shardGradients`);
/// 2. an all-to-all: rank q receives every rank's shard losses and
///    requests, and its slice of every c_s, in shard order (ranks hold
///    ascending blocks of shards);
/// 3. every rank adds the losses in shard order, so all agree on the batch
///    loss, and a loss that is not finite ends the step on every rank,
///    changing nothing;
/// 4. rank q adds them as the kernel adds segments, ((c_0 + c_1) + c_2) + …,
///    scales, and applies the optimizer's element-wise rule to its slice
///    (with a gradient-norm clip, after an all-gather of each chunk's Σ g_i²,
///    from which every rank takes the same factor);
/// 5. an all-gather of the slices: every rank holds every parameter again
///    and refreshes its wᵀ.
///
/// Never a floating-point reduction inside the transport: MPI_SUM's order
/// is MPI's, not ours. Per step a rank sends its shards' chains (local
/// shards × P × 4 bytes, all but its own slice leaving the process) and
/// P × 4 / N bytes of parameters to each other rank.
final class DistributedStep {
    let group: any ProcessGroup
    let plan: ShardPlan
    let parameterCount: Int
    let shardSize: Int
    /// Each local shard's chains, [local shards, P].
    private var chains: [Float]
    /// The chains regrouped by destination, then this rank's slice of every shard's chain.
    private var send: [Float] = [], receive: [Float] = []
    /// This rank's slice of the summed gradient.
    private var slice: [Float] = []
    /// Seconds in the collectives of the last step, and the bytes this rank
    /// handed them for other ranks (its payload once per receiving rank;
    /// what crosses the wire depends on MPI's algorithms).
    private(set) var lastCommunication = (seconds: 0.0, bytes: 0)

    init(group: any ProcessGroup, parameterCount: Int, shardSize: Int, batchCapacity: Int) {
        self.group = group
        let plan = ShardPlan(ranks: group.count)
        self.plan = plan
        self.parameterCount = parameterCount
        self.shardSize = min(shardSize, batchCapacity)
        let shards = (batchCapacity + self.shardSize - 1) / self.shardSize
        let localCapacity = plan.counts(of: shards).max() ?? 0
        chains = [Float](repeating: 0, count: localCapacity * parameterCount)
    }

    /// This rank's rows of a batch of `rows` samples, and its shards.
    func localRows(ofBatch rows: Int) -> (rows: Range<Int>, shards: Range<Int>) {
        DistributedStep.localRows(ofBatch: rows, rank: group.rank, plan: plan, shardSize: shardSize)
    }

    /// Rank `rank`'s rows of a batch of `rows` samples, and its shards: the
    /// shards of `plan`'s part for it, `shardSize` samples each.
    static func localRows(ofBatch rows: Int, rank: Int, plan: ShardPlan, shardSize: Int) -> (rows: Range<Int>, shards: Range<Int>) {
        let shardCount = (rows + shardSize - 1) / shardSize
        let shards = plan.part(rank, of: shardCount)
        return ((shards.lowerBound * shardSize)..<min(shards.upperBound * shardSize, rows), shards)
    }

    /// Steps 1–5 (see the type) on the global batch at `indices`; returns
    /// Σ_{n∈batch} E^n, summed in shard order, and the union of the ranks'
    /// requests. When the loss is not finite nothing was changed and the
    /// optimizer's step count is as before.
    func step(engine: TrainingStep<Float>, data: Batch, indices: ArraySlice<Int32>, scale: Float,
              optimizer: inout any Optimizer<Float>, learningRate η: Float, parameters: inout [Float],
              requests: StepRequests, perSample: PerSampleOptions? = nil, clip: GradientNormClip? = nil,
              key: StepKey = StepKey()) -> (errorSum: Float, agreed: StepRequests) {
        let clock = ContinuousClock()
        var communication = Duration.zero
        var bytes = 0
        func timed<R>(_ body: () -> R) -> R {
            let start = clock.now
            defer { communication += clock.now - start }
            return body()
        }
        let P = parameterCount, N = group.count
        let (rows, shards) = localRows(ofBatch: indices.count)

        // 1. This rank's shards: losses and gradient chains.
        var losses: [Float] = []
        if !rows.isEmpty {
            losses = indices[(indices.startIndex + rows.lowerBound)..<(indices.startIndex + rows.upperBound)]
                .withUnsafeBufferPointer { local in
                    parameters.withUnsafeBufferPointer { w in
                        chains.withUnsafeMutableBufferPointer { c in
                            engine.shardGradients(data: data, indices: local, parameters: w.baseAddress!, into: c.baseAddress!,
                                                  perSample: perSample, at: key)
                        }
                    }
                }
        }

        // 2–3. One all-to-all: to each rank q, this rank's shard losses and
        // requests, then slice q of each of its chains; back, the same from
        // every rank, in rank order and so in shard order.
        let shardCount = (indices.count + shardSize - 1) / shardSize
        let shardCounts = plan.counts(of: shardCount)
        let slices = (0..<N).map { plan.parameterSlice($0, of: P) }
        let mine = slices[group.rank], width = mine.count
        let sendCounts = slices.map { shards.count + 1 + $0.count * shards.count }
        let receiveCounts = shardCounts.map { $0 + 1 + $0 * width }
        // (Buffers kept between steps; the loops run on local pointers, not on this object's arrays.)
        let sendCount = sendCounts.reduce(0, +), receiveCount = receiveCounts.reduce(0, +)
        if send.count < sendCount { send = [Float](repeating: 0, count: sendCount) }
        if receive.count < receiveCount { receive = [Float](repeating: 0, count: receiveCount) }
        if slice.count < width { slice = [Float](repeating: 0, count: width) }
        chains.withUnsafeBufferPointer { c in
            send.withUnsafeMutableBufferPointer { out in
                var cursor = out.baseAddress!
                for q in 0..<N {
                    for loss in losses { cursor.pointee = loss; cursor += 1 }
                    cursor.pointee = Float(requests.rawValue)
                    cursor += 1
                    for s in 0..<shards.count {
                        cursor.update(from: c.baseAddress! + s * P + slices[q].lowerBound, count: slices[q].count)
                        cursor += slices[q].count
                    }
                }
            }
        }
        timed {
            send.withUnsafeBufferPointer { sent in
                receive.withUnsafeMutableBufferPointer {
                    group.allToAll(send: UnsafeBufferPointer(rebasing: sent[..<sendCount]), sendCounts: sendCounts,
                                   receive: UnsafeMutableBufferPointer(rebasing: $0[..<receiveCount]), receiveCounts: receiveCounts)
                }
            }
        }
        bytes += 4 * (sendCount - sendCounts[group.rank])

        // The batch loss, adding the shards' losses in shard order, and every rank's requests.
        var errorSum: Float = 0
        var agreed: StepRequests = []
        var block = 0
        for count in shardCounts {
            for k in 0..<count { errorSum += receive[block + k] }
            agreed.formUnion(StepRequests(rawValue: Int(receive[block + count])))
            block += count + 1 + count * width
        }
        guard errorSum.isFinite else {
            lastCommunication = (communication / .seconds(1), bytes)
            return (errorSum, agreed)
        }

        // 4. The owner's sum in shard order, as the kernel adds segments: c_0, then + c_1, + c_2, …; scaled.
        receive.withUnsafeBufferPointer { r in
            slice.withUnsafeMutableBufferPointer { g in
                let sum = g.baseAddress!
                var block = r.baseAddress!, first = true
                for count in shardCounts {
                    var chain = block + count + 1
                    for _ in 0..<count {
                        if first {
                            sum.update(from: chain, count: width)
                            first = false
                        } else {
                            for e in 0..<width { sum[e] = sum[e] + chain[e] }
                        }
                        chain += width
                    }
                    block += count + 1 + count * width
                }
                // No shard at all (an empty Poisson sample): the gradient is zero, and the noise below.
                if first { sum.update(repeating: 0, count: width) }
                // The noise of the parameters this rank owns, keyed by their index as in one process.
                if let perSample, perSample.noiseStandardDeviation > 0 {
                    KeyedRandom.addNormalNoise(to: sum, count: width, first: mine.lowerBound,
                                               standardDeviation: Float(perSample.noiseStandardDeviation),
                                               seed: perSample.noiseSeed, step: perSample.step)
                }
                if scale != 1 { for e in 0..<width { sum[e] *= scale } }
            }
        }
        // min(1, C/‖g‖) with a clip, which the rule applies as it reads g.
        var factor: Float = 1
        if let clip {
            // Every chunk's Σ g_i², in rank order and so in chunk order: the same factor on every rank.
            let squares = mine.isEmpty ? [] : slice.withUnsafeBufferPointer {
                GradientNormClip.chunkSquares($0.baseAddress! - mine.lowerBound, range: mine, on: engine.team)
            }
            let all = timed { group.allGather(bytes: squares.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }) }
            bytes += 8 * squares.count * (N - 1)
            let chunkSquares = all.flatMap { bytes in
                stride(from: 0, to: bytes.count, by: 8).map { start in
                    Double(bitPattern: bytes[start..<(start + 8)].reversed().reduce(0) { $0 << 8 | UInt64($1) })
                }
            }
            factor = clip.factor(chunkSquares: chunkSquares)
        }
        parameters.withUnsafeMutableBufferPointer { w in
            slice.withUnsafeBufferPointer { g in
                optimizer.withStep(learningRate: η) { rule in
                    rule.on(engine.kernel).apply(w.baseAddress!, along: g.baseAddress!, scaledBy: factor, range: mine)
                }
            }
        }

        // 5. Every slice to every rank, and wᵀ to match.
        timed { parameters.withUnsafeMutableBufferPointer { group.allGather($0, counts: slices.map(\.count)) } }
        bytes += 4 * mine.count * (N - 1)
        parameters.withUnsafeBufferPointer { engine.refreshTransposedWeights(from: $0.baseAddress!) }
        lastCommunication = (communication / .seconds(1), bytes)
        return (errorSum, agreed)
    }

    /// Makes every rank's optimizer state whole (each rank keeps only its
    /// slice current between checkpoints): an all-gather of each buffer.
    func gatherState(_ optimizer: inout any Optimizer<Float>) {
        var state = optimizer.state
        let counts = (0..<plan.ranks).map { plan.parameterSlice($0, of: parameterCount).count }
        for name in state.buffers.keys.sorted() {
            state.buffers[name]!.withUnsafeMutableBufferPointer { group.allGather($0, counts: counts) }
        }
        optimizer.state = state
    }
}
