/// The data-parallel training step: the forward pass and output errors of a
/// mini-batch, then its gradient ∂E/∂w = Σ_n ∂E^n/∂w and the optimizer's
/// update, on any number of workers, with bits that depend on neither the
/// worker count nor the kernel path.
///
/// One parallel region per step (`runPhases`): a list of phases of fixed
/// tasks that workers claim in order:
///
///   forward:  gather (row blocks) → layer 0 … layer L−1 (row blocks ×
///             column blocks of a = z·wᵀ + b, then h) → loss (shards: δ_L
///             and Σ_{n∈s} E^n)
///   backward: δ_l = h'(a_l) ⊙ δ_{l+1}·W_l (row × column blocks), layer by
///             layer down, while the layer above already has its gradient
///             blocks ∂E/∂W = Σ_s δ_sᵀ·Z_s summed, handed to the optimizer
///             and transposed for the next forward pass.
///
/// The tasks are fixed by the shapes alone. Each output element of a
/// product is one fma chain (`MatrixProduct`), so the blocks can be cut
/// anywhere; the weight gradient's chains run over each shard of
/// `shardSize` rows and the shards' chains are added in shard order, so
/// only the shard size fixes the order of the floating-point additions.
/// The backward phases start once the whole loss is known, and do nothing
/// when it is not finite: a diverged step is never applied.
///
/// The batch lives in batch-wide buffers (every layer's z and δ), so a task
/// on any worker can read any shard; there are no per-shard gradient copies
/// and no separate reduction: a gradient block goes from the product to the
/// optimizer while it is in cache.
/// What a step does per sample besides summing its gradients (issue 15):
/// the norms ‖∂E^n/∂w‖ from δ and z, each gradient clipped to a bound, and
/// Gaussian noise added to the sum (DP-SGD).
public struct PerSampleOptions: Sendable, Equatable {
    /// Each ∂E^n/∂w is scaled by min(1, clip/‖∂E^n/∂w‖); ∞ measures only.
    public var clip: Double
    /// σ·C, the standard deviation of the noise added to each summed
    /// gradient element; 0: none. Keyed by (seed, step, parameter index).
    public var noiseStandardDeviation: Double
    public var noiseSeed: UInt64
    public var step: UInt64
    /// Whether the step also measures ‖Σ_n c_n ∂E^n/∂w‖² (`lastGradientSquaredNorm`).
    public var measuresGradientNorm: Bool

    public init(clip: Double = .infinity, noiseStandardDeviation: Double = 0, noiseSeed: UInt64 = 0, step: UInt64 = 0,
                measuresGradientNorm: Bool = true) {
        self.clip = clip
        self.noiseStandardDeviation = noiseStandardDeviation
        self.noiseSeed = noiseSeed
        self.step = step
        self.measuresGradientNorm = measuresGradientNorm
    }
}

public final class ShardedGradients<T: NetworkScalar> {
    public let shardSize: Int
    public let workerCount: Int
    public let parameterCount: Int
    /// The kernel path of every product.
    public let kernel: Kernel
    /// The most samples a batch can have.
    let batchCapacity: Int
    private let layers: [Dense]
    private let loss: Loss
    /// z_l [batchCapacity, n_l] for l = 0…L (z_0 the inputs, z_L the outputs),
    /// then δ_l [batchCapacity, n_l] for l = 1…L, then the targets.
    private let storage: UnsafeMutableBufferPointer<T>
    private let z: [UnsafeMutablePointer<T>]
    /// δ_l at index l (index 0 unused).
    private let delta: [UnsafeMutablePointer<T>]
    private let targets: UnsafeMutablePointer<T>
    /// Σ_{n∈s} E^n of shard s.
    private let errorSums: UnsafeMutableBufferPointer<T>
    /// wᵀ of every layer, current with the parameters the last step wrote.
    let transposedWeights: TransposedWeights<T>
    /// Per worker: one gradient block and its biases.
    private let scratch: UnsafeMutableBufferPointer<T>
    private let counters: PhaseCounters
    /// Nanoseconds per worker: conversion, forward, backward, update (4 slots each).
    private let workerNanoseconds: UnsafeMutableBufferPointer<UInt64>
    /// The last step's gradient, when `recordsGradient` is set.
    private var recorded: UnsafeMutableBufferPointer<T>?
    /// ‖∂E^n/∂w‖ of each sample of the last per-sample step (before clipping).
    private let sampleNorms: UnsafeMutableBufferPointer<T>
    /// Σ g² of each gradient block of the last per-sample step (after
    /// clipping, before noise), at `updateTaskOffsets[l]` + the block's index.
    private let blockSquares: UnsafeMutableBufferPointer<Double>
    private let updateTaskOffsets: [Int]
    /// Where an empty batch's indices point (no task reads them).
    private let noIndices = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    /// Samples in the batch of the last `forward`.
    private var rows = 0

    /// Rows of a forward, backward or gather task, and columns of a forward
    /// or backward task.
    static var blockRows: Int { 64 }
    static var blockColumns: Int { 64 }
    /// Rows (outputs j) and columns (inputs i) of w in one gradient task.
    static var gradientRows: Int { 32 }
    static var gradientColumns: Int { 256 }

    /// Allocates every buffer the batches of up to `batchSize` samples need;
    /// wᵀ is taken from `network`'s parameters now and kept current by the
    /// steps (a caller that changes the parameters otherwise must make a new one).
    public init(network: Network<T>, batchSize: Int, shardSize: Int, workerCount: Int, kernel: Kernel = .automatic) {
        precondition(batchSize > 0 && shardSize > 0 && workerCount > 0,
                     "batch \(batchSize), shard \(shardSize), workers \(workerCount) must be positive")
        self.shardSize = min(shardSize, batchSize)
        self.workerCount = workerCount
        self.kernel = kernel
        batchCapacity = batchSize
        parameterCount = network.parameterCount
        layers = network.layers
        loss = network.loss
        let sizes = network.sizes
        let widths = sizes + sizes.dropFirst() + [network.outputCount]
        storage = .allocate(capacity: batchSize * widths.reduce(0, +))
        storage.initialize(repeating: 0)
        var cursor = storage.baseAddress!
        var buffers: [UnsafeMutablePointer<T>] = []
        for width in widths {
            buffers.append(cursor)
            cursor += batchSize * width
        }
        z = Array(buffers[0..<sizes.count])
        delta = [buffers[0]] + buffers[sizes.count..<(2 * sizes.count - 1)]
        targets = buffers[2 * sizes.count - 1]
        errorSums = .allocate(capacity: (batchSize + self.shardSize - 1) / self.shardSize)
        errorSums.initialize(repeating: 0)
        transposedWeights = TransposedWeights(network)
        let blockSize = Self.gradientRows * Self.gradientColumns + Self.gradientRows
        scratch = .allocate(capacity: workerCount * blockSize)
        scratch.initialize(repeating: 0)
        counters = PhaseCounters(maximumPhases: 3 * network.layers.count + 3,
                                 maximumRowBlocks: (batchSize + Self.blockRows - 1) / Self.blockRows)
        workerNanoseconds = .allocate(capacity: 4 * workerCount)
        workerNanoseconds.initialize(repeating: 0)
        sampleNorms = .allocate(capacity: batchSize)
        sampleNorms.initialize(repeating: 0)
        let updateTasks = network.layers.map {
            BlockGrid(rows: $0.outputCount, columns: $0.inputCount, blockRows: Self.gradientRows, blockColumns: Self.gradientColumns).count
        }
        updateTaskOffsets = updateTasks.indices.map { updateTasks[..<$0].reduce(0, +) }
        blockSquares = .allocate(capacity: updateTasks.reduce(0, +))
        blockSquares.initialize(repeating: 0)
    }

    deinit {
        storage.deallocate()
        errorSums.deallocate()
        scratch.deallocate()
        workerNanoseconds.deallocate()
        recorded?.deallocate()
        sampleNorms.deallocate()
        blockSquares.deallocate()
        noIndices.deallocate()
    }

    /// Conversion, forward, backward and update worker-seconds since the last reset.
    public var phaseTimes: PhaseTimes {
        var times = PhaseTimes()
        for w in 0..<workerCount {
            times.conversion += Double(workerNanoseconds[4 * w]) * 1e-9
            times.forward += Double(workerNanoseconds[4 * w + 1]) * 1e-9
            times.backward += Double(workerNanoseconds[4 * w + 2]) * 1e-9
            times.update += Double(workerNanoseconds[4 * w + 3]) * 1e-9
        }
        return times
    }

    public func resetTimes() {
        workerNanoseconds.update(repeating: 0)
    }

    /// Whether `backward` also writes the summed gradient out, for
    /// `gradient` (tests and tools; training never needs it). Off by default.
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

    /// The gradient of the last step, scale · Σ_s Σ_{n∈s} ∂E^n/∂w, exactly
    /// as the optimizer received it.
    /// - Precondition: `recordsGradient` was set before that step.
    public var gradient: [T] {
        guard let recorded else { preconditionFailure("set recordsGradient before the step to read its gradient") }
        return Array(recorded)
    }

    /// One step on the batch at `indices`: the forward pass, the loss, and,
    /// when Σ_{n∈batch} E^n is finite, for each block of w its gradient
    /// g = scale · Σ_s Σ_{n∈s} ∂E^n/∂w handed to `rule` with the parameters
    /// at `w` (the network's, which this engine's wᵀ matches), and wᵀ
    /// updated to match. Returns Σ_{n∈batch} E^n, summed in shard order; when
    /// it is not finite nothing was changed.
    ///
    /// With `perSample`, the step first finishes every δ, then computes each
    /// sample's ‖∂E^n/∂w‖ and scales its δ rows by min(1, C/‖∂E^n/∂w‖), so
    /// that each gradient block is Σ_n c_n ∂E^n/∂w (one product, δ's rows
    /// scaled: no per-sample gradient is ever formed), adds the keyed noise,
    /// and only then scales and hands it to the rule. A batch may then be
    /// empty: the gradient is the noise alone.
    public func step(dataset: Dataset, indices: UnsafeBufferPointer<Int32>,
                     scale: T, rule: UpdateRule<T>, parameters w: UnsafeMutablePointer<T>,
                     perSample: PerSampleOptions? = nil) -> T {
        precondition((indices.count > 0 || perSample != nil) && indices.count <= batchCapacity,
                     "batch of \(indices.count) for capacity \(batchCapacity)")
        rows = indices.count
        var job = StepJob(step: self, dataset: dataset,
                          batch: SharedPointer(base: UnsafeMutablePointer(mutating: indices.baseAddress ?? UnsafePointer(noIndices))),
                          w: SharedPointer(base: w), scale: scale, rule: rule)
        job.perSample = perSample
        run(job)
        return errorSum
    }

    /// ‖∂E^n/∂w‖ (weights and biases of every layer, before clipping) of each
    /// sample of the last step run with per-sample options.
    public var lastSampleNorms: [T] { Array(sampleNorms.prefix(rows)) }

    /// ‖Σ_n c_n ∂E^n/∂w‖² of the last step run with per-sample options: the
    /// summed (clipped) gradient before noise and scaling, its blocks added in a fixed order.
    public var lastGradientSquaredNorm: Double { blockSquares.reduce(0, +) }

    /// The first half of a step split across processes (`DistributedStep`):
    /// the forward pass of the batch at `indices` (this process's shards of
    /// the global batch) and, when its loss is finite, each shard's own
    /// gradient chain Σ_{n∈s} ∂E^n/∂w written to `shardGradients` +
    /// s·parameterCount, in the network's parameter layout. Nothing is
    /// updated; `w` (the network's parameters, which wᵀ matches) is only
    /// read. Returns Σ_{n∈s} E^n of each shard.
    public func shardGradients(dataset: Dataset, indices: UnsafeBufferPointer<Int32>, parameters w: UnsafePointer<T>,
                               into shardGradients: UnsafeMutablePointer<T>, perSample: PerSampleOptions? = nil) -> [T] {
        precondition(indices.count > 0 && indices.count <= batchCapacity,
                     "batch of \(indices.count) for capacity \(batchCapacity)")
        rows = indices.count
        // Clipping only: the noise is the owner's, added to the sum.
        run(StepJob(step: self, dataset: dataset,
                    batch: SharedPointer(base: UnsafeMutablePointer(mutating: indices.baseAddress!)),
                    w: SharedPointer(base: UnsafeMutablePointer(mutating: w)), scale: 1, rule: UpdateRule(kind: .sgd),
                    sink: SharedPointer(base: shardGradients), perSample: perSample.map { PerSampleOptions(clip: $0.clip) }))
        return Array(errorSums.prefix(shardCount))
    }

    /// Makes wᵀ match parameters `w` that changed outside a step.
    public func refreshTransposedWeights(from w: UnsafePointer<T>) {
        for (l, layer) in layers.enumerated() {
            transposedWeights.refresh(l, layer, from: w, outputs: 0..<layer.outputCount, inputs: 0..<layer.inputCount)
        }
    }

    /// Σ_{n∈batch} E^n of the current batch: the shards' sums in shard order.
    fileprivate var errorSum: T {
        var sum: T = 0
        for s in 0..<shardCount { sum += errorSums[s] }
        return sum
    }

    private var shardCount: Int { (rows + shardSize - 1) / shardSize }

    private func run(_ job: StepJob<T>) {
        let phaseCount = job.phaseCount
        var end = 0
        for p in 0..<phaseCount {
            let (first, second) = job.parts(of: p)
            end += first.grid.count + (second?.grid.count ?? 0)
            counters.phaseEnds[p] = end
        }
        runPhases(phaseCount, workers: workerCount, counters: counters, job)
    }

    // MARK: - The tasks

    /// What a part of a phase does; its tasks are the blocks of `grid`.
    fileprivate enum Work {
        case gather, forward(Int), loss, propagate(Int), norms, update(Int)

        /// Tasks are blocks of `blockRows` rows (and of columns).
        var isRowBlocked: Bool {
            switch self {
            case .gather, .forward, .propagate, .norms: return true
            case .loss, .update: return false
            }
        }

        var isLoss: Bool {
            if case .loss = self { return true }
            return false
        }
    }

    fileprivate struct Part {
        let work: Work
        let grid: BlockGrid
    }

    fileprivate func part(_ work: Work) -> Part {
        let rowBlocks = BlockGrid(rows: rows, columns: 1, blockRows: Self.blockRows, blockColumns: 1)
        switch work {
        case .gather, .norms:
            return Part(work: work, grid: rowBlocks)
        case .forward(let l):
            return Part(work: work, grid: BlockGrid(rows: rows, columns: layers[l].outputCount,
                                                    blockRows: Self.blockRows, blockColumns: Self.blockColumns))
        case .loss:
            return Part(work: work, grid: BlockGrid(rows: rows, columns: 1, blockRows: shardSize, blockColumns: 1))
        case .propagate(let l):
            return Part(work: work, grid: BlockGrid(rows: rows, columns: layers[l].inputCount,
                                                    blockRows: Self.blockRows, blockColumns: Self.blockColumns))
        case .update(let l):
            return Part(work: work, grid: BlockGrid(rows: layers[l].outputCount, columns: layers[l].inputCount,
                                                    blockRows: Self.gradientRows, blockColumns: Self.gradientColumns))
        }
    }

    /// Gathers the rows `r` of the batch: z_0 and the targets.
    fileprivate func gather(_ r: Range<Int>, dataset: Dataset, batch: UnsafeMutablePointer<Int32>) {
        dataset.gather(UnsafeBufferPointer(start: batch + r.lowerBound, count: r.count),
                       inputs: z[0] + r.lowerBound * layers[0].inputCount,
                       targets: targets + r.lowerBound * outputWidth, outputCount: outputWidth)
    }

    private var outputWidth: Int { layers[layers.count - 1].outputCount }

    /// a = z·wᵀ + b, then h, for rows `r` and outputs `c` of layer l.
    fileprivate func forward(_ l: Int, rows r: Range<Int>, columns c: Range<Int>, w: UnsafePointer<T>) {
        let layer = layers[l]
        layer.forward(z[l] + r.lowerBound * layer.inputCount, rows: r.count, columns: c,
                      parameters: w, transposedWeights: transposedWeights.panels(l, layer),
                      into: z[l + 1] + r.lowerBound * layer.outputCount,
                      activate: l < layers.count - 1, kernel: kernel)
    }

    /// δ_L and Σ_{n∈s} E^n for shard s (rows `r`).
    fileprivate func outputErrors(shard s: Int, rows r: Range<Int>) {
        let L = layers.count, width = outputWidth
        errorSums[s] = loss.outputErrors(
            z[L] + r.lowerBound * width, targets: targets + r.lowerBound * width, rows: r.count, width: width,
            outputActivation: layers[L - 1].activation, delta: delta[L] + r.lowerBound * width)
    }

    /// δ_l = h'(a_l) ⊙ (δ_{l+1}·W_l) for rows `r` and columns `c` of δ_l.
    fileprivate func propagate(_ l: Int, rows r: Range<Int>, columns c: Range<Int>, w: UnsafePointer<T>) {
        let layer = layers[l]
        layer.propagate(delta: delta[l + 1] + r.lowerBound * layer.outputCount,
                        input: z[l] + r.lowerBound * layer.inputCount, rows: r.count, columns: c,
                        parameters: w, into: delta[l] + r.lowerBound * layer.inputCount,
                        inputActivation: layers[l - 1].activation, kernel: kernel)
    }

    /// For each sample n of rows `r`: ‖∂E^n/∂w‖² = Σ_l ‖δ_n^{l+1}‖² (‖z_n^l‖² + 1)
    /// (an outer product's norm, and the bias), its root kept, and its δ rows
    /// scaled by c_n = min(1, C/‖∂E^n/∂w‖), so that every later product sums c_n ∂E^n/∂w.
    fileprivate func clipSamples(rows r: Range<Int>, clip: T) {
        for n in r {
            var squared: T = 0
            for (l, layer) in layers.enumerated() {
                let δδ = squaredNorm(delta[l + 1] + n * layer.outputCount, count: layer.outputCount)
                let zz = squaredNorm(z[l] + n * layer.inputCount, count: layer.inputCount) + 1
                squared += δδ * zz
            }
            let norm = squared.squareRoot()
            sampleNorms[n] = norm
            guard norm > clip else { continue }
            let c = clip / norm
            for (l, layer) in layers.enumerated() {
                let d = delta[l + 1] + n * layer.outputCount
                for j in 0..<layer.outputCount { d[j] *= c }
            }
        }
    }

    /// Each shard's own gradient chain for layer l's w rows `j` and columns
    /// `i` (and, with the first columns, b_j), into shard s's gradient at
    /// `sink` + s·parameterCount.
    fileprivate func shardChains(_ l: Int, outputs j: Range<Int>, inputs i: Range<Int>, sink: UnsafeMutablePointer<T>) {
        let layer = layers[l]
        for s in 0..<shardCount {
            let r = (s * shardSize)..<min((s + 1) * shardSize, rows)
            let g = sink + s * parameterCount
            layer.weightGradientProduct(delta: delta[l + 1] + r.lowerBound * layer.outputCount,
                                        input: z[l] + r.lowerBound * layer.inputCount, rows: r.count, segment: shardSize,
                                        outputs: j, inputs: i,
                                        into: g + layer.weightOffset + j.lowerBound * layer.inputCount + i.lowerBound,
                                        ldg: layer.inputCount, kernel: kernel)
            if i.lowerBound == 0 {
                biasGradient(delta[l + 1] + r.lowerBound * layer.outputCount, rows: r.count, width: layer.outputCount,
                             segment: shardSize, columns: j, into: g + layer.biasOffset + j.lowerBound)
            }
        }
    }

    /// The gradient of layer l's w rows `j` and columns `i` (and, with the
    /// first columns, of b_j) over the whole batch, shard by shard; returns
    /// the nanosecond at which the product ended.
    fileprivate func update(_ l: Int, outputs j: Range<Int>, inputs i: Range<Int>, worker: Int,
                            scale: T, rule: UpdateRule<T>, w: UnsafeMutablePointer<T>,
                            perSample: PerSampleOptions?, task: Int) -> UInt64 {
        let layer = layers[l]
        let g = scratch.baseAddress! + worker * (Self.gradientRows * Self.gradientColumns + Self.gradientRows)
        let gb = g + Self.gradientRows * Self.gradientColumns
        let withBiases = i.lowerBound == 0
        if rows > 0 {
            layer.weightGradientProduct(delta: delta[l + 1], input: z[l], rows: rows, segment: shardSize,
                                        outputs: j, inputs: i, into: g, ldg: i.count, kernel: kernel)
            if withBiases {
                biasGradient(delta[l + 1], rows: rows, width: layer.outputCount, segment: shardSize, columns: j, into: gb)
            }
        } else {
            // An empty (Poisson) batch: no gradient, only the noise below.
            g.update(repeating: 0, count: j.count * i.count)
            gb.update(repeating: 0, count: j.count)
        }
        if let perSample {
            if perSample.measuresGradientNorm {
                var squares = Double(squaredNorm(g, count: j.count * i.count))
                if withBiases { squares += Double(squaredNorm(gb, count: j.count)) }
                blockSquares[updateTaskOffsets[l] + task] = squares
            }
            if perSample.noiseStandardDeviation > 0 {
                let σC = Float(perSample.noiseStandardDeviation)
                for (row, jj) in j.enumerated() {
                    KeyedRandom.addNormalNoise(to: g + row * i.count, count: i.count,
                                               first: layer.weightOffset + jj * layer.inputCount + i.lowerBound,
                                               standardDeviation: σC, seed: perSample.noiseSeed, step: perSample.step)
                }
                if withBiases {
                    KeyedRandom.addNormalNoise(to: gb, count: j.count, first: layer.biasOffset + j.lowerBound,
                                               standardDeviation: σC, seed: perSample.noiseSeed, step: perSample.step)
                }
            }
        }
        let productEnd = monotonicNanoseconds()
        if scale != 1 {
            for e in 0..<(j.count * i.count) { g[e] *= scale }
            if withBiases { for e in 0..<j.count { gb[e] *= scale } }
        }
        for (row, jj) in j.enumerated() {
            let first = layer.weightOffset + jj * layer.inputCount + i.lowerBound
            if let recorded { (recorded.baseAddress! + first).update(from: g + row * i.count, count: i.count) }
            rule.apply(w, along: g + row * i.count, range: first..<(first + i.count))
        }
        if withBiases {
            let first = layer.biasOffset + j.lowerBound
            if let recorded { (recorded.baseAddress! + first).update(from: gb, count: j.count) }
            rule.apply(w, along: gb, range: first..<(first + j.count))
        }
        transposedWeights.refresh(l, layer, from: w, outputs: j, inputs: i)
        return productEnd
    }

    fileprivate func addTime(worker: Int, slot: Int, _ nanoseconds: UInt64) {
        workerNanoseconds[4 * worker + slot] &+= nanoseconds
    }

    fileprivate var layerCount: Int { layers.count }
}

/// A matrix of `rows` × `columns` cut into blocks of `blockRows` ×
/// `blockColumns` (the last ones shorter), numbered row-major.
struct BlockGrid {
    let rows: Int, columns: Int, blockRows: Int, blockColumns: Int

    var rowBlocks: Int { (rows + blockRows - 1) / blockRows }
    var columnBlocks: Int { (columns + blockColumns - 1) / blockColumns }
    var count: Int { rowBlocks * columnBlocks }

    /// The rows and columns of block t.
    func block(_ t: Int) -> (rows: Range<Int>, columns: Range<Int>) {
        let (r, c) = t.quotientAndRemainder(dividingBy: columnBlocks)
        return (r * blockRows..<min((r + 1) * blockRows, rows), c * blockColumns..<min((c + 1) * blockColumns, columns))
    }
}

/// One step, as the workers see it.
private struct StepJob<T: NetworkScalar>: PhasedJob, @unchecked Sendable {
    // Sendable by the step's rules: tasks of one phase write disjoint blocks;
    // a phase reads only what earlier phases wrote; w and wᵀ of a layer are
    // written only in a phase after every task that reads them.
    let step: ShardedGradients<T>
    let dataset: Dataset
    let batch: SharedPointer<Int32>
    let w: SharedPointer<T>
    let scale: T
    let rule: UpdateRule<T>
    /// Where each shard's gradient chains go instead of the optimizer (`shardGradients`).
    var sink: SharedPointer<T>? = nil
    /// Per-sample norms, clipping and noise: every δ first, then a phase of norms.
    var perSample: PerSampleOptions? = nil

    /// Gather, the L layers, the loss; then L backward phases (see `parts`);
    /// per sample: L − 1 of δ, one of norms and clipping, ⌈L/2⌉ of gradients.
    var phaseCount: Int {
        let L = step.layerCount
        return perSample == nil ? 2 * L + 2 : L + 2 + L + (L + 1) / 2
    }

    /// The work of phase p: one part, or two that run side by side.
    func parts(of p: Int) -> (ShardedGradients<T>.Part, ShardedGradients<T>.Part?) {
        let L = step.layerCount
        if p == 0 { return (step.part(.gather), nil) }
        if p <= L { return (step.part(.forward(p - 1)), nil) }
        if p == L + 1 { return (step.part(.loss), nil) }
        if perSample != nil {
            // δ down to layer 1, the norms (and clipping) of every sample, then the gradients two layers a phase.
            let q = p - (L + 2)
            if q < L - 1 { return (step.part(.propagate(L - 1 - q)), nil) }
            if q == L - 1 { return (step.part(.norms), nil) }
            let top = L - 1 - 2 * (q - L)
            return (step.part(.update(top)), top >= 1 ? step.part(.update(top - 1)) : nil)
        }
        // Backward phase q propagates δ through layer L−1−q (down to layer
        // 1) and updates layer L−q, whose δ is complete and whose w no task
        // of this phase reads. The last phase updates layers 1 and 0.
        let q = p - (L + 2)
        if q < L - 1 {
            let propagate = step.part(.propagate(L - 1 - q))
            return q == 0 ? (propagate, nil) : (step.part(.update(L - q)), propagate)
        }
        return L >= 2 ? (step.part(.update(1)), step.part(.update(0))) : (step.part(.update(0)), nil)
    }

    /// The part that task `task` of phase p belongs to, and its index there.
    private func locate(_ p: Int, _ task: Int) -> (part: ShardedGradients<T>.Part, task: Int) {
        let (first, second) = parts(of: p)
        return task < first.grid.count ? (first, task) : (second!, task - first.grid.count)
    }

    // Row-block dependencies (units of `blockRows` rows): a layer's block of
    // rows needs only the same rows of the phase before (the inputs it
    // gathers, the layer below's z, the layer above's δ), each complete when
    // all of that phase's column blocks of those rows are done. The loss
    // needs the rows of its shard. The first backward phase needs the whole
    // loss (its tasks check that it is finite), and a gradient task all of
    // the phase before (every δ of the batch, and no task left that reads
    // its w).
    func needs(phase: Int, task: Int) -> (rowBlocks: Range<Int>, tasksPerBlock: Int)? {
        let (part, t) = locate(phase, task)
        guard part.work.isRowBlocked || part.work.isLoss, let previous = rowPart(of: phase - 1) else { return nil }
        let rows = part.grid.block(t).rows, rowBlock = ShardedGradients<T>.blockRows
        return ((rows.lowerBound / rowBlock)..<((rows.upperBound + rowBlock - 1) / rowBlock), previous.grid.columnBlocks)
    }

    func marks(phase: Int, task: Int) -> Int? {
        let (part, t) = locate(phase, task)
        return part.work.isRowBlocked ? part.grid.block(t).rows.lowerBound / ShardedGradients<T>.blockRows : nil
    }

    /// Phase p's part whose tasks are blocks of `blockRows` rows, if any.
    private func rowPart(of p: Int) -> ShardedGradients<T>.Part? {
        let (first, second) = parts(of: p)
        if first.work.isRowBlocked { return first }
        if let second, second.work.isRowBlocked { return second }
        return nil
    }

    @_specialize(where T == Float)
    func run(worker: Int, phase: Int, task: Int) {
        // A diverged step changes nothing: every backward task sees the
        // whole loss (the first backward phase waits for all of it).
        if phase >= step.layerCount + 2, !step.errorSum.isFinite { return }
        let (part, t) = locate(phase, task)
        let (rows, columns) = part.grid.block(t)
        let start = monotonicNanoseconds()
        switch part.work {
        case .gather:
            step.gather(rows, dataset: dataset, batch: batch.base)
            step.addTime(worker: worker, slot: 0, monotonicNanoseconds() &- start)
        case .forward(let l):
            step.forward(l, rows: rows, columns: columns, w: w.base)
            step.addTime(worker: worker, slot: 1, monotonicNanoseconds() &- start)
        case .loss:
            step.outputErrors(shard: t, rows: rows)
            step.addTime(worker: worker, slot: 1, monotonicNanoseconds() &- start)
        case .propagate(let l):
            step.propagate(l, rows: rows, columns: columns, w: w.base)
            step.addTime(worker: worker, slot: 2, monotonicNanoseconds() &- start)
        case .norms:
            step.clipSamples(rows: rows, clip: T(perSample?.clip ?? .infinity))
            step.addTime(worker: worker, slot: 2, monotonicNanoseconds() &- start)
        case .update(let l) where sink != nil:
            step.shardChains(l, outputs: rows, inputs: columns, sink: sink!.base)
            step.addTime(worker: worker, slot: 2, monotonicNanoseconds() &- start)
        case .update(let l):
            let productEnd = step.update(l, outputs: rows, inputs: columns, worker: worker,
                                         scale: scale, rule: rule, w: w.base, perSample: perSample, task: t)
            step.addTime(worker: worker, slot: 2, productEnd &- start)
            step.addTime(worker: worker, slot: 3, monotonicNanoseconds() &- productEnd)
        }
    }
}
