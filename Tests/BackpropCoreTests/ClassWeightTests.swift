import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// Class-weighted cross-entropy: E^n = −Σ_k w_k t_k ln y_k, δ_k = y_k Σ_j w_j t_j − w_k t_k (Loss.swift's derivation).
struct ClassWeightTests {
    @Test("the step's gradient equals central differences of its E = Σ_n w_c(n)·CE, in Double, with and without label smoothing",
          arguments: [0.0, 0.2])
    func centralDifferences(ε: Double) throws {
        let problem = try gradientCheckProblem(sizes: [5, 7, 4], activation: .tanh, loss: .crossEntropy, rows: 6, seed: 3)
        let dataset = gradientCheckDataset(inputs: problem.inputs, targets: problem.targets, inputCount: 5, loss: .crossEntropy)
        let results = checkStepGradients(of: problem.network, dataset: dataset, labelSmoothing: ε, classWeights: [0.5, 2, 0.25, 1.25])
        for result in results {
            #expect(result.worstRelativeError < Tolerance.finiteDifference.value,
                    "ε \(ε), layer \(result.layer) \(result.tensor): \(result.worstRelativeError)")
        }
    }

    @Test("one sample by hand: zero weights give y = 1/3, so E = w_0 ln 3 and ∂E/∂b = w_0 (y − t)")
    func handComputed() throws {
        var c = TrainingConfiguration()
        c.sizes = [2, 3]
        let network: Network<Float> = try c.makeNetwork()
        let dataset = Dataset(name: "one", features: .floats([0.5, -1]), targets: .classes([0]), featureCount: 2)
        let step = TrainingStep(network: network, batchSize: 1, shardSize: 1, workerCount: 1, kernel: .portable, classWeights: [3, 1, 0.5])
        let (loss, gradient) = lossAndGradient(of: step, at: network, on: dataset)
        #expect(isClose(Double(loss), 3 * log(3), .floatAgainstDouble))
        let bias = Array(gradient[network.layers[0].biasRange]).map(Double.init)
        let expected = [3 * (1.0 / 3 - 1), 3 * (1.0 / 3), 3 * (1.0 / 3)]
        #expect(zip(bias, expected).allSatisfy { isClose($0, $1, .floatAgainstDouble) }, "\(bias)")
    }

    @Test("with class weights the run is bit-identical for 1, 2 and 3 workers; weights all 1 are the plain run, bit for bit")
    func workersAndOnes() throws {
        let dataset = randomDataset(count: 120, featureCount: 12, classCount: 4, seed: 9)
        func run(workers: Int, weights: [Double]?) throws -> [UInt32] {
            var c = TrainingConfiguration()
            (c.sizes, c.batchSize, c.shardSize, c.workers, c.epochs, c.classWeights) = ([12, 9, 4], 40, 8, workers, 2, weights)
            let trainer = try Trainer(configuration: c, dataset: dataset, kernel: .portable)
            while !trainer.isFinished { try trainer.step() }
            return trainer.network.parameters.map(\.bitPattern)
        }
        let weighted = try run(workers: 1, weights: [1, 3, 0.5, 1])
        #expect(try run(workers: 2, weights: [1, 3, 0.5, 1]) == weighted && run(workers: 3, weights: [1, 3, 0.5, 1]) == weighted)
        let plain = try run(workers: 1, weights: nil)
        #expect(weighted != plain)
        #expect(try run(workers: 2, weights: [1, 1, 1, 1]) == plain)
    }

    @Test("refused by name: a weight per class or none, none negative or NaN, not all 0, cross-entropy only, not with distillation")
    func refusals() {
        func refusal(_ edit: (inout TrainingConfiguration) -> Void) -> String? {
            var c = TrainingConfiguration()
            c.sizes = [4, 5, 3]
            edit(&c)
            do { try c.validate() } catch {
                if case .invalidSetting(let setting, _, let reason) = error, setting.name == "classWeights" { return reason }
                if case .outOfDomain(let setting, _, let domain) = error, setting.name == "classWeights" { return domain.description }
                return "another setting: \(error)"
            }
            return nil
        }
        #expect(refusal { $0.classWeights = [1, 2, 3] } == nil)
        #expect(refusal { $0.classWeights = [1, 2] }?.contains("one weight per class (3") == true)
        #expect(refusal { $0.classWeights = [1, -2, 3] }?.contains("≥ 0") == true)
        #expect(refusal { $0.classWeights = [1, .nan, 3] }?.contains("≥ 0") == true)
        #expect(refusal { $0.classWeights = [0, 0, 0] }?.contains("more than 0") == true)
        #expect(refusal { ($0.classWeights, $0.loss, $0.outputActivation) = ([1, 1, 1], .sumOfSquares, .identity) }?.contains("cross-entropy") == true)
        #expect(refusal { ($0.classWeights, $0.distillAlpha) = ([1, 1, 1], 0.5) }?.contains("distillation") == true)
    }
}
