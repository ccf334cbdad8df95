import BackpropCore
import BackpropTestSupport
import Testing

/// Backpropagation against central finite differences, in Double.
struct GradientTests {
    static let hidden = Activation.allCases.filter(\.isElementwise)

    @Test("cross-entropy, every hidden activation", arguments: hidden)
    func crossEntropy(activation: Activation) throws {
        try expectGradientsMatch(sizes: [5, 7, 4], activation: activation, loss: .crossEntropy)
    }

    @Test("sum-of-squares, every activation as hidden and output", arguments: hidden)
    func sumOfSquares(activation: Activation) throws {
        try expectGradientsMatch(sizes: [5, 7, 4], activation: activation, loss: .sumOfSquares, output: activation)
    }

    @Test("three-layer networks, several seeds", arguments: [1, 2, 3] as [UInt64])
    func threeLayers(seed: UInt64) throws {
        try expectGradientsMatch(sizes: [6, 8, 7, 3], activation: .relu, loss: .crossEntropy, seed: seed)
        try expectGradientsMatch(sizes: [6, 8, 7, 3], activation: .tanh, loss: .sumOfSquares, seed: seed)
    }

    func expectGradientsMatch(
        sizes: [Int], activation: Activation, loss: Loss, output: Activation? = nil, seed: UInt64 = 0
    ) throws {
        let problem = try gradientCheckProblem(sizes: sizes, activation: activation, loss: loss,
                                               outputActivation: output, seed: seed)
        for result in checkGradients(of: problem.network, inputs: problem.inputs, targets: problem.targets) {
            #expect(result.worstRelativeError < Tolerance.finiteDifference.value,
                    "layer \(result.layer) \(result.tensor)[\(result.worstIndex)]: \(result.worstRelativeError)")
        }
    }

    @Test("the check fails on a wrong gradient, and names where")
    func checkerDetectsErrors() throws {
        // One weight's gradient halved: the checker must report it, in its tensor and at its index, and nothing else.
        let problem = try gradientCheckProblem(sizes: [3, 4, 2], activation: .tanh, loss: .sumOfSquares, seed: 7)
        var wrong = problem.network.gradient(inputs: problem.inputs, targets: problem.targets).gradient
        let layer = problem.network.layers[1], index = 5
        wrong[layer.weightRange.lowerBound + index] /= 2
        let results = checkGradients(of: problem.network, inputs: problem.inputs, targets: problem.targets, analytic: wrong)
        for result in results {
            if result.layer == 1 && result.tensor == "weight" {
                #expect(result.worstRelativeError > 0.3 && result.worstIndex == index, "\(result)")
            } else {
                #expect(result.worstRelativeError < Tolerance.finiteDifference.value, "\(result)")
            }
        }
    }

    @Test("batch gradient = Σ per-sample gradients", arguments: [11, 12, 13, 14] as [UInt64])
    func batchIsSumOfSamples(seed: UInt64) throws {
        let problem = try gradientCheckProblem(sizes: [4, 6, 3], activation: .sigmoid, loss: .crossEntropy, rows: 5, seed: seed)
        let (batch, batchError) = problem.network.gradient(inputs: problem.inputs, targets: problem.targets)
        var sum = [Double](repeating: 0, count: batch.count)
        var errorSum = 0.0
        let (inputWidth, outputWidth) = (problem.network.inputCount, problem.network.outputCount)
        for n in 0..<5 {
            let x = Array(problem.inputs[(n * inputWidth)..<((n + 1) * inputWidth)])
            let t = Array(problem.targets[(n * outputWidth)..<((n + 1) * outputWidth)])
            let (g, e) = problem.network.gradient(inputs: x, targets: t)
            for i in g.indices { sum[i] += g[i] }
            errorSum += e
        }
        #expect(isClose(batchError, errorSum, .doubleReordered), "seed \(seed)")
        for i in batch.indices {
            #expect(isClose(batch[i], sum[i], .doubleReordered), "seed \(seed), parameter \(i)")
        }
    }

    @Test("hand-computed forward and gradient of a 1-1-1 network")
    func handComputed() throws {
        // a1 = 2·0.5 + 0.1 = 1.1, z1 = relu = 1.1; y = a2 = −1·1.1 + 0.3 = −0.8; t = 1
        // E = ½(−1.8)² = 1.62; δ2 = −1.8; ∂E/∂w2 = δ2·z1 = −1.98; ∂E/∂b2 = −1.8
        // δ1 = 1·(−1)(−1.8) = 1.8; ∂E/∂w1 = δ1·x = 0.9; ∂E/∂b1 = 1.8
        var network = try Network<Double>(sizes: [1, 1, 1], hiddenActivation: .relu, loss: .sumOfSquares)
        network.parameters = [2, 0.1, -1, 0.3]
        let (g, e) = network.gradient(inputs: [0.5], targets: [1])
        #expect(isClose(e, 1.62, .doubleReordered))
        let expected = [0.9, 1.8, -1.98, -1.8]
        for i in 0..<4 { #expect(isClose(g[i], expected[i], .doubleReordered), "parameter \(i): \(g[i])") }
    }
}
