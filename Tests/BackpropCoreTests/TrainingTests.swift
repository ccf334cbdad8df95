import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// Data parallelism, epochs, smoke training and configuration errors.
struct TrainingTests {
    func configuration(sizes: [Int], workers: Int, optimizer: OptimizerKind = .momentum) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.sizes = sizes
        c.batchSize = 40
        c.shardSize = 8
        c.workers = workers
        c.epochs = 2
        c.seed = 5
        c.optimizer = OptimizerSettings(kind: optimizer, learningRate: 0.05)
        return c
    }

    @Test("gradient and parameters are bit-identical for 1, 2, 3 and 8 workers", arguments: [OptimizerKind.momentum, .adam])
    func workerCountInvariance(optimizer: OptimizerKind) throws {
        let dataset = randomDataset(count: 150, featureCount: 12, classCount: 4, seed: 1)
        var results: [(gradient: [Float], parameters: [Float], losses: [Double])] = []
        for workers in [1, 2, 3, 8] {
            let trainer = try Trainer(configuration: configuration(sizes: [12, 16, 9, 4], workers: workers, optimizer: optimizer),
                                      dataset: dataset)
            trainer.recordsGradient = true
            var losses: [Double] = []
            for _ in 0..<6 { losses.append(try trainer.step().meanLoss) }
            results.append((trainer.lastGradient, trainer.network.parameters, losses))
        }
        for r in results.dropFirst() {
            #expect(r.gradient.map(\.bitPattern) == results[0].gradient.map(\.bitPattern))
            #expect(r.parameters.map(\.bitPattern) == results[0].parameters.map(\.bitPattern))
            #expect(r.losses == results[0].losses)
        }
    }

    @Test("the sharded sum equals one unsharded gradient (reduction sum), step after step")
    func shardedEqualsWhole() throws {
        let dataset = randomDataset(count: 40, featureCount: 5, classCount: 3, seed: 2)
        var c = configuration(sizes: [5, 6, 3], workers: 2)
        c.reduction = .sum
        c.shuffle = false
        c.optimizer.learningRate = 0
        let trainer = try Trainer(configuration: c, dataset: dataset)
        trainer.recordsGradient = true
        let (inputs, targets) = dataset.arrays(outputCount: 3, as: Float.self)
        let whole = trainer.network.gradient(inputs: inputs, targets: targets).gradient
        // η = 0 and one batch per epoch: every step sees the same batch and
        // weights, so a slot not cleared after a reduction would double step 2's sum.
        for step in 1...3 {
            try trainer.step()
            for i in whole.indices {
                #expect(abs(trainer.lastGradient[i] - whole[i]) <= 1e-5 * max(1, abs(whole[i])), "step \(step), parameter \(i)")
            }
        }
    }

    @Test("shards computed but never reduced (a diverged step) do not leak into the next step's sum")
    func unreducedShardsAreCleared() throws {
        let dataset = randomDataset(count: 24, featureCount: 5, classCount: 3, seed: 4)
        var network = try Network<Float>(sizes: [5, 6, 3], loss: .crossEntropy)
        var generator = SeededGenerator(seed: 4)
        network.initialize(.pytorch, generator: &generator)
        let indices = (0..<Int32(24)).map { $0 }
        func reducedGradient(computingFirst extraBatches: Int) -> [Float] {
            let gradients = ShardedGradients(network: network, batchSize: 24, shardSize: 8, workerCount: 2)
            gradients.recordsGradient = true
            indices.withUnsafeBufferPointer { batch in
                for _ in 0..<extraBatches { _ = gradients.computeShards(network: network, dataset: dataset, indices: batch) }
                _ = gradients.computeShards(network: network, dataset: dataset, indices: batch)
            }
            var optimizer = SGD<Float>(settings: OptimizerSettings(kind: .sgd, learningRate: 0), parameterCount: network.parameterCount)
            var parameters = network.parameters
            parameters.withUnsafeMutableBufferPointer { w in
                optimizer.withStep { rule in gradients.reduce(scale: 1, rule: rule, parameters: w.baseAddress!) }
            }
            return gradients.gradient
        }
        let once = reducedGradient(computingFirst: 0)
        #expect(once.filter { $0 != 0 }.count > 30)
        #expect(reducedGradient(computingFirst: 2).map(\.bitPattern) == once.map(\.bitPattern))
    }

    @Test("epochs are seeded permutations, different each epoch, identity without shuffle")
    func epochOrders() {
        let epochs = Epochs(sampleCount: 100, batchSize: 30, shuffle: true, seed: 9)
        let first = epochs.order(epoch: 0)
        #expect(first.sorted() == Array(0..<100))
        #expect(first == Epochs(sampleCount: 100, batchSize: 30, shuffle: true, seed: 9).order(epoch: 0))
        #expect(first != epochs.order(epoch: 1))
        #expect(first != Epochs(sampleCount: 100, batchSize: 30, shuffle: true, seed: 10).order(epoch: 0))
        #expect(Epochs(sampleCount: 100, batchSize: 30, shuffle: false, seed: 9).order(epoch: 3) == Array(0..<100))
        #expect(epochs.batchesPerEpoch == 4)
        #expect(epochs.batchRange(3) == 90..<100)
    }

    @Test("two spirals train to ≥ 95 % in 800 steps (under a second)")
    func twoSpiralsSmoke() throws {
        let dataset = twoSpirals(pointsPerClass: 100)
        var c = TrainingConfiguration()
        c.sizes = [2, 32, 32, 2]
        c.hiddenActivation = .tanh
        c.initialization = .xavier
        c.optimizer = OptimizerSettings(kind: .adam, learningRate: 0.03)
        c.batchSize = 50
        c.shardSize = 25
        c.workers = 2
        c.epochs = 200
        let start = Date()
        let trainer = try Trainer(configuration: c, dataset: dataset)
        while !trainer.isFinished { try trainer.step() }
        let seconds = Date().timeIntervalSince(start)
        let accuracy = evaluate(trainer.network, on: dataset, workers: 2).accuracy
        #expect(trainer.position.step == 800)
        #expect(accuracy >= 0.95, "accuracy \(accuracy)")
        // Wall time is checked only on request: shared machines are noisy (see README, Testing).
        if ProcessInfo.processInfo.environment["BACKPROP_TIMED_TESTS"] != nil {
            #expect(seconds < 1, "took \(seconds) s")
        }
    }

    @Test("a huge learning rate stops with diverged, parameters untouched")
    func divergence() throws {
        let dataset = randomDataset(count: 64, featureCount: 8, classCount: 3, seed: 3)
        var c = configuration(sizes: [8, 8, 3], workers: 2, optimizer: .sgd)
        c.loss = .sumOfSquares
        c.optimizer.learningRate = 1e30
        let trainer = try Trainer(configuration: c, dataset: dataset)
        var caught: TrainingError?
        var before: [Float] = []
        for _ in 0..<10 {
            before = trainer.network.parameters
            do { try trainer.step() } catch { caught = error; break }
        }
        guard case .diverged(let step, _, _) = caught else { Issue.record("expected divergence, got \(String(describing: caught))"); return }
        #expect(step >= 1)
        #expect(trainer.network.parameters.map(\.bitPattern) == before.map(\.bitPattern))
        #expect(caught?.description.contains("diverged at step \(step)") == true)
    }

    @Test("configuration errors name the problem")
    func configurationErrors() throws {
        let dataset = randomDataset(count: 10, featureCount: 4, classCount: 5, seed: 4)
        #expect(throws: TrainingError.invalidLayers([4])) { try Network<Float>(sizes: [4], loss: .crossEntropy) }
        #expect(throws: TrainingError.softmaxHiddenActivation) {
            try Network<Float>(sizes: [4, 3, 2], hiddenActivation: .softmax, loss: .crossEntropy)
        }
        #expect(throws: TrainingError.outputActivationMismatch(loss: .crossEntropy, activation: .sigmoid)) {
            try Network<Float>(sizes: [4, 2], outputActivation: .sigmoid, loss: .crossEntropy)
        }
        var c = configuration(sizes: [5, 3], workers: 1)
        #expect(throws: TrainingError.inputWidthMismatch(dataset: "random-4", features: 4, networkInputs: 5)) {
            try Trainer(configuration: c, dataset: dataset)
        }
        c.sizes = [4, 3]
        let label = Int(dataset.labels!.first { $0 >= 3 } ?? 0)
        let index = dataset.labels!.firstIndex { $0 >= 3 } ?? 0
        #expect(throws: TrainingError.labelOutOfRange(dataset: "random-4", index: index, label: label, outputCount: 3)) {
            try Trainer(configuration: c, dataset: dataset)
        }
        c.sizes = [4, 5]
        for (name, change) in [("learning rate", { (c: inout TrainingConfiguration) in c.optimizer.learningRate = .nan }),
                               ("batch size", { $0.batchSize = 0 }), ("workers", { $0.workers = -1 })] {
            var bad = c
            change(&bad)
            #expect { try bad.validate() } throws: { error in
                guard case .invalidSetting(let found, _, _) = error as? TrainingError else { return false }
                return found == name
            }
        }
    }
}
