/// Where a run is: the epoch, the next batch within it, and the optimizer
/// steps taken in all.
public struct TrainingPosition: Sendable, Equatable, Codable {
    public var epoch = 0
    public var batch = 0
    public var step = 0
    public init(epoch: Int = 0, batch: Int = 0, step: Int = 0) {
        self.epoch = epoch
        self.batch = batch
        self.step = step
    }
}

/// What one optimizer step did.
public struct StepResult: Sendable {
    /// (1/B) Σ_n E^n over the batch.
    public let meanLoss: Double
    public let sampleCount: Int
    /// The requests of every rank of the job (this process's alone without one).
    public var agreed: StepRequests = []
}

/// Trains a network on a dataset: data-parallel gradients, then an optimizer
/// step, batch after batch in the seeded order of `Epochs`.
public final class Trainer {
    public let configuration: TrainingConfiguration
    public private(set) var network: Network<Float>
    public var optimizer: any Optimizer<Float>
    public let epochs: Epochs
    public private(set) var position = TrainingPosition()
    /// Every loss logged so far (and, filled in by the caller, epoch summaries).
    public var history = History()
    /// The file of the last checkpoint written, for divergence messages.
    public var lastCheckpoint: String?
    public let dataset: Dataset
    private let gradients: ShardedGradients<Float>
    /// The job's other processes and this one's part of each step; nil in a single process.
    private let distributed: DistributedStep?
    /// The visiting order of `position.epoch`.
    public private(set) var order: [Int32]

    /// Sets up a run: builds and initialises the network from the seed,
    /// allocates every workspace.
    /// - Throws: `TrainingError` for an invalid configuration or a dataset that
    ///   does not fit the network.
    public convenience init(configuration: TrainingConfiguration, dataset: Dataset,
                            kernel: Kernel = .automatic, group: (any ProcessGroup)? = nil) throws(TrainingError) {
        try configuration.validate()
        var network: Network<Float> = try configuration.makeNetwork()
        var initStream = SeededGenerator(seed: configuration.seed, stream: 0)
        network.initialize(configuration.initialization, generator: &initStream)
        try self.init(configuration: configuration, dataset: dataset, network: network, kernel: kernel, group: group)
    }

    /// Sets up a run that continues from given parameters (a loaded model).
    /// - Parameters:
    ///   - kernel: the path of the matrix products; every path gives the same bits.
    ///   - group: the processes of a job that shares each step (`DistributedStep`);
    ///     every rank count gives the same bits. nil or one rank: this process alone.
    public init(configuration: TrainingConfiguration, dataset: Dataset, network: Network<Float>,
                kernel: Kernel = .automatic, group: (any ProcessGroup)? = nil) throws(TrainingError) {
        try configuration.validate()
        try dataset.validate(for: network)
        self.configuration = configuration
        self.network = network
        self.dataset = dataset
        dataset.adviseHugePages()
        optimizer = configuration.optimizer.makeOptimizer(parameterCount: network.parameterCount)
        epochs = Epochs(sampleCount: dataset.count, batchSize: configuration.batchSize,
                        shuffle: configuration.shuffle, seed: configuration.seed)
        // A batch is never larger than the data, so neither are the step's buffers.
        let batchCapacity = min(configuration.batchSize, max(dataset.count, 1))
        gradients = ShardedGradients(network: network, batchSize: batchCapacity,
                                     shardSize: configuration.shardSize, workerCount: configuration.workers,
                                     kernel: kernel)
        distributed = group.flatMap { $0.count > 1 ? $0 : nil }.map {
            DistributedStep(group: $0, parameterCount: network.parameterCount, shardSize: configuration.shardSize,
                            batchCapacity: batchCapacity)
        }
        order = epochs.order(epoch: 0)
    }

    /// True once the configured epochs or steps are done.
    public var isFinished: Bool {
        position.epoch >= configuration.epochs || configuration.steps.map { position.step >= $0 } == true
    }

    /// The path of the matrix products.
    public var kernel: Kernel { gradients.kernel }

    /// Where the steps' time went since the last `resetPhaseTimes()`.
    public var phaseTimes: PhaseTimes { gradients.phaseTimes }

    public func resetPhaseTimes() {
        gradients.resetTimes()
    }

    /// Whether steps keep their reduced gradient for `lastGradient` (tests and
    /// tools; it costs a write of the whole gradient per step). Off by default.
    public var recordsGradient: Bool {
        get { gradients.recordsGradient }
        set { gradients.recordsGradient = newValue }
    }

    /// The gradient of the last step, as the optimizer saw it.
    /// - Precondition: `recordsGradient` was set before that step.
    public var lastGradient: [Float] { gradients.gradient }

    /// One optimizer step on the next batch: the forward pass, then the
    /// backward pass with the gradient, summed in shard order, handed to the
    /// optimizer block by block. Advances the position (and the epoch at
    /// its end).
    /// - Throws: `TrainingError.diverged` when the batch loss is not finite;
    ///   the parameters are then left as they were before the step.
    /// - Parameter requests: what this process asks of the job after this
    ///   step; `StepResult.agreed` holds every rank's.
    @discardableResult
    public func step(requests: StepRequests = []) throws(TrainingError) -> StepResult {
        optimizer.learningRate = Float(learningRate)
        let range = epochs.batchRange(position.batch)
        let scale: Float = configuration.reduction == .mean ? 1 / Float(range.count) : 1
        var agreed = requests
        let errorSum: Float
        if let distributed {
            (errorSum, agreed) = distributed.step(engine: gradients, dataset: dataset, indices: order[range], scale: scale,
                                                  optimizer: &optimizer, parameters: &network.parameters, requests: requests)
        } else {
            errorSum = order[range].withUnsafeBufferPointer { indices in
                network.parameters.withUnsafeMutableBufferPointer { w in
                    optimizer.withStep { rule in
                        gradients.step(dataset: dataset, indices: indices, scale: scale, rule: rule, parameters: w.baseAddress!)
                    }
                }
            }
        }
        let meanLoss = Double(errorSum) / Double(range.count)
        guard meanLoss.isFinite else {
            // The step changed no parameter; it must not count for the
            // optimizer either (withStep counted it; a distributed step never began it).
            if distributed == nil { optimizer.state.step -= 1 }
            throw .diverged(step: position.step + 1, loss: meanLoss, lastCheckpoint: lastCheckpoint)
        }
        history.stepLosses.append(meanLoss)
        advance()
        return StepResult(meanLoss: meanLoss, sampleCount: range.count, agreed: agreed)
    }

    /// The job's processes, when steps are shared among them.
    public var group: (any ProcessGroup)? { distributed?.group }

    /// Seconds and bytes the last step spent in collectives (zero in a single process).
    public var lastCommunication: (seconds: Double, bytes: Int) { distributed?.lastCommunication ?? (0, 0) }

    /// Makes the optimizer's state whole on every rank before it is saved
    /// (between checkpoints each rank keeps only its slice current). A
    /// collective: every rank calls it at the same step. Nothing to do in a single process.
    public func gatherOptimizerState() {
        distributed?.gatherState(&optimizer)
    }

    private func advance() {
        position.step += 1
        position.batch += 1
        if position.batch == epochs.batchesPerEpoch {
            position.batch = 0
            position.epoch += 1
            order = epochs.order(epoch: position.epoch)
        }
    }

    /// η for the next step, from the schedule.
    public var learningRate: Double {
        configuration.schedule.rate(base: configuration.optimizer.learningRate, step: position.step)
    }

    /// Moves to a saved state (resume): the position, the optimizer's memory,
    /// the log, and the current epoch's order, so that no batch is replayed.
    /// - Precondition: the order is a permutation of the dataset's indices and
    ///   the position lies inside the epoch (storage validates both).
    public func restore(position: TrainingPosition, optimizerState: OptimizerState<Float>,
                        order: [Int32], history: History) {
        precondition(position.batch < epochs.batchesPerEpoch, "batch \(position.batch) beyond the epoch")
        precondition(order.count == dataset.count, "order of \(order.count) samples for \(dataset.count)")
        self.position = position
        optimizer.state = optimizerState
        self.order = order
        self.history = history
    }
}
