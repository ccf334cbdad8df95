/// The data-parallel gradient of one mini-batch: ∂E/∂w = Σ_n ∂E^n/∂w.
///
/// The batch is cut into shards of a fixed `shardSize` that does not depend
/// on the worker count. `DispatchQueue.concurrentPerform` runs the workers
/// (`onWorkers`); worker w takes shards w, w + W, w + 2W, … and writes shard
/// s's gradient Σ_{n∈s} ∂E^n/∂w (matrix products over the whole shard) into
/// slot s only.
/// The slots are then added in shard order, element by element, so the sum
/// has the same bits for 1 worker or 16: only the shard size fixes the order
/// of floating-point additions. The sum is split into parameter chunks, one
/// per worker, and each worker hands its chunk to the optimizer while it is
/// still in cache (`reduce(scale:rule:parameters:)`), and clears the slots
/// behind it: the weight products add into zeroed slots (see
/// `Dense.weightGradientProduct`).
public final class ShardedGradients<T: NetworkScalar> {
    public let shardSize: Int
    public let workerCount: Int
    public let parameterCount: Int
    /// The most shards a batch can have.
    let shardCapacity: Int
    /// shardCapacity × parameterCount: slot s holds shard s's gradient. All
    /// zeros between a reduction and the next `computeShards`.
    private let slots: UnsafeMutableBufferPointer<T>
    /// Σ_{n∈s} E^n of shard s.
    private let errorSums: UnsafeMutableBufferPointer<T>
    /// One per worker.
    private let workspaces: [Workspace<T>]
    /// Nanoseconds per worker: conversion, forward, backward (3 slots each).
    private let workerNanoseconds: UnsafeMutableBufferPointer<UInt64>
    /// Seconds in the fused reduction and update so far, for `backprop
    /// bench`; reset by `resetTimes()`.
    private var updateSeconds = 0.0
    /// The shards of the last `computeShards`.
    private var shardCount = 0
    /// Parameters summed and updated at a time (16 KiB of Float).
    static var block: Int { 4096 }
    /// One block of the summed gradient per worker: the sum lives here, in
    /// L1, between the reduction and the optimizer, and is never written out
    /// (unless `recordsGradient` asks for a copy).
    private let blocks: UnsafeMutableBufferPointer<T>
    /// True from `computeShards` until `reduce` has cleared the slots (a
    /// step that diverged is never reduced).
    private var slotsInUse = false
    /// The last reduced gradient, when `recordsGradient` is set.
    private var recorded: UnsafeMutableBufferPointer<T>?

    /// Allocates every buffer the batches of up to `batchSize` samples need.
    public init(network: Network<T>, batchSize: Int, shardSize: Int, workerCount: Int) {
        precondition(batchSize > 0 && shardSize > 0 && workerCount > 0,
                     "batch \(batchSize), shard \(shardSize), workers \(workerCount) must be positive")
        self.shardSize = min(shardSize, batchSize)
        shardCapacity = (batchSize + self.shardSize - 1) / self.shardSize
        self.workerCount = min(workerCount, shardCapacity)
        parameterCount = network.parameterCount
        slots = .allocate(capacity: shardCapacity * parameterCount)
        slots.initialize(repeating: 0)
        errorSums = .allocate(capacity: shardCapacity)
        errorSums.initialize(repeating: 0)
        workspaces = (0..<self.workerCount).map { _ in
            Workspace<T>(sizes: network.sizes, capacity: min(shardSize, batchSize))
        }
        blocks = .allocate(capacity: self.workerCount * ShardedGradients.block)
        blocks.initialize(repeating: 0)
        workerNanoseconds = .allocate(capacity: 3 * self.workerCount)
        workerNanoseconds.initialize(repeating: 0)
    }

    deinit {
        slots.deallocate()
        recorded?.deallocate()
        blocks.deallocate()
        errorSums.deallocate()
        workerNanoseconds.deallocate()
    }

    /// Conversion, forward and backward worker-seconds, and the seconds of
    /// the fused reduction and update, since the last reset.
    public var phaseTimes: PhaseTimes {
        var times = PhaseTimes()
        for w in 0..<workerCount {
            times.conversion += Double(workerNanoseconds[3 * w]) * 1e-9
            times.forward += Double(workerNanoseconds[3 * w + 1]) * 1e-9
            times.backward += Double(workerNanoseconds[3 * w + 2]) * 1e-9
        }
        times.update = updateSeconds
        return times
    }

    public func resetTimes() {
        workerNanoseconds.update(repeating: 0)
        updateSeconds = 0
    }

    /// Whether `reduce` also writes the summed gradient out, for `gradient`
    /// (tests and tools; training never needs it). Off by default.
    public var recordsGradient: Bool {
        get { recorded != nil }
        set {
            if newValue, recorded == nil {
                recorded = .allocate(capacity: parameterCount)
                recorded!.initialize(repeating: .nan)
            } else if !newValue, let buffer = recorded {
                buffer.deallocate()
                recorded = nil
            }
        }
    }

    /// The reduced gradient of the last batch, scale · Σ_s slot_s, exactly as
    /// `reduce` handed it to the optimizer.
    /// - Precondition: `recordsGradient` was set before that batch.
    public var gradient: [T] {
        guard let recorded else { preconditionFailure("set recordsGradient before the step to read its gradient") }
        return Array(recorded)
    }

    /// The forward and backward passes of every shard of the batch at
    /// `indices`: slot s ← Σ_{n∈s} ∂E^n/∂w. Returns Σ_{n∈batch} E^n, summed in
    /// shard order. `reduce` adds the slots next.
    public func computeShards(
        network: Network<T>, dataset: Dataset, indices: UnsafeBufferPointer<Int32>, kernel: Kernel = .blas
    ) -> T {
        let shardCount = (indices.count + shardSize - 1) / shardSize
        self.shardCount = shardCount
        precondition(shardCount <= shardCapacity, "batch of \(indices.count) exceeds \(shardCapacity) shards")
        if slotsInUse { slots.update(repeating: 0) }
        slotsInUse = true
        network.parameters.withUnsafeBufferPointer { parameters in
            let pass = ShardPass(
                network: network, dataset: dataset, kernel: kernel, workspaces: workspaces,
                batch: SlotPointer(base: UnsafeMutablePointer(mutating: indices.baseAddress!)), batchCount: indices.count,
                shardSize: shardSize, w: SlotPointer(base: UnsafeMutablePointer(mutating: parameters.baseAddress!)),
                slots: SlotPointer(base: slots.baseAddress!), parameterCount: parameterCount,
                errorSums: SlotPointer(base: errorSums.baseAddress!), times: SlotPointer(base: workerNanoseconds.baseAddress!))
            forEachShard(shardCount, workers: workerCount, pass)
        }
        var errorSum: T = 0
        for s in 0..<shardCount { errorSum += errorSums[s] }
        return errorSum
    }

    /// g ← scale · (slot₀ + slot₁ + … ), added in shard order, for the
    /// shards of the last `computeShards`, and the optimizer's step along it:
    /// `rule` applied to the parameters at `w`. The parameters are split into
    /// one chunk per worker; each worker sums its chunk a block at a time
    /// into its own L1-sized buffer and applies the rule to that block.
    public func reduce(scale: T, rule: UpdateRule<T>, parameters w: UnsafeMutablePointer<T>) {
        let start = monotonicNanoseconds()
        let chunk = ((parameterCount + workerCount - 1) / workerCount + 15) / 16 * 16
        onWorkers(workerCount, ReductionPass(
            slots: SlotPointer(base: slots.baseAddress!), shardCount: shardCount, parameterCount: parameterCount,
            scale: scale, chunk: chunk, blocks: SlotPointer(base: blocks.baseAddress!), rule: rule,
            w: SlotPointer(base: w), recorded: recorded.map { SlotPointer(base: $0.baseAddress!) }))
        slotsInUse = false
        updateSeconds += seconds(from: start, to: monotonicNanoseconds())
    }
}

/// One shard's forward and backward pass, into its own slot.
private struct ShardPass<T: NetworkScalar>: ShardJob {
    let network: Network<T>, dataset: Dataset, kernel: Kernel
    let workspaces: [Workspace<T>]
    /// The batch's sample indices.
    let batch: SlotPointer<Int32>, batchCount: Int, shardSize: Int
    let w: SlotPointer<T>
    let slots: SlotPointer<T>, parameterCount: Int
    let errorSums: SlotPointer<T>
    /// Conversion, forward, backward nanoseconds: three counters per worker.
    let times: SlotPointer<UInt64>

    // The workers reach this through a protocol witness, i.e. the generic
    // entry point; this makes it jump to the Float code.
    @_specialize(where T == Float)
    func run(worker: Int, shard s: Int) {
        let workspace = workspaces[worker]
        let start = s * shardSize
        let block = UnsafeBufferPointer(start: batch.base + start, count: min(shardSize, batchCount - start))
        let t0 = monotonicNanoseconds()
        dataset.gather(block, inputs: workspace.activation(0), targets: workspace.targets,
                       outputCount: network.outputCount)
        let t1 = monotonicNanoseconds()
        errorSums.base[s] = network.forwardErrors(rows: block.count, workspace: workspace,
                                                  parameters: w.base, kernel: kernel)
        let t2 = monotonicNanoseconds()
        network.backward(rows: block.count, workspace: workspace, parameters: w.base,
                         gradient: slots.base + s * parameterCount, kernel: kernel)
        let t3 = monotonicNanoseconds()
        // Worker w owns its three counters.
        let counters = times.base + 3 * worker
        counters[0] &+= t1 &- t0
        counters[1] &+= t2 &- t1
        counters[2] &+= t3 &- t2
    }
}

/// One worker's chunk of the reduction, fused with the optimizer's update
/// and the clearing of the slots.
private struct ReductionPass<T: NetworkScalar>: WorkerJob {
    let slots: SlotPointer<T>, shardCount: Int, parameterCount: Int, scale: T
    /// Parameters per worker, a multiple of 16.
    let chunk: Int
    /// One block-sized buffer per worker.
    let blocks: SlotPointer<T>
    let rule: UpdateRule<T>, w: SlotPointer<T>
    /// Where the summed gradient is copied, if anywhere.
    let recorded: SlotPointer<T>?

    @_specialize(where T == Float)  // as in ShardPass
    func run(worker: Int) {
        let size = ShardedGradients<T>.block
        let range = min(worker * chunk, parameterCount)..<min((worker + 1) * chunk, parameterCount)
        let g = blocks.base + worker * size
        for first in stride(from: range.lowerBound, to: range.upperBound, by: size) {
            let block = first..<min(first + size, range.upperBound)
            drainSlots(slots.base + first, count: shardCount, stride: parameterCount, range: 0..<block.count,
                       scale: scale, into: g)
            if let recorded { (recorded.base + first).update(from: g, count: block.count) }
            rule.apply(w.base, along: g, range: block)
        }
    }
}

/// A pointer the shard workers share. The rule that makes it safe: each
/// shard s writes only its own slot (slot s, or index range s), and the
/// parameters it points at are only read while the workers run.
struct SlotPointer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
}
