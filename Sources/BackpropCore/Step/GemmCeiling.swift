/// The speed limit of a training step on this machine: the step's matrix
/// products alone, with the shapes and block split of `TrainingStep` (its `StepPlan`)
/// and nothing else (no gather, bias, activation, loss or update). Per
/// layer: a = z·wᵀ (forward), δ·W (below the top) and δᵀ·Z summed shard by
/// shard; for 784-256-128-10 these are the 8 training products. `backprop
/// bench` reports the step's throughput as a fraction of this one.
///
/// It runs on one of Backprop's kernel paths, or on a foreign sgemm such as
/// OpenBLAS (the yardstick: the same products, per shard for δᵀ·Z, β = 1 as
/// training did before the own kernel).
public final class GemmCeiling {
    /// Which implementation the products run on.
    public enum Engine: Sendable, Equatable {
        case own(Kernel)
        /// The yardstick: another library's sgemm.
        case foreign(ForeignGemm)

        /// The engines products are timed on: every path this CPU runs but the
        /// portable one (a libm call per lane on x86-64), then `yardstick`.
        public static func timed(beside yardstick: ForeignGemm) -> [Engine] {
            Kernel.allCases.filter { $0.isAvailable && $0 != .portable }.map { .own($0) } + [.foreign(yardstick)]
        }

        /// "avx512", "avx2", "portable", or the foreign sgemm's name ("openblas").
        public var name: String {
            switch self {
            case .own(let kernel): return kernel.rawValue
            case .foreign(let gemm): return gemm.name
            }
        }

        /// Whether it is a foreign sgemm.
        public var isForeign: Bool {
            if case .foreign = self { return true } else { return false }
        }

        /// The same engine: the same path, or a foreign sgemm of the same name.
        public static func == (lhs: Engine, rhs: Engine) -> Bool { lhs.name == rhs.name }
    }

    let network: Network<Float>
    let batchSize: Int
    let shardSize: Int
    let workerCount: Int
    let engine: Engine
    /// The operands of the own kernel's products (a foreign sgemm's are fp32).
    let precision: Precision
    /// z and δ of every layer for the whole batch, w, and one gradient per worker.
    private let buffers: UnsafeMutableBufferPointer<Float>
    private let counters: PhaseCounters
    /// The workers of every measured step, as a training step keeps them.
    private let team: Team
    let transposedWeights: TransposedWeights<Float>

    public init(network: Network<Float>, batchSize: Int, shardSize: Int, workerCount: Int, engine: Engine,
                precision: Precision = .fp32) {
        self.network = network
        self.precision = precision
        self.batchSize = batchSize
        self.shardSize = min(shardSize, batchSize)
        self.workerCount = max(1, workerCount)
        self.engine = engine
        let widths = network.sizes.reduce(0, +)
        buffers = .allocate(capacity: 2 * batchSize * widths + (1 + self.workerCount) * network.parameterCount)
        // Plausible values (the products do not depend on them; zeros would do).
        buffers.initialize(repeating: 0.5)
        counters = PhaseCounters(maximumPhases: 3 * network.layers.count)
        team = Team(workers: self.workerCount)
        transposedWeights = TransposedWeights(network, pairs: precision == .bf16)
    }

    deinit { buffers.deallocate() }

    /// Runs the products of `steps` batches; returns samples per second.
    public func samplesPerSecond(steps: Int) -> Double {
        let job = CeilingJob(ceiling: self, base: SharedPointer(base: buffers.baseAddress!))
        let phaseCount = job.phases.count
        for (p, grid) in job.phases.enumerated() {
            counters.phaseEnds[p] = (p == 0 ? 0 : counters.phaseEnds[p - 1]) + grid.grid.count
        }
        let start = monotonicNanoseconds()
        for _ in 0..<steps { runPhases(phaseCount, team: team, counters: counters, job) }
        let elapsed = seconds(from: start, to: monotonicNanoseconds())
        return Double(steps * batchSize) / elapsed
    }
}

/// The ceiling's products as phases: every layer's forward product, then
/// every layer's backward products (one phase each, as in a step).
private struct CeilingJob: PhasedJob, @unchecked Sendable {
    // Sendable: tasks of a phase write disjoint blocks; nothing reads the results.
    enum Product { case forward(Int), propagate(Int), gradient(Int) }
    let ceiling: GemmCeiling
    let phases: [(product: Product, grid: BlockGrid)]
    /// In the buffers: z_l and δ_l of the whole batch (l = 0…L), w, then one
    /// gradient per worker (the kernel's tasks share the first: their blocks
    /// are disjoint). Laid out here once, not per task.
    let z: [SharedPointer<Float>], delta: [SharedPointer<Float>]
    let w: SharedPointer<Float>, gradients: SharedPointer<Float>

    init(ceiling: GemmCeiling, base: SharedPointer<Float>) {
        self.ceiling = ceiling
        let (layers, rows) = (ceiling.network.layers, ceiling.batchSize)
        let sizes = ceiling.network.sizes, widths = sizes.reduce(0, +)
        var z: [SharedPointer<Float>] = [], cursor = base.base
        for width in sizes {
            z.append(SharedPointer(base: cursor))
            cursor += rows * width
        }
        self.z = z
        delta = z.map { SharedPointer(base: $0.base + rows * widths) }
        w = SharedPointer(base: base.base + 2 * rows * widths)
        gradients = SharedPointer(base: w.base + ceiling.network.parameterCount)
        typealias Step = StepPlan
        var phases: [(Product, BlockGrid)] = layers.indices.map { l in
            (.forward(l), BlockGrid(rows: rows, columns: layers[l].outputCount,
                                    blockRows: Step.blockRows, blockColumns: Step.blockColumns))
        }
        for l in layers.indices.reversed() {
            if case .foreign = ceiling.engine {
                // Per shard, as training did with OpenBLAS: one product per shard.
                phases.append((.gradient(l), BlockGrid(rows: rows, columns: 1, blockRows: ceiling.shardSize, blockColumns: 1)))
            } else {
                phases.append((.gradient(l), BlockGrid(rows: layers[l].outputCount, columns: layers[l].inputCount,
                                                       blockRows: Step.gradientRows, blockColumns: Step.gradientColumns)))
            }
            if l > 0 {
                phases.append((.propagate(l), BlockGrid(rows: rows, columns: layers[l].inputCount,
                                                        blockRows: Step.blockRows, blockColumns: Step.blockColumns)))
            }
        }
        self.phases = phases
    }

    func run(worker: Int, phase: Int, task: Int) {
        let (product, grid) = phases[phase]
        let (rows, columns) = grid.block(task)
        let network = ceiling.network, layers = network.layers, batch = ceiling.batchSize
        func z(_ l: Int) -> UnsafeMutablePointer<Float> { self.z[l].base }
        func delta(_ l: Int) -> UnsafeMutablePointer<Float> { self.delta[l].base }
        let w = self.w.base
        switch (product, ceiling.engine) {
        case (.forward(let l), .own(let kernel)):
            layers[l].preActivationProduct(z(l) + rows.lowerBound * layers[l].inputCount, rows: rows.count,
                                           columns: columns, transposedWeights: ceiling.transposedWeights.panels(l, layers[l]),
                                           into: z(l + 1) + rows.lowerBound * layers[l].outputCount, products: Products(kernel: kernel, precision: ceiling.precision))
        case (.forward(let l), .foreign(let gemm)):
            let layer = layers[l]
            gemm.run(transposedB: true, MatrixProduct(
                m: rows.count, n: columns.count, k: layer.inputCount, segment: layer.inputCount,
                a: z(l) + rows.lowerBound * layer.inputCount, aRowStride: layer.inputCount, aColumnStride: 1,
                b: w + layer.weightOffset + columns.lowerBound * layer.inputCount, ldb: layer.inputCount,
                c: z(l + 1) + rows.lowerBound * layer.outputCount + columns.lowerBound, ldc: layer.outputCount,
                accumulate: false))
        case (.propagate(let l), .own(let kernel)):
            layers[l].backpropagatedProduct(delta: delta(l + 1) + rows.lowerBound * layers[l].outputCount,
                                            rows: rows.count, columns: columns, parameters: w,
                                            into: delta(l) + rows.lowerBound * layers[l].inputCount,
                                            products: Products(kernel: kernel, precision: ceiling.precision),
                                            pairs: ceiling.transposedWeights.weightPairs(l))
        case (.propagate(let l), .foreign(let gemm)):
            let layer = layers[l]
            gemm.run(transposedB: false, MatrixProduct(
                m: rows.count, n: columns.count, k: layer.outputCount, segment: layer.outputCount,
                a: delta(l + 1) + rows.lowerBound * layer.outputCount, aRowStride: layer.outputCount, aColumnStride: 1,
                b: w + layer.weightOffset + columns.lowerBound, ldb: layer.inputCount,
                c: delta(l) + rows.lowerBound * layer.inputCount + columns.lowerBound, ldc: layer.inputCount,
                accumulate: false))
        case (.gradient(let l), .own(let kernel)):
            let g = gradients.base
            layers[l].weightGradientProduct(delta: delta(l + 1), input: z(l), rows: batch, segment: ceiling.shardSize,
                                            outputs: rows, inputs: columns,
                                            into: g + layers[l].weightOffset + rows.lowerBound * layers[l].inputCount
                                                + columns.lowerBound,
                                            ldg: layers[l].inputCount, products: Products(kernel: kernel, precision: ceiling.precision))
        case (.gradient(let l), .foreign(let gemm)):
            // Shard `task` (rows): its δᵀ·Z added into the gradient of its worker.
            let layer = layers[l]
            gemm.run(transposedB: false, MatrixProduct(
                m: layer.outputCount, n: layer.inputCount, k: rows.count, segment: rows.count,
                a: delta(l + 1) + rows.lowerBound * layer.outputCount, aRowStride: 1, aColumnStride: layer.outputCount,
                b: z(l) + rows.lowerBound * layer.inputCount, ldb: layer.inputCount,
                c: gradients.base + worker * network.parameterCount + layer.weightOffset, ldc: layer.inputCount,
                accumulate: true))
        }
    }
}
