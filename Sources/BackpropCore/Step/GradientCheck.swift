/// The worst disagreement between backpropagation and finite differences in
/// one parameter tensor.
public struct GradientCheckResult: Sendable {
    public let layer: Int
    /// "weight" or "bias".
    public let tensor: String
    /// max over elements of |a − n| / max(|a|, |n|, 1e-12).
    public let worstRelativeError: Double
    public let worstIndex: Int
}

/// Compares the backpropagated gradient ∂E/∂w of `network` with central
/// differences (E(w + h) − E(w − h)) / 2h, element by element, in Double.
///
/// - Parameters:
///   - network: the network whose gradient is checked, at its parameters.
///   - inputs: x, [rows, inputCount] row-major.
///   - targets: t, [rows, outputCount] row-major.
///   - given: the gradient to check; nil: the network's own backpropagation.
///   - h: the step; 1e-5 balances truncation (O(h²)) against round-off (O(ε/h)).
/// - Returns: one result per weight and bias tensor, layer by layer.
public func checkGradients(
    of network: Network<Double>, inputs: [Double], targets: [Double], analytic given: [Double]? = nil, step h: Double = 1e-5
) -> [GradientCheckResult] {
    let analytic = given ?? network.gradient(inputs: inputs, targets: targets).gradient
    return centralDifferences(of: network, analytic: analytic, step: h) { $0.error(inputs: inputs, targets: targets) }
}

/// Compares a training step's gradient ∂E/∂w (the one the optimizer gets)
/// with central differences of the same step's E = Σ_n E^n, in Double, with
/// all that the step keys held fixed: dropout's masks (the same seed, `key`
/// and samples), label smoothing's targets, a teacher's probabilities and
/// augmentation's draws.
///
/// - Parameters:
///   - network: the network whose gradient is checked, at its parameters.
///   - dataset: the batch: every sample of it, in order.
///   - labelSmoothing: ε of the smoothed targets (cross-entropy), or 0.
///   - distillation: the teacher's weight and temperature (the dataset's `teacher`), or nil.
///   - classWeights: w_k of class-weighted cross-entropy, or nil.
///   - regularization: dropout and augmentation, keyed by its seed.
///   - key: the step and epoch the masks and draws are keyed by.
///   - h: the step of the differences.
/// - Returns: one result per weight and bias tensor, layer by layer.
public func checkStepGradients(
    of network: Network<Double>, dataset: Dataset, labelSmoothing: Double = 0, distillation: Distillation? = nil,
    classWeights: [Double]? = nil, regularization: KeyedRegularization = KeyedRegularization(), key: StepKey = StepKey(step: 1), step h: Double = 1e-5
) -> [GradientCheckResult] {
    let engine = TrainingStep(network: network, batchSize: dataset.count, shardSize: 2, workerCount: 1, kernel: .portable,
                              labelSmoothing: labelSmoothing, distillation: distillation, classWeights: classWeights,
                              regularization: regularization)
    let indices = (0..<dataset.count).map(Int32.init)
    var optimizer = OptimizerSettings(kind: .sgd).makeOptimizer(parameterCount: network.parameterCount, scalar: Double.self)
    /// E of one step at parameters `w`, which a learning rate of 0 leaves as they are.
    func error(_ w: [Double]) -> Double {
        var w = w
        return indices.withUnsafeBufferPointer { batch in
            w.withUnsafeMutableBufferPointer { w in
                engine.refreshTransposedWeights(from: w.baseAddress!)
                return optimizer.withStep(learningRate: 0) { rule in
                    engine.step(data: Batch(dataset), indices: batch, scale: 1, rule: rule, parameters: w.baseAddress!, at: key)
                }
            }
        }
    }
    engine.recordsGradient = true
    _ = error(network.parameters)
    let analytic = engine.gradient
    engine.recordsGradient = false
    return centralDifferences(of: network, analytic: analytic, step: h) { error($0.parameters) }
}

/// A gradient check's samples as a dataset a training step reads: float
/// features, and class labels (the one-hot targets' classes) for
/// cross-entropy or the target rows for sum-of-squares.
///
/// - Parameters:
///   - inputs: x, [rows, inputCount] row-major (rounded to Float, as datasets store them).
///   - targets: t, [rows, outputCount] row-major.
///   - inputCount: the features per sample.
///   - loss: what the targets are for.
/// - Returns: the dataset of the rows, in order.
public func gradientCheckDataset(inputs: [Double], targets: [Double], inputCount: Int, loss: Loss) -> Dataset {
    let rows = inputs.count / inputCount, width = targets.count / max(rows, 1)
    let features = Dataset.Features.floats(inputs.map(Float.init))
    let labels: Dataset.Targets = loss == .crossEntropy
        ? .classes((0..<rows).map { n in UInt8((0..<width).max { targets[n * width + $0] < targets[n * width + $1] }!) })
        : .values(targets.map(Float.init), width: width)
    return Dataset(name: "gradient check", features: features, targets: labels, featureCount: inputCount)
}

/// max |a − n| / max(|a|, |n|, 1e-12) per tensor, n = (E(w + h) − E(w − h)) / 2h by `error`.
private func centralDifferences(
    of network: Network<Double>, analytic: [Double], step h: Double, error: (Network<Double>) -> Double
) -> [GradientCheckResult] {
    var probe = network
    var results: [GradientCheckResult] = []
    for (l, layer) in network.layers.enumerated() {
        for (tensor, range) in [("weight", layer.weightRange), ("bias", layer.biasRange)] {
            var worst = 0.0, worstIndex = 0
            for i in range {
                let original = probe.parameters[i]
                probe.parameters[i] = original + h
                let above = error(probe)
                probe.parameters[i] = original - h
                let below = error(probe)
                probe.parameters[i] = original
                let numeric = (above - below) / (2 * h)
                let error = abs(analytic[i] - numeric) / max(abs(analytic[i]), abs(numeric), 1e-12)
                if error > worst { (worst, worstIndex) = (error, i - range.lowerBound) }
            }
            results.append(GradientCheckResult(layer: l, tensor: tensor, worstRelativeError: worst, worstIndex: worstIndex))
        }
    }
    return results
}

/// A random problem for a gradient check: a network of `sizes` with
/// `activation` between layers and `loss`, initialised from `seed`, and
/// `rows` samples whose hidden pre-activations stay away from ReLU's kink.
public func gradientCheckProblem(
    sizes: [Int], activation: Activation, loss: Loss, outputActivation: Activation? = nil,
    rows: Int = 4, seed: UInt64
) throws(TrainingError) -> (network: Network<Double>, inputs: [Double], targets: [Double]) {
    var network = try Network<Double>(sizes: sizes, hiddenActivation: activation,
                                      outputActivation: outputActivation, loss: loss)
    var generator = SeededGenerator(seed: seed)
    network.initialize(.xavier, generator: &generator)
    // Non-zero biases so that units are not symmetric.
    for layer in network.layers {
        for i in layer.biasRange { network.parameters[i] = generator.nextNormal() * 0.1 }
    }
    let inputs = (0..<(rows * network.inputCount)).map { _ in generator.nextNormal() }
    var targets = [Double](repeating: 0, count: rows * network.outputCount)
    for n in 0..<rows {
        if loss == .crossEntropy {
            targets[n * network.outputCount + Int(generator.next() % UInt64(network.outputCount))] = 1
        } else {
            for k in 0..<network.outputCount { targets[n * network.outputCount + k] = generator.nextNormal() }
        }
    }
    return (network, inputs, targets)
}
