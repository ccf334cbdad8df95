import Dispatch

/// The data-parallel gradient of one mini-batch: ∂E/∂w = Σ_n ∂E^n/∂w.
///
/// The batch is cut into shards of a fixed `shardSize` that does not depend
/// on the worker count. `DispatchQueue.concurrentPerform` runs the workers;
/// worker w takes shards w, w + W, w + 2W, … and writes shard s's gradient
/// Σ_{n∈s} ∂E^n/∂w (matrix products over the whole shard) into slot s only.
/// The slots are then added in shard order, element by element, so the sum
/// has the same bits for 1 worker or 16: only the shard size fixes the order
/// of floating-point additions. The sum is split into parameter chunks, one
/// per worker, and each worker hands its chunk to the optimizer while it is
/// still in cache (`reduce(scale:update:)`).
public final class ShardedGradients<T: NetworkScalar> {
    public let shardSize: Int
    public let workerCount: Int
    public let parameterCount: Int
    /// The most shards a batch can have.
    let shardCapacity: Int
    /// shardCapacity × parameterCount: slot s holds shard s's gradient.
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
    /// L1, between the reduction and the optimizer, and is never written out.
    private let blocks: UnsafeMutableBufferPointer<T>
    /// The scale of the last reduction.
    private var lastScale: T = 1

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

    /// The reduced gradient of the last batch, scale · Σ_s slot_s: the same
    /// sum, in the same order, as `reduce` hands the optimizer (for tests and
    /// tools; the training step never builds it).
    public var gradient: [T] {
        var sum = [T](repeating: 0, count: parameterCount)
        sum.withUnsafeMutableBufferPointer { g in
            sumSlots(slots.baseAddress!, count: shardCount, stride: parameterCount, range: 0..<parameterCount,
                     scale: lastScale, into: g.baseAddress!)
        }
        return sum
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
        let slots = SlotPointer(base: slots.baseAddress!)
        let errorSums = SlotPointer(base: errorSums.baseAddress!)
        let (workspaces, shardSize, parameterCount) = (self.workspaces, self.shardSize, self.parameterCount)
        let batch = SlotPointer(base: UnsafeMutablePointer(mutating: indices.baseAddress!))
        let batchCount = indices.count
        let times = SlotPointer(base: workerNanoseconds.baseAddress!)

        network.parameters.withUnsafeBufferPointer { parameters in
            let w = SlotPointer(base: UnsafeMutablePointer(mutating: parameters.baseAddress!))
            forEachShard(shardCount, workers: workerCount) { worker, s in
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
        var errorSum: T = 0
        for s in 0..<shardCount { errorSum += errorSums.base[s] }
        return errorSum
    }

    /// g ← scale · (slot₀ + slot₁ + … ), added in shard order, for the
    /// shards of the last `computeShards`, and the optimizer's step along it.
    /// The parameters are split into one chunk per worker; each worker sums
    /// its chunk a block at a time into its own L1-sized buffer and calls
    /// `update(block, g)` on it, g[0] being the gradient of parameter
    /// block.lowerBound.
    @_specialize(where T == Float)
    public func reduce(scale: T, update: @Sendable (Range<Int>, UnsafePointer<T>) -> Void) {
        let start = monotonicNanoseconds()
        lastScale = scale
        let slots = SlotPointer(base: slots.baseAddress!), blocks = SlotPointer(base: blocks.baseAddress!)
        let (parameterCount, shardCount, size) = (self.parameterCount, self.shardCount, ShardedGradients.block)
        let chunk = ((parameterCount + workerCount - 1) / workerCount + 15) / 16 * 16
        onWorkers(workerCount) { worker in
            let range = min(worker * chunk, parameterCount)..<min((worker + 1) * chunk, parameterCount)
            let g = blocks.base + worker * size
            for first in stride(from: range.lowerBound, to: range.upperBound, by: size) {
                let block = first..<min(first + size, range.upperBound)
                sumSlots(slots.base + first, count: shardCount, stride: parameterCount, range: 0..<block.count, scale: scale, into: g)
                update(block, g)
            }
        }
        updateSeconds += seconds(from: start, to: monotonicNanoseconds())
    }
}

/// A pointer the shard workers share. The rule that makes it safe: each
/// shard s writes only its own slot (slot s, or index range s), and the
/// parameters it points at are only read while the workers run.
struct SlotPointer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
}

/// Runs `body(worker, shard)` for every shard on `workers` concurrent workers;
/// worker w takes shards w, w + W, w + 2W, … (a fixed assignment, so worker w
/// can own workspace w).
func forEachShard(_ shardCount: Int, workers: Int, _ body: @Sendable (Int, Int) -> Void) {
    let workers = max(1, min(workers, shardCount))
    onWorkers(workers) { worker in
        for shard in stride(from: worker, to: shardCount, by: workers) { body(worker, shard) }
    }
}

/// `DispatchQueue.concurrentPerform` over `workers` iterations; one worker
/// runs on the calling thread (no dispatch, and none of its allocations).
func onWorkers(_ workers: Int, _ body: @Sendable (Int) -> Void) {
    if workers == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: body) }
}
