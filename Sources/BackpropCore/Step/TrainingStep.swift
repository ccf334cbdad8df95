/// The data-parallel training step: the forward pass and output errors of a
/// mini-batch, then its gradient ∂E/∂w = Σ_n ∂E^n/∂w and the optimizer's
/// update, on any number of workers, with bits that depend on neither the
/// worker count nor the kernel path.
///
/// A step runs the phases of a `StepPlan` (gather, forward layer by layer,
/// loss, then δ layer by layer down while the layer above takes its
/// gradient and update) on the step's `Team`, whose workers stay awake from
/// one step to the next and claim its tasks in order. The tasks are fixed by the shapes alone. Each output element
/// of a product is one fma chain (`MatrixProduct`), so the blocks can be
/// cut anywhere; the weight gradient's chains run over each shard of
/// `shardSize` rows and the shards' chains are added in shard order, so
/// only the shard size fixes the order of the floating-point additions.
/// The backward phases start once the whole loss is known, and do nothing
/// when it is not finite: a diverged step is never applied.
///
/// The batch lives in batch-wide buffers (`StepBuffers`: every layer's z
/// and δ), so a task on any worker can read any shard; there are no
/// per-shard gradient copies and no separate reduction: a gradient block
/// goes from the product to the optimizer while it is in cache. The task
/// bodies are in TrainingStep+Tasks.swift; DP-SGD's clipping and noise in
/// PerSample.swift.
public final class TrainingStep<T: NetworkScalar> {
    public let shardSize: Int
    public let workerCount: Int
    public let parameterCount: Int
    /// The kernel path of every product.
    public let kernel: Kernel
    /// The operands of every product (`Precision`): fp32, or bf16 accumulated in fp32.
    public let precision: Precision
    /// The kernel path and precision of every product.
    public let products: Products
    /// ε of label smoothing (`Loss.smoothTargets`); 0: the targets as given.
    public let labelSmoothing: T
    /// Training on a teacher's probabilities as well (`Distillation`); nil: the targets alone.
    public let distillation: Distillation?
    /// w_k of class-weighted cross-entropy (`Loss.classWeightedErrors`); nil: every class weighs 1.
    public let classWeights: [T]?
    /// Dropout's masks and the images' augmentation, keyed by a seed.
    public let regularization: KeyedRegularization
    let masks: DropoutMasks<T>?
    let augmentation: AugmentationPlan?
    /// The most samples a batch can have.
    var batchCapacity: Int { buffers.batchCapacity }
    let layers: [Dense]
    let loss: Loss
    let buffers: StepBuffers<T>
    /// wᵀ of every layer, current with the parameters the last step wrote.
    let transposedWeights: TransposedWeights<T>
    let timer: StepTimer
    private let counters: PhaseCounters
    /// The workers, awake from one step to the next.
    let team: Team
    /// The counters of a clipped step's update (`applyClipped`).
    let tailCounters = PhaseCounters(maximumPhases: 2)
    /// The last step's gradient, when `recordsGradient` is set.
    private(set) var recorded: UnsafeMutableBufferPointer<T>?
    /// Samples in the batch of the last step.
    private(set) var rows = 0
    /// The plan of the last step, rebuilt only when the batch's shape changes.
    private var plan: (key: PlanKey, plan: StepPlan)?

    private struct PlanKey: Equatable {
        let rows: Int, perSample: Bool, destination: StepPlan.Destination
    }

    /// Allocates every buffer the batches of up to `batchSize` samples need;
    /// wᵀ is taken from `network`'s parameters now and kept current by the
    /// steps (a caller that changes the parameters otherwise must make a new one).
    public convenience init(network: Network<T>, batchSize: Int, shardSize: Int, workerCount: Int, kernel: Kernel = .automatic,
                precision: Precision = .fp32, labelSmoothing: T = 0, distillation: Distillation? = nil, classWeights: [T]? = nil,
                regularization: KeyedRegularization = KeyedRegularization()) {
        self.init(network: network, batchSize: batchSize, shardSize: shardSize, workerCount: workerCount, kernel: kernel,
                  precision: precision, labelSmoothing: labelSmoothing, distillation: distillation, classWeights: classWeights, regularization: regularization,
                  regionThreads: nil)
    }

    /// The step of the public initializer, whose team's region starts only
    /// `regionThreads` of workers 1..<W when given (`Team`; tests).
    init(network: Network<T>, batchSize: Int, shardSize: Int, workerCount: Int, kernel: Kernel, precision: Precision = .fp32,
         labelSmoothing: T, distillation: Distillation?, classWeights: [T]? = nil, regularization: KeyedRegularization, regionThreads: Int?) {
        precondition(batchSize > 0 && shardSize > 0 && workerCount > 0,
                     "batch \(batchSize), shard \(shardSize), workers \(workerCount) must be positive")
        precondition(labelSmoothing == 0 || (network.loss == .crossEntropy && labelSmoothing > 0 && labelSmoothing < 1),
                     "label smoothing \(labelSmoothing) needs cross-entropy and ε in (0, 1)")
        precondition(distillation.map { network.loss == .crossEntropy && $0.weight > 0 && $0.weight <= 1 && $0.temperature > 0 } ?? true,
                     "distillation \(String(describing: distillation)) needs cross-entropy, α in (0, 1] and T > 0")
        precondition(classWeights.map { network.loss == .crossEntropy && $0.count == network.outputCount && distillation == nil } ?? true,
                     "class weights need cross-entropy, one weight per output and no distillation")
        self.labelSmoothing = labelSmoothing
        self.distillation = distillation
        self.classWeights = classWeights
        self.regularization = regularization
        masks = DropoutMasks(regularization.dropout, layerCount: network.layers.count, seed: regularization.seed)
        precondition(masks == nil || network.layers.dropLast().allSatisfy { Dropout.allows($0.activation) }
                     || regularization.dropout.rates(layerCount: network.layers.count).dropFirst().allSatisfy { $0 == 0 },
                     "hidden dropout needs relu, leaky-relu or identity hidden layers")
        if regularization.augmentation.isActive {
            guard let shape = regularization.imageShape, shape.featureCount == network.inputCount else {
                preconditionFailure("augmentation needs an image shape of \(network.inputCount) values")
            }
            augmentation = AugmentationPlan(augmentation: regularization.augmentation, shape: shape, seed: regularization.seed)
        } else {
            augmentation = nil
        }
        self.shardSize = min(shardSize, batchSize)
        self.workerCount = workerCount
        self.kernel = kernel
        self.precision = precision
        products = Products(kernel: kernel, precision: precision)
        parameterCount = network.parameterCount
        layers = network.layers
        loss = network.loss
        buffers = StepBuffers(sizes: network.sizes, batchCapacity: batchSize, shardSize: self.shardSize,
                              workerCount: workerCount, distils: distillation != nil)
        transposedWeights = TransposedWeights(network, pairs: precision == .bf16)
        timer = StepTimer(workerCount: workerCount)
        team = Team(workers: workerCount, regionThreads: regionThreads)
        counters = PhaseCounters(maximumPhases: StepPlan.maximumPhases(layerCount: network.layers.count),
                                 maximumRowBlocks: (batchSize + StepPlan.blockRows - 1) / StepPlan.blockRows)
    }

    deinit { recorded?.deallocate() }

    /// Conversion, forward, backward and update worker-seconds since the last reset.
    public var phaseTimes: PhaseTimes { timer.times }

    public func resetTimes() { timer.reset() }

    /// Whether `step` also writes the summed gradient out, for
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

    // MARK: - Steps

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
    public func step(data: Batch, indices: UnsafeBufferPointer<Int32>,
                     scale: T, rule: UpdateRule<T>, parameters w: UnsafeMutablePointer<T>,
                     perSample: PerSampleOptions? = nil, at key: StepKey = StepKey()) -> T {
        precondition((indices.count > 0 || perSample != nil) && indices.count <= batchCapacity,
                     "batch of \(indices.count) for capacity \(batchCapacity)")
        let batch = UnsafeMutablePointer(mutating: indices.baseAddress ?? UnsafePointer(buffers.noIndices))
        run(rows: indices.count, data: data, batch: batch, w: w,
            destination: .optimizer(rule: rule.on(kernel), scale: scale), perSample: perSample, key: key)
        return errorSum
    }

    /// The first half of a step split across processes (`DistributedStep`):
    /// the forward pass of the batch at `indices` (this process's shards of
    /// the global batch) and, when its loss is finite, each shard's own
    /// gradient chain Σ_{n∈s} ∂E^n/∂w written to `shardGradients` +
    /// s·parameterCount, in the network's parameter layout. Nothing is
    /// updated; `w` (the network's parameters, which wᵀ matches) is only
    /// read. Returns Σ_{n∈s} E^n of each shard.
    public func shardGradients(data: Batch, indices: UnsafeBufferPointer<Int32>, parameters w: UnsafePointer<T>,
                               into shardGradients: UnsafeMutablePointer<T>, perSample: PerSampleOptions? = nil,
                               at key: StepKey = StepKey()) -> [T] {
        precondition(indices.count > 0 && indices.count <= batchCapacity,
                     "batch of \(indices.count) for capacity \(batchCapacity)")
        // Clipping only: the noise is the owner's, added to the sum.
        run(rows: indices.count, data: data, batch: UnsafeMutablePointer(mutating: indices.baseAddress!),
            w: UnsafeMutablePointer(mutating: w), destination: .shardChains(sink: SharedPointer(base: shardGradients)),
            perSample: perSample.map { PerSampleOptions(clip: $0.clip) }, key: key)
        return Array(buffers.errorSums.prefix(shardCount))
    }

    /// ‖∂E^n/∂w‖ (weights and biases of every layer, before clipping) of each
    /// sample of the last step run with per-sample options.
    public var lastSampleNorms: [T] { Array(buffers.sampleNorms.prefix(rows)) }

    /// ‖Σ_n c_n ∂E^n/∂w‖² of the last step run with per-sample options: the
    /// summed (clipped) gradient before noise and scaling, its blocks added in a fixed order.
    public var lastGradientSquaredNorm: Double { buffers.blockSquares.reduce(0, +) }

    /// Makes wᵀ match parameters `w` that changed outside a step.
    public func refreshTransposedWeights(from w: UnsafePointer<T>) {
        for (l, layer) in layers.enumerated() {
            transposedWeights.refresh(l, layer, from: w, outputs: 0..<layer.outputCount, inputs: 0..<layer.inputCount)
        }
    }

    /// Σ_{n∈batch} E^n of the current batch: the shards' sums in shard order.
    var errorSum: T {
        var sum: T = 0
        for s in 0..<shardCount { sum += buffers.errorSums[s] }
        return sum
    }

    var shardCount: Int { (rows + shardSize - 1) / shardSize }

    /// Runs the plan for a batch of `rows` samples at `batch`, building it
    /// only when the shape differs from the last step's.
    private func run(rows: Int, data: Batch, batch: UnsafeMutablePointer<Int32>, w: UnsafeMutablePointer<T>,
                     destination: StepJob<T>.Destination, perSample: PerSampleOptions?, key: StepKey) {
        self.rows = rows
        let planKey = PlanKey(rows: rows, perSample: perSample != nil, destination: destination.kind)
        let current: StepPlan
        if let plan, plan.key == planKey {
            current = plan.plan
        } else {
            current = StepPlan(sizes: layers.map(\.inputCount) + [layers[layers.count - 1].outputCount], rows: rows,
                               shardSize: shardSize, perSample: planKey.perSample, destination: planKey.destination)
            plan = (planKey, current)
        }
        var end = 0
        for (p, phase) in current.phases.enumerated() {
            end += phase.taskCount
            counters.phaseEnds[p] = end
        }
        let job = StepJob(step: self, plan: current, data: data, batch: SharedPointer(base: batch),
                          w: SharedPointer(base: w), destination: destination, perSample: perSample, key: key)
        runPhases(current.phases.count, team: team, counters: counters, job)
    }
}

/// Where a step is, for what is keyed by it: dropout's masks by the step,
/// augmentation by the epoch.
public struct StepKey: Sendable, Equatable {
    public var step: UInt64
    public var epoch: Int

    public init(step: UInt64 = 0, epoch: Int = 0) {
        self.step = step
        self.epoch = epoch
    }
}

/// What a training step does to its samples that evaluation does not, each
/// keyed by `seed`: dropout's masks and the images' augmentation.
public struct KeyedRegularization: Sendable, Equatable {
    public var seed: UInt64
    public var dropout: Dropout
    public var augmentation: Augmentation
    /// The images' shape, which augmentation needs.
    public var imageShape: ImageShape?

    public init(seed: UInt64 = 0, dropout: Dropout = Dropout(), augmentation: Augmentation = Augmentation(), imageShape: ImageShape? = nil) {
        self.seed = seed
        self.dropout = dropout
        self.augmentation = augmentation
        self.imageShape = imageShape
    }
}

/// The name the step had before it was split into its parts.
@available(*, deprecated, renamed: "TrainingStep")
public typealias ShardedGradients = TrainingStep
