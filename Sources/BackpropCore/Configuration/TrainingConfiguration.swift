/// How the summed gradient is turned into the step direction.
public enum Reduction: String, CaseIterable, Sendable, Codable {
    /// Step along (1/B) Σ_n ∂E^n/∂w, as PyTorch and Keras do by default.
    case mean
    /// Step along Σ_n ∂E^n/∂w itself.
    case sum
}

/// DP-SGD (Abadi et al. 2016): each ∂E^n/∂w clipped to norm ≤ C, then
/// N(0, σ²C²) added to each element of their sum, per step.
public struct DifferentialPrivacy: Sendable, Equatable, Codable {
    /// C, the clipping bound on each per-sample gradient's L2 norm.
    public var clip: Double
    /// σ, the noise multiplier: the noise's standard deviation is σC.
    public var noise: Double
    /// δ of the (ε, δ) guarantee reported.
    public var delta: Double

    public init(clip: Double, noise: Double, delta: Double) {
        self.clip = clip
        self.noise = noise
        self.delta = delta
    }
}

/// Everything that defines a training run; saved in checkpoints so that a run
/// can be reproduced and resumed.
public struct TrainingConfiguration: Sendable, Equatable, Codable {
    /// Layer widths from input to output.
    public var sizes: [Int] = [784, 256, 128, 10]
    public var hiddenActivation: Activation = .relu
    /// nil: the loss's default (softmax for cross-entropy, identity for sum-of-squares).
    public var outputActivation: Activation? = nil
    public var loss: Loss = .crossEntropy
    public var initialization: Initialization = .pytorch
    public var optimizer = OptimizerSettings(kind: .momentum, momentum: 0.9)
    /// The learning rate of every step: its base rate η and its shape.
    public var schedule = LearningRateSchedule(base: 0.05)
    public var batchSize = 256
    public var epochs = 10
    /// Stop after this many optimizer steps in all (nil: run all epochs).
    public var steps: Int? = nil
    public var shuffle = true
    /// Shuffle blocks of rows, then samples within windows of blocks, so that
    /// the data can be streamed (`BlockShuffle`); off by default.
    public var blockShuffle = BlockShuffle()
    public var workers = 1
    public var seed: UInt64 = 0
    public var reduction: Reduction = .mean
    /// Samples per shard: fixes the order of additions, so results do not
    /// depend on `workers`.
    public var shardSize = 128
    /// nil: shuffle (checkpoints before 0.5 have none).
    public var sampling: Sampling? = nil
    /// DP-SGD's clipping and noise; nil: plain training.
    public var privacy: DifferentialPrivacy? = nil
    /// ε of label smoothing for cross-entropy: targets (1 − ε) t + ε/K (`Loss.smoothTargets`); 0: none.
    public var labelSmoothing = 0.0
    /// Inverted dropout on the inputs and hidden layers (Dropout.swift); none by default.
    public var dropout = Dropout()
    /// Translations and mirrors of image samples in training; none by default.
    public var augmentation = Augmentation()
    /// The share of the training set held out as the validation split
    /// (`Dataset.split(validationFraction:seed:)`, keyed by `seed`); 0: none held out.
    public var validationFraction = 0.0
    /// What chooses best.h5 and early stopping's epoch, and the least change that counts as an improvement.
    public var monitor = Monitor.validationScore
    public var minDelta = 0.0
    /// nil: the run trains all its epochs.
    public var earlyStopping: EarlyStopping? = nil
    /// C of global gradient-norm clipping: each step's gradient g becomes
    /// g · min(1, C/‖g‖) before the update (`GradientNormClip`); nil: none.
    public var clipNorm: Double? = nil
    /// d of an exponential moving average of the parameters, evaluated and
    /// saved instead of them (`WeightAverage`); nil: none.
    public var ema: Double? = nil
    /// The epoch (from 1) whose end is the first averaged uniformly into the
    /// parameters that are evaluated and saved (SWA, `WeightAverage`); nil: none.
    public var swaStart: Int? = nil
    /// α of distillation from a teacher's probabilities (`Distillation`,
    /// the dataset's `teacher`); nil: the labels alone.
    public var distillAlpha: Double? = nil
    /// T of distillation; nil: 1.
    public var temperature: Double? = nil
    /// w_c of weighted cross-entropy, one per class (`Loss.classWeighted`); nil: every class weighs 1.
    public var classWeights: [Double]? = nil
    /// The operands of the step's matrix products (`Precision`): fp32, or bf16 accumulated in fp32 with
    /// fp32 master weights, gradient sums, optimizer state and loss.
    public var precision = Precision.fp32


    public init() {}

    /// Every setting of a run, declared once, in the order of the help (see `Declared`).
    public static let settings: [Declared<TrainingConfiguration>] = [
        // Model
        Declared("layers", \.sizes, words: "layer sizes", recorded: { $0 }, section: "Model",
                 summary: "Layer widths from input to output."),
        Declared("activation", \.hiddenActivation, words: "hidden activation", section: "Model",
                 summary: "Hidden activation: relu, leaky-relu (slope 0.01), tanh, sigmoid, identity."),
        Declared("outputActivation", \.outputActivation, words: "output activation",
                 shownDefault: "softmax for cross-entropy, identity for sum-of-squares", section: "Model", summary: "Output activation."),
        Declared("loss", \.loss, words: "loss", section: "Model",
                 summary: "Loss: cross-entropy, or sum-of-squares (E^n = ½ Σ_k (y_k − t_k)², needed by regression targets)."),
        Declared("initialization", \.initialization, flag: "init", words: "initialisation", section: "Model", summary: "Initialisation."),
        // Optimizer
        Declared("optimizer", \.optimizerKind, words: "optimizer", section: "Optimizer", summary: "Optimizer: torch.optim's rules and defaults."),
        Declared("momentum", \.optimizer.momentum, words: "momentum", domain: .fraction, requirement: .optimizer(.momentum, .nesterov, .rmsprop),
                 section: "Optimizer",
                 summary: "Momentum μ (momentum, nesterov; rmsprop, where it defaults to \(text(of: OptimizerSettings.defaults(for: .rmsprop).momentum)))."),
        Declared("weightDecay", \.optimizer.weightDecay, words: "weight decay", domain: .nonNegative, section: "Optimizer",
                 summary: "Weight decay λ (L2 for sgd/momentum/nesterov/adam/rmsprop/adagrad, decoupled for adamw)."),
        Declared("rmspropAlpha", \.optimizer.alpha, words: "RMSprop alpha", domain: .fraction, requirement: .optimizer(.rmsprop),
                 shownDefault: text(of: OptimizerSettings.defaults(for: .rmsprop).smoothing), section: "Optimizer",
                 summary: "RMSprop: α, the smoothing constant of the squared gradients."),
        Declared("centered", \.optimizer.centered, words: "centred RMSprop", requirement: .optimizer(.rmsprop),
                 recorded: { $0 == true ? true : nil }, section: "Optimizer",
                 summary: "RMSprop: centre the second moment by the mean gradient."),
        Declared("lrDecay", \.optimizer.learningRateDecay, words: "learning-rate decay", domain: .nonNegative, requirement: .optimizer(.adagrad),
                 shownDefault: text(of: OptimizerSettings.defaults(for: .adagrad).decay), section: "Optimizer",
                 summary: "Adagrad: the learning-rate decay, η_t = η/(1 + (t − 1)·decay)."),
        Declared("initialAccumulator", \.optimizer.initialAccumulator, words: "initial accumulator", domain: .nonNegative,
                 requirement: .optimizer(.adagrad), shownDefault: text(of: OptimizerSettings.defaults(for: .adagrad).accumulatorStart),
                 section: "Optimizer", summary: "Adagrad: the accumulator's starting value."),
        Declared("beta1", \.optimizer.beta1, words: "beta1", domain: .fraction, requirement: .optimizer(.adam, .adamw), section: "Optimizer",
                 summary: "Adam, AdamW: β1, the decay of the mean gradient m (PyTorch's betas[0])."),
        Declared("beta2", \.optimizer.beta2, words: "beta2", domain: .fraction, requirement: .optimizer(.adam, .adamw), section: "Optimizer",
                 summary: "Adam, AdamW: β2, the decay of the mean squared gradient v (PyTorch's betas[1])."),
        Declared("epsilon", \.optimizer.epsilon, words: "epsilon", domain: .positive, requirement: .optimizer(.adam, .adamw, .rmsprop, .adagrad),
                 section: "Optimizer", summary: "Adam, AdamW, RMSprop, Adagrad: ε added to the root of the second moment (1e-10 for adagrad)."),
        Declared("clipNorm", \.clipNorm, words: "gradient-norm clip", domain: .positive, stored: true, section: "Optimizer",
                 summary: "Clip each step's gradient to this global L2 norm C: g ← g · min(1, C/‖g‖) before the update (Keras' clipnorm)."),
        // Regularisation
        Declared("labelSmoothing", \.labelSmoothing, words: "label smoothing", domain: .fraction, section: "Regularisation",
                 summary: "Cross-entropy: train on the targets (1 − ε) t + ε/K instead of one-hot t (test losses stay plain)."),
        Declared("classWeights", \.classWeights, words: "class weights", domain: .nonNegative, stored: true, section: "Regularisation",
                 summary: "Cross-entropy: weigh each sample's loss by its class's weight w0,w1,… (one per class), E^n = w_c(n)·CE (Keras' class_weight; PyTorch's CrossEntropyLoss(weight=) summed: a mean over the batch, not over the weights)."),
        Declared("dropout", \.dropout.hidden, words: "dropout", domain: .fraction, shownDefault: "0",
                 recorded: { $0.isEmpty ? nil : $0.count == 1 ? $0[0] as any Sendable : $0 }, section: "Regularisation",
                 summary: "Inverted dropout on the hidden layers' outputs in training: one rate p for all, or p1,p2,… one per hidden layer (relu, leaky-relu or identity)."),
        Declared("inputDropout", \.dropout.input, words: "input dropout", domain: .fraction, section: "Regularisation",
                 summary: "Inverted dropout on the input features in training."),
        Declared("augment", \.augmentation, words: "augmentation", recorded: { $0.description }, section: "Regularisation",
                 summary: "Image augmentation in training, drawn per (seed, epoch, sample): shift=S translates by up to ±S pixels (zero fill), flip mirrors left-right half the time; needs a dataset with an image shape."),
        Declared("ema", \.ema, words: "EMA decay", domain: .openUnit, stored: true, section: "Regularisation",
                 summary: "Keep an exponential moving average of the parameters, θ̄ ← d·θ̄ + (1 − d)·θ after every step, and evaluate, choose and save it instead of them (timm's ModelEmaV2, Keras' use_ema)."),
        Declared("swaStart", \.swaStart, words: "SWA start epoch", domain: .atLeast(1), stored: true, section: "Regularisation",
                 summary: "Average the parameters uniformly over the ends of the epochs from this one (counted from 1) on, and evaluate, choose and save the average (torch.optim.swa_utils)."),
        // Distillation
        Declared("distillAlpha", \.distillAlpha, words: "distillation weight α", domain: .probability, stored: true, section: "Distillation",
                 summary: "Distil: train on a teacher's class probabilities q (--teacher) as well as the labels, E = α·T²·KL(q_T ‖ softmax(a/T)) + (1 − α)·CE(t, y) (Hinton et al. 2015)."),
        Declared("temperature", \.temperature, words: "distillation temperature", domain: .positive, stored: true, section: "Distillation",
                 summary: "T of distillation: the teacher's and the student's probabilities are both softened to softmax(z/T); 1 when not given."),
        // Validation
        Declared("validationFraction", \.validationFraction, words: "validation fraction", domain: .fraction, section: "Validation",
                 summary: "Hold out this share of /train (stratified by class, keyed by --seed) as the validation split, which chooses best.h5; 0: the dataset's own /validation, if it has one."),
        Declared("monitor", \.monitor, words: "monitor", section: "Validation",
                 summary: "What chooses best.h5 and early stopping's epoch: validation-score (accuracy or RMSE) or validation-loss."),
        Declared("minDelta", \.minDelta, words: "least improvement", domain: .nonNegative, section: "Validation",
                 summary: "The least change of the monitor that counts as an improvement."),
        Declared("earlyStopping", \.patience, words: "early-stopping patience", domain: .atLeast(1), rule: .overridable, section: "Validation",
                 summary: "Stop after N epochs without an improvement of the monitor; model.h5 then holds the best epoch's weights (needs a validation split)."),
        // Batches
        Declared("batchSize", \.batchSize, words: "batch size", domain: .atLeast(1), section: "Batches", summary: "Samples per mini-batch."),
        Declared("shardSize", \.shardSize, words: "shard size", domain: .atLeast(1), section: "Batches",
                 summary: "Samples per shard; fixes the summation order, so results do not depend on --workers."),
        // Samples
        Declared("shuffle", \.shuffle, words: "shuffle", section: "Samples",
                 summary: "Visit the samples in a seeded shuffle each epoch (--no-shuffle: in file order)."),
        Declared("shuffleBlocks", \.blockShuffle.rows, words: "shuffle block rows", domain: .wholeRange(0, Int(Int32.max)),
                 requirement: .blockShuffle, section: "Samples",
                 summary: "Shuffle blocks of this many consecutive rows, then the samples within each --shuffle-window of blocks: an order that streams from disk (0: a global shuffle)."),
        Declared("shuffleWindow", \.blockShuffle.window, words: "shuffle window", domain: .wholeRange(1, Int(Int32.max)),
                 requirement: .blockShuffle, section: "Samples",
                 summary: "With --shuffle-blocks: the blocks whose samples are shuffled together (what a streamed epoch holds at once)."),
        Declared("seed", \.seed, words: "seed", section: "Samples", summary: "Seed for initialisation, shuffling and DP-SGD's noise."),
        Declared("reduction", \.reduction, words: "reduction", section: "Samples",
                 summary: "mean: step along the batch-mean gradient; sum: along the summed gradient."),
        Declared("sampling", \.sampling, words: "sampling", shownDefault: "poisson with DP-SGD, else shuffle", section: "Samples",
                 summary: "How steps pick samples: shuffle (batches of an epoch's shuffle) or poisson (each sample with probability batch/N)."),
        // DP-SGD
        Declared("dpClip", \.dpClip, words: "clipping bound", domain: .positive, section: "DP-SGD",
                 summary: "DP-SGD: clip each per-sample gradient to this L2 norm C (turns DP-SGD on)."),
        Declared("dpNoise", \.dpNoise, words: "noise multiplier", domain: .nonNegative, section: "DP-SGD",
                 summary: "DP-SGD: the noise multiplier σ (noise N(0, σ²C²) on each summed gradient element)."),
        Declared("dpDelta", \.dpDelta, words: "privacy delta", domain: .openUnit, shownDefault: "1/N rounded down to a power of ten",
                 section: "DP-SGD", summary: "DP-SGD: the δ of the (ε, δ) reported."),
        // Length and learning rate
        Declared("learningRate", \.schedule.base, words: "learning rate", domain: .nonNegative, rule: .overridable, section: "Length and learning rate",
                 summary: "Learning rate η (the schedule's base rate)."),
        Declared("lrSchedule", \.scheduleKind, words: "learning-rate schedule", rule: .overridable, section: "Length and learning rate",
                 summary: "Learning-rate schedule: constant, step, cosine, or plateau (lower η when the validation --monitor stops improving)."),
        Declared("lrStepSize", \.lrStepSize, words: "schedule step size", domain: .atLeast(1), rule: .overridable, requirement: .schedule(.step),
                 shownDefault: "one epoch", section: "Length and learning rate", summary: "step: multiply η by --lr-gamma every this many steps."),
        Declared("lrGamma", \.lrGamma, words: "schedule gamma", domain: .positive, rule: .overridable, requirement: .schedule(.step),
                 shownDefault: text(of: LearningRateSchedule.defaultGamma), section: "Length and learning rate", summary: "step: the decay factor γ."),
        Declared("warmupSteps", \.warmupSteps, words: "warm-up steps", domain: .atLeast(0), rule: .overridable, requirement: .schedule(.cosine),
                 shownDefault: "\(LearningRateSchedule.defaultWarmupSteps)", section: "Length and learning rate",
                 summary: "cosine: steps of linear warm-up from 0 to η."),
        Declared("minLr", \.minLr, words: "minimum learning rate", domain: .nonNegative, rule: .overridable,
                 requirement: .schedule(.cosine, .plateau), shownDefault: text(of: LearningRateSchedule.defaultMinimum),
                 section: "Length and learning rate", summary: "cosine: the rate η_min reached at the last step; plateau: the floor of the reductions."),
        Declared("plateauFactor", \.plateauFactor, words: "plateau factor", domain: .openUnit, rule: .overridable, requirement: .schedule(.plateau),
                 shownDefault: text(of: LearningRateSchedule.defaultPlateauFactor), section: "Length and learning rate",
                 summary: "plateau: multiply η by this factor at each reduction."),
        Declared("plateauPatience", \.plateauPatience, words: "plateau patience", domain: .atLeast(1), rule: .overridable,
                 requirement: .schedule(.plateau), shownDefault: "\(LearningRateSchedule.defaultPlateauPatience)",
                 section: "Length and learning rate", summary: "plateau: epochs without a better --monitor before η is reduced."),
        Declared("epochs", \.epochs, words: "epochs", domain: .atLeast(0), rule: .overridable, section: "Length and learning rate",
                 summary: "Epochs to train in all (0 writes the freshly initialised model)."),
        Declared("steps", \.steps, words: "steps", domain: .atLeast(1), rule: .overridable, stored: true, section: "Length and learning rate",
                 summary: "Stop after this many optimizer steps in all."),
        // Threads
        Declared("workers", \.workers, words: "workers", domain: .wholeRange(1, workerLimit), rule: .free, shownDefault: "the active cores",
                 section: "Threads and kernel", summary: "Worker threads; they never change a result."),
        Declared("precision", \.precision, words: "precision", stored: true, section: "Threads and kernel",
                 summary: "Operands of the matrix products: fp32, or bf16 accumulated in fp32 (the weights, gradients and optimizer stay fp32)."),
    ]
}
