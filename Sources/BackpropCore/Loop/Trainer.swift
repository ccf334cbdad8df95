import Foundation

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
    /// The walk through the epochs' orders: the one the run follows (`EpochWalker`).
    private var walker: EpochWalker
    /// Where the run is.
    public var position: TrainingPosition { walker.position }
    /// The step losses logged (and, filled in by the caller, epoch summaries): `History`.
    public var history = History()
    /// The training samples, in memory or streamed.
    public let dataset: any RowSource
    private var trainingStep: TrainingStep<Float>
    /// The job's other processes and this one's part of each step; nil in a single process.
    private var distributed: DistributedStep?
    /// Whether steps measure each sample's gradient norm (`sampleStatistics`).
    public var measuresSampleNorms = false
    /// Whether steps estimate the gradient noise scale (`sampleStatistics`).
    public var measuresNoiseScale = false
    /// What the steps measured per sample since the last `resetSampleStatistics()`.
    public private(set) var sampleStatistics = SampleStatistics()
    /// The visiting order of `position.epoch`, sample by sample, as a
    /// checkpoint saves it; empty for a block shuffle, whose order is
    /// recomputed from the seed alone (and would be 4 bytes a sample).
    public var order: [Int32] {
        if case .samples(let samples) = walker.order.storage { return samples }
        return []
    }
    /// The average of the parameters that is evaluated and saved instead of them (`WeightAverage`); nil: none.
    public private(set) var average: WeightAverage?
    /// Global gradient-norm clipping (`TrainingConfiguration.clipNorm`); nil: none.
    private let clip: GradientNormClip?
    /// The step's whole gradient, when clipping needs it before the update (empty otherwise).
    private var clippedGradient: [Float] = []
    /// min(1, C/‖g‖) of the last clipped step, which the rule applied to `clippedGradient`.
    private var clipFactor: Float = 1
    /// Where the steps' batches come from (the dataset's supply, started by the first step).
    private var supply: (any BatchSupply)?
    /// Seconds the steps waited for data from supplies before the current one.
    private var earlierDataWait = 0.0

    /// Sets up a run: builds and initialises the network from the seed,
    /// allocates every workspace.
    /// - Throws: `TrainingError` for an invalid configuration or a dataset that
    ///   does not fit the network.
    public convenience init(configuration: TrainingConfiguration, dataset: any RowSource,
                            kernel: Kernel = .automatic, group: (any ProcessGroup)? = nil) throws(TrainingError) {
        try configuration.validate()
        var network: Network<Float> = try configuration.makeNetwork()
        var initStream = SeededGenerator(seed: configuration.seed, stream: 0)
        network.initialize(configuration.initialization, generator: &initStream)
        try self.init(configuration: configuration, dataset: dataset, network: network, kernel: kernel, group: group)
    }

    /// Sets up a run that continues from given parameters (a loaded model).
    /// - Parameters:
    ///   - configuration: the run's settings (validated here).
    ///   - dataset: the training samples.
    ///   - network: the parameters to start from, of the configuration's shape.
    ///   - kernel: the path of the matrix products; every path gives the same bits.
    ///   - group: the processes of a job that shares each step (`DistributedStep`);
    ///     every rank count gives the same bits. nil or one rank: this process alone.
    public init(configuration: TrainingConfiguration, dataset: any RowSource, network: Network<Float>,
                kernel: Kernel = .automatic, group: (any ProcessGroup)? = nil) throws(TrainingError) {
        try configuration.validate()
        try configuration.checkActs(sampleCount: dataset.count)
        try dataset.validate(for: network)
        if let α = configuration.distillAlpha, dataset.teacher == nil {
            throw .invalidSetting("distillAlpha", value: "\(α)",
                                  reason: "dataset \(dataset.name) comes with no teacher's probabilities to distil from")
        }
        // A teacher of views labels the images the student sees: each must be one of them.
        if let views = dataset.teacher?.views, views.isActive, !views.covers(configuration.augmentation) {
            throw .invalidSetting("augment", value: configuration.augmentation.description,
                                  reason: "the teacher of dataset \(dataset.name) has probabilities of the views of \(views) only; "
                                    + "augment within them")
        }
        self.configuration = configuration
        self.network = network
        self.dataset = dataset
        dataset.adviseHugePages()
        optimizer = configuration.optimizer.makeOptimizer(parameterCount: network.parameterCount)
        epochs = Epochs(sampleCount: dataset.count, batchSize: configuration.batchSize,
                        shuffle: configuration.shuffle, seed: configuration.seed, blocks: configuration.blockShuffle)
        // A batch is never larger than the data, so neither are the step's buffers.
        // A batch is never larger than the data; a Poisson batch varies, and is
        // given room for twice its expected size (more, and the buffers grow).
        let expected = min(configuration.batchSize, max(dataset.count, 1))
        let batchCapacity = configuration.samplingMethod == .poisson ? min(2 * expected + 64, max(dataset.count, 1)) : expected
        try dataset.check(sampling: configuration.samplingMethod, shuffle: configuration.shuffle, blocks: configuration.blockShuffle)
        if configuration.augmentation.isActive {
            guard let shape = dataset.imageShape, shape.featureCount == dataset.featureCount else {
                throw .invalidSetting("augment", value: configuration.augmentation.description,
                                      reason: dataset.imageShape.map { "dataset \(dataset.name) records images of \($0), not of its \(dataset.featureCount) features" }
                                        ?? "dataset \(dataset.name) records no image shape, which augmentation needs")
            }
            // A shift as long as the image in both directions moves every pixel out (a blank image) on the longest draws.
            let side = max(shape.height, shape.width)
            guard configuration.augmentation.shift < side else {
                throw .invalidSetting("augment", value: configuration.augmentation.description,
                                      reason: "a shift of \(configuration.augmentation.shift) pixels moves all of an image of \(shape) out of view; "
                                        + "it must be less than \(side), its longer side")
            }
        }
        let regularization = KeyedRegularization(seed: configuration.seed, dropout: configuration.dropout,
                                                 augmentation: configuration.augmentation, imageShape: dataset.imageShape)
        trainingStep = TrainingStep(network: network, batchSize: batchCapacity,
                                    shardSize: configuration.shardSize, workerCount: configuration.workers,
                                    kernel: kernel, precision: configuration.precision, labelSmoothing: Float(configuration.labelSmoothing),
                                    distillation: configuration.distillation, classWeights: configuration.classWeights?.map(Float.init),
                                    regularization: regularization)
        distributed = group.flatMap { $0.count > 1 ? $0 : nil }.map {
            DistributedStep(group: $0, parameterCount: network.parameterCount, shardSize: configuration.shardSize,
                            batchCapacity: batchCapacity)
        }
        walker = EpochWalker(epochs: epochs)
        average = WeightAverage(configuration, parameters: network.parameters)
        clip = configuration.clipNorm.map(GradientNormClip.init(maximumNorm:))
        if clip != nil && distributed == nil { clippedGradient = [Float](repeating: 0, count: network.parameterCount) }
    }

    deinit { supply?.cancel() }

    /// True once the configured epochs or steps are done.
    public var isFinished: Bool {
        position.epoch >= configuration.epochs || configuration.steps.map { position.step >= $0 } == true
    }

    /// The path of the matrix products.
    public var kernel: Kernel { trainingStep.kernel }

    /// The kernel path and precision of the step's products.
    public var products: Products { trainingStep.products }

    /// How a run evaluates its model (validation, test): the fp32 master weights by fp32 products on the step's
    /// path, whatever the step's precision, so that a score is the exported model's.
    public var evaluationProducts: Products { Products(kernel: kernel) }

    /// Where the steps' time went since the last `resetPhaseTimes()`.
    public var phaseTimes: PhaseTimes { trainingStep.phaseTimes }

    public func resetPhaseTimes() {
        trainingStep.resetTimes()
    }

    /// Whether steps keep their reduced gradient for `lastGradient` (tests and
    /// tools; it costs a write of the whole gradient per step). Off by default.
    public var recordsGradient: Bool {
        get { trainingStep.recordsGradient }
        set { trainingStep.recordsGradient = newValue }
    }

    /// The gradient of the last step, as the optimizer saw it (clipped, with `clipNorm`).
    /// - Precondition: `recordsGradient` was set before that step.
    public var lastGradient: [Float] {
        let recorded = trainingStep.gradient
        return clippedGradient.isEmpty ? recorded : clippedGradient.map { $0 * clipFactor }
    }

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
        let η = Float(learningRate)
        let batch = self.batch()
        let data = try batchData(batch)
        // Under Poisson sampling the sum is divided by the expected batch size (a
        // constant, as DP-SGD's analysis needs), not by the sample's own.
        let divisor = configuration.samplingMethod == .poisson ? epochs.batchRange(0).count : batch.count
        let scale: Float = configuration.reduction == .mean ? 1 / Float(max(divisor, 1)) : 1
        let perSample = perSampleOptions()
        let key = StepKey(step: UInt64(position.step), epoch: position.epoch)
        if batch.count > trainingStep.batchCapacity { growBuffers(to: batch.count) }
        var agreed = requests
        let errorSum: Float
        if batch.isEmpty && perSample == nil && distributed == nil {
            errorSum = 0  // an empty Poisson sample without noise: nothing to do
        } else if let distributed {
            (errorSum, agreed) = distributed.step(engine: trainingStep, data: data, indices: batch, scale: scale,
                                                  optimizer: &optimizer, learningRate: η, parameters: &network.parameters,
                                                  requests: requests, perSample: perSample, clip: clip, key: key)
        } else {
            errorSum = batch.withUnsafeBufferPointer { indices in
                network.parameters.withUnsafeMutableBufferPointer { w in
                    optimizer.withStep(learningRate: η) { rule in
                        guard let clip else {
                            return trainingStep.step(data: data, indices: indices, scale: scale, rule: rule, parameters: w.baseAddress!,
                                                     perSample: perSample, at: key)
                        }
                        // The whole gradient first, then its norm, then the update.
                        return clippedGradient.withUnsafeMutableBufferPointer { g in
                            let sum = trainingStep.step(data: data, indices: indices, scale: scale, rule: .copying(into: g.baseAddress!),
                                                        parameters: w.baseAddress!, perSample: perSample, at: key)
                            guard sum.isFinite else { return sum }
                            clipFactor = trainingStep.applyClipped(rule, clip: clip, to: w.baseAddress!, along: g.baseAddress!)
                            return sum
                        }
                    }
                }
            }
            if measuresSampleNorms || measuresNoiseScale {
                sampleStatistics.add(norms: trainingStep.lastSampleNorms, clip: configuration.privacy?.clip,
                                     sumSquaredNorm: trainingStep.lastGradientSquaredNorm, keepNorms: measuresSampleNorms)
            }
        }
        let meanLoss = batch.isEmpty ? 0 : Double(errorSum) / Double(batch.count)
        guard meanLoss.isFinite else {
            // The step changed no parameter; it must not count for the
            // optimizer either (withStep counted it; a distributed step never began it).
            if distributed == nil { optimizer.state.step -= 1 }
            throw .diverged(step: position.step + 1, loss: meanLoss, lastCheckpoint: nil)
        }
        history.log(stepLoss: meanLoss, startsEpoch: position.batch == 0)
        advance()
        if average != nil {
            network.parameters.withUnsafeBufferPointer { θ in
                average!.update(after: position, parameters: θ.baseAddress!, count: θ.count, on: trainingStep.team)
            }
        }
        return StepResult(meanLoss: meanLoss, sampleCount: batch.count, agreed: agreed)
    }

    /// The samples of the next step: the next batch of the epoch's shuffle,
    /// or a Poisson sample keyed by (seed, step), in ascending order. The
    /// gaps between taken samples are geometric, so a step costs draws for
    /// its own samples only.
    public func batch() -> ArraySlice<Int32> {
        guard configuration.samplingMethod == .poisson else { return walker.batch() }
        return ArraySlice(PoissonSample.indices(sampleCount: dataset.count, rate: samplingRate,
                                                seed: configuration.seed, step: position.step))
    }

    /// The rows of the next batch, from the dataset's supply (started here, at
    /// the current position): the dataset itself in memory, or this process's rows of the batch.
    private func batchData(_ batch: ArraySlice<Int32>) throws(TrainingError) -> Batch {
        if supply == nil {
            let rows: @Sendable (Int) -> Range<Int>
            if let distributed {
                let (rank, plan, shardSize) = (distributed.group.rank, distributed.plan, distributed.shardSize)
                rows = { DistributedStep.localRows(ofBatch: $0, rank: rank, plan: plan, shardSize: shardSize).rows }
            } else {
                rows = { 0..<$0 }
            }
            supply = dataset.batches(from: walker, endEpoch: configuration.epochs, rows: rows)
        }
        return try supply!.batch(at: position, indices: batch)
    }

    /// Whether the steps can wait for the dataset's rows (`RowSource.waitsForRows`): then `dataWaitSeconds` says how long they did.
    public var waitsForData: Bool { dataset.waitsForRows }

    /// Seconds the steps have waited for the dataset's rows (0 in memory).
    public var dataWaitSeconds: Double {
        earlierDataWait + (supply?.waitedSeconds ?? 0)
    }

    /// This step's per-sample work: DP-SGD's clipping and noise, or only measurements; nil for neither.
    private func perSampleOptions() -> PerSampleOptions? {
        guard configuration.privacy != nil || measuresSampleNorms || measuresNoiseScale else { return nil }
        let privacy = configuration.privacy
        return PerSampleOptions(clip: privacy?.clip ?? .infinity, noiseStandardDeviation: privacy.map { $0.noise * $0.clip } ?? 0,
                                noiseSeed: configuration.seed, step: UInt64(position.step), measuresGradientNorm: measuresNoiseScale)
    }

    /// Room for a Poisson sample larger than the buffers (rare: twice its expected size and more).
    private func growBuffers(to capacity: Int) {
        trainingStep = TrainingStep(network: network, batchSize: capacity, shardSize: configuration.shardSize,
                                    workerCount: configuration.workers, kernel: trainingStep.kernel, precision: trainingStep.precision,
                                    labelSmoothing: trainingStep.labelSmoothing, distillation: trainingStep.distillation,
                                    classWeights: trainingStep.classWeights, regularization: trainingStep.regularization)
        if let group = distributed?.group {
            distributed = DistributedStep(group: group, parameterCount: network.parameterCount,
                                          shardSize: configuration.shardSize, batchCapacity: capacity)
        }
    }

    /// q: the probability that a Poisson step takes each sample (batch size ÷ samples).
    public var samplingRate: Double { Double(epochs.batchRange(0).count) / Double(max(dataset.count, 1)) }

    /// (ε, the best RDP order) that DP-SGD has spent after `steps` steps (default: so far), at
    /// the configured δ; nil without DP-SGD.
    public func privacySpent(steps: Int? = nil) -> (epsilon: Double, order: Double)? {
        guard let privacy = configuration.privacy else { return nil }
        return PrivacyAccountant.epsilon(samplingRate: samplingRate, noise: privacy.noise, steps: steps ?? position.step,
                                         delta: privacy.delta)
    }

    public func resetSampleStatistics() {
        sampleStatistics = SampleStatistics()
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

    private func advance() { walker.advance() }

    /// The network that is evaluated, chosen and saved: the parameters'
    /// average where there is one (`WeightAverage`), else the parameters.
    public var evaluatedNetwork: Network<Float> {
        guard let average, average.isActive else { return network }
        var averaged = network
        averaged.parameters = average.parameters
        return averaged
    }

    /// η for the next step, from the schedule.
    public var learningRate: Double {
        configuration.schedule.rate(at: position.step, reductions: history.reductions)
    }

    /// Moves to a saved state (resume): the position, the optimizer's memory,
    /// the log, and the current epoch's order, so that no batch is replayed.
    /// An empty `order` stands for the epoch's own (a block shuffle's, which
    /// checkpoints do not save).
    /// - Precondition: the order is empty or a permutation of the dataset's
    ///   indices, and the position lies inside the epoch (storage validates both).
    /// - Parameters:
    ///   - position: where the run stopped.
    ///   - optimizerState: the optimizer's memory then.
    ///   - order: the visiting order of the position's epoch (empty: the epoch's own).
    ///   - history: the run's log.
    ///   - average: the run's average of the parameters, as saved (nil: none, or the fresh one).
    public func restore(position: TrainingPosition, optimizerState: OptimizerState<Float>,
                        order: [Int32], history: History, average: WeightAverage? = nil) {
        precondition(position.batch < epochs.batchesPerEpoch, "batch \(position.batch) beyond the epoch")
        precondition(order.isEmpty || order.count == dataset.count, "order of \(order.count) samples for \(dataset.count)")
        optimizer.state = optimizerState
        walker = EpochWalker(epochs: epochs, position: position, order: order)
        if let average {
            precondition(average.parameters.isEmpty || average.parameters.count == network.parameterCount, "an average of \(average.parameters.count) parameters")
            self.average = average
        }
        // The supply starts again where the run now is.
        earlierDataWait = dataWaitSeconds
        supply?.cancel()
        supply = nil
        self.history = history
    }
}
