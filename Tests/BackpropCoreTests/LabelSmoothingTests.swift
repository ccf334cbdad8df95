import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// Label smoothing: targets (1 − ε) t + ε/K, and δ_k = y_k − t̃_k (Loss.swift's derivation).
struct LabelSmoothingTests {
    @Test("backpropagation on smoothed targets equals central differences of −Σ t̃ ln y, in Double", arguments: [0.1, 0.3])
    func centralDifferences(ε: Double) throws {
        var problem = try gradientCheckProblem(sizes: [5, 7, 4], activation: .tanh, loss: .crossEntropy, seed: 3)
        problem.targets = problem.targets.map { (1 - ε) * $0 + ε / 4 }
        for result in checkGradients(of: problem.network, inputs: problem.inputs, targets: problem.targets) {
            #expect(result.worstRelativeError < Tolerance.finiteDifference.value,
                    "layer \(result.layer) \(result.tensor): \(result.worstRelativeError)")
        }
    }

    @Test("one sample by hand: zero weights give y = 1/3, so the loss is ln 3 and ∂E/∂b = y − t̃")
    func handComputed() throws {
        var c = TrainingConfiguration()
        c.sizes = [2, 3]
        let network: Network<Float> = try c.makeNetwork()
        let dataset = Dataset(name: "one", features: .floats([0.5, -1]), targets: .classes([0]), featureCount: 2)
        let step = TrainingStep(network: network, batchSize: 1, shardSize: 1, workerCount: 1, kernel: .portable, labelSmoothing: 0.3)
        let (loss, gradient) = lossAndGradient(of: step, at: network, on: dataset)
        #expect(isClose(Double(loss), log(3), .floatAgainstDouble))
        let bias = Array(gradient[network.layers[0].biasRange]).map(Double.init)
        let expected = [1.0 / 3 - (0.7 + 0.1), 1.0 / 3 - 0.1, 1.0 / 3 - 0.1]
        #expect(zip(bias, expected).allSatisfy { isClose($0, $1, .floatAgainstDouble) }, "\(bias)")
        // ∂E/∂w_ji = δ_j z_i.
        let weights = Array(gradient[network.layers[0].weightRange]).map(Double.init)
        #expect(zip(weights, expected.flatMap { [$0 * 0.5, $0 * -1] }).allSatisfy { isClose($0, $1, .floatAgainstDouble) }, "\(weights)")
    }

    @Test("with label smoothing the run is bit-identical for 1, 2 and 3 workers; ε = 0 is the plain run")
    func workersAndZero() throws {
        let dataset = randomDataset(count: 120, featureCount: 12, classCount: 4, seed: 9)
        func run(workers: Int, ε: Double) throws -> [UInt32] {
            var c = TrainingConfiguration()
            (c.sizes, c.batchSize, c.shardSize, c.workers, c.epochs, c.labelSmoothing) = ([12, 9, 4], 40, 8, workers, 2, ε)
            let trainer = try Trainer(configuration: c, dataset: dataset, kernel: .portable)
            while !trainer.isFinished { try trainer.step() }
            return trainer.network.parameters.map(\.bitPattern)
        }
        let one = try run(workers: 1, ε: 0.2)
        #expect(try run(workers: 2, ε: 0.2) == one && run(workers: 3, ε: 0.2) == one)
        #expect(try run(workers: 1, ε: 0) != one)
        var c = TrainingConfiguration()
        c.labelSmoothing = 1
        #expect(throws: TrainingError.outOfDomain("labelSmoothing", value: "1.0", domain: .fraction)) { try c.validate() }
        c.labelSmoothing = 0.1
        c.loss = .sumOfSquares
        #expect(throws: TrainingError.self) { try c.validate() }
    }
}
