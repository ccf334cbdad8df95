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
    var probe = network
    var results: [GradientCheckResult] = []
    for (l, layer) in network.layers.enumerated() {
        for (tensor, range) in [("weight", layer.weightRange), ("bias", layer.biasRange)] {
            var worst = 0.0, worstIndex = 0
            for i in range {
                let original = probe.parameters[i]
                probe.parameters[i] = original + h
                let above = probe.error(inputs: inputs, targets: targets)
                probe.parameters[i] = original - h
                let below = probe.error(inputs: inputs, targets: targets)
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
