/// The memory of a training step, allocated once for batches of up to
/// `batchCapacity` samples and reused by every step, so the hot loop
/// allocates nothing.
///
/// Batch-wide, so that a task on any worker can read any shard: every
/// layer's z and δ, the targets, each shard's Σ_{n∈s} E^n. Per worker: one
/// gradient block. Per sample step: each sample's norm and each gradient
/// block's Σ g².
///
/// Concurrency rule (why the step may share these between workers): the
/// tasks of one phase write disjoint rows or blocks, and read only what
/// earlier phases wrote; worker w alone uses gradient block w.
final class StepBuffers<T: NetworkScalar> {
    let batchCapacity: Int
    /// z_l [batchCapacity, n_l] for l = 0…L (z_0 the inputs, z_L the outputs).
    let z: [UnsafeMutablePointer<T>]
    /// δ_l [batchCapacity, n_l] at index l = 1…L (index 0 unused).
    let delta: [UnsafeMutablePointer<T>]
    /// t [batchCapacity, n_L].
    let targets: UnsafeMutablePointer<T>
    /// q [batchCapacity, n_L], the teacher's probabilities at temperature T (`Distillation`); nil without one.
    let teacher: UnsafeMutablePointer<T>?
    /// Σ_{n∈s} E^n of shard s.
    let errorSums: UnsafeMutableBufferPointer<T>
    /// ‖∂E^n/∂w‖ of each sample of the last per-sample step (before clipping).
    let sampleNorms: UnsafeMutableBufferPointer<T>
    /// Σ g² of each gradient block of the last per-sample step (after
    /// clipping, before noise), at `blockSquareOffsets[l]` + the block's index.
    let blockSquares: UnsafeMutableBufferPointer<Double>
    let blockSquareOffsets: [Int]
    /// Where an empty batch's indices point (no task reads them).
    let noIndices = UnsafeMutablePointer<Int32>.allocate(capacity: 1)

    private let storage: UnsafeMutableBufferPointer<T>
    /// One gradient block of `StepPlan.gradientRows` × `gradientColumns` and its biases, per worker.
    private let scratch: UnsafeMutableBufferPointer<T>
    private static var scratchStride: Int { StepPlan.gradientRows * StepPlan.gradientColumns + StepPlan.gradientRows }

    init(sizes: [Int], batchCapacity: Int, shardSize: Int, workerCount: Int, distils: Bool = false) {
        self.batchCapacity = batchCapacity
        let L = sizes.count - 1
        // z_0 … z_L, then δ_1 … δ_L, then the targets (and the teacher's).
        let widths = sizes + sizes.dropFirst() + [sizes[L]] + (distils ? [sizes[L]] : [])
        storage = .allocate(capacity: batchCapacity * widths.reduce(0, +))
        storage.initialize(repeating: 0)
        var cursor = storage.baseAddress!
        var buffers: [UnsafeMutablePointer<T>] = []
        for width in widths {
            buffers.append(cursor)
            cursor += batchCapacity * width
        }
        z = Array(buffers[0...L])
        delta = [buffers[0]] + buffers[(L + 1)...(2 * L)]
        targets = buffers[2 * L + 1]
        teacher = distils ? buffers[2 * L + 2] : nil
        errorSums = .allocate(capacity: (batchCapacity + shardSize - 1) / shardSize)
        errorSums.initialize(repeating: 0)
        scratch = .allocate(capacity: workerCount * Self.scratchStride)
        scratch.initialize(repeating: 0)
        sampleNorms = .allocate(capacity: batchCapacity)
        sampleNorms.initialize(repeating: 0)
        let blocks = (0..<L).map { StepPlan.gradientGrid(outputs: sizes[$0 + 1], inputs: sizes[$0]).count }
        blockSquareOffsets = blocks.indices.map { blocks[..<$0].reduce(0, +) }
        blockSquares = .allocate(capacity: blocks.reduce(0, +))
        blockSquares.initialize(repeating: 0)
    }

    deinit {
        storage.deallocate()
        errorSums.deallocate()
        scratch.deallocate()
        sampleNorms.deallocate()
        blockSquares.deallocate()
        noIndices.deallocate()
    }

    /// Worker w's gradient block g [gradientRows, gradientColumns] and its biases gb [gradientRows].
    func gradientBlock(worker w: Int) -> (g: UnsafeMutablePointer<T>, gb: UnsafeMutablePointer<T>) {
        let g = scratch.baseAddress! + w * Self.scratchStride
        return (g, g + StepPlan.gradientRows * StepPlan.gradientColumns)
    }
}

/// Nanoseconds each worker spent in each kind of work since the last reset.
final class StepTimer {
    enum Slot: Int, CaseIterable { case conversion, forward, backward, update }

    private let workerCount: Int
    private let nanoseconds: UnsafeMutableBufferPointer<UInt64>
    /// Slots between two workers' first: a cache line and the next (adjacent-line
    /// prefetch), so that workers timing their tasks share no line.
    private static let spacing = 16

    init(workerCount: Int) {
        self.workerCount = workerCount
        nanoseconds = .allocate(capacity: Self.spacing * workerCount)
        nanoseconds.initialize(repeating: 0)
    }

    deinit { nanoseconds.deallocate() }

    /// Adds time to worker w's slot; each worker writes only its own slots.
    @inline(__always)
    func add(worker w: Int, _ slot: Slot, _ elapsed: UInt64) {
        nanoseconds[Self.spacing * w + slot.rawValue] &+= elapsed
    }

    func reset() { nanoseconds.update(repeating: 0) }

    /// The worker-seconds of every slot.
    var times: PhaseTimes {
        func seconds(_ w: Int, _ slot: Slot) -> Double { Double(nanoseconds[Self.spacing * w + slot.rawValue]) * 1e-9 }
        func total(_ slot: Slot) -> Double { (0..<workerCount).reduce(0.0) { $0 + seconds($1, slot) } }
        var times = PhaseTimes()
        times.conversion = total(.conversion)
        times.forward = total(.forward)
        times.backward = total(.backward)
        times.update = total(.update)
        times.workerBusy = (0..<workerCount).map { w in Slot.allCases.reduce(0.0) { $0 + seconds(w, $1) } }
        return times
    }
}
