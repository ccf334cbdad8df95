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
        c.optimizer = OptimizerSettings(kind: optimizer)
        return c
    }

    /// Steps of a run on `kernel` with `workers`: the last gradient, the
    /// parameters, the optimizer state and every loss.
    func run(_ c: TrainingConfiguration, on dataset: Dataset, kernel: Kernel, steps: Int) throws
        -> (gradient: [UInt32], parameters: [UInt32], state: OptimizerState<Float>, losses: [Double]) {
        let trainer = try Trainer(configuration: c, dataset: dataset, kernel: kernel)
        trainer.recordsGradient = true
        var losses: [Double] = []
        for _ in 0..<steps { losses.append(try trainer.step().meanLoss) }
        return (trainer.lastGradient.map(\.bitPattern), trainer.network.parameters.map(\.bitPattern),
                trainer.optimizer.state, losses)
    }

    @Test("gradient, parameters, optimizer state and losses are bit-identical for 1, 2, 3, 5, 8 and 16 workers on every kernel path",
          arguments: [OptimizerKind.momentum, .adam])
    func workerCountAndKernelInvariance(optimizer: OptimizerKind) throws {
        // Widths that cross the task blocks (64-row, 64-column, 32 × 256
        // gradient blocks), a batch of many shards, and a short last batch.
        let dataset = randomDataset(count: 330, featureCount: 70, classCount: 5, seed: 1)
        var c = configuration(sizes: [70, 300, 40, 5], workers: 1, optimizer: optimizer)
        c.batchSize = 150
        c.shardSize = 16
        let reference = try run(c, on: dataset, kernel: .portable, steps: 7)
        for kernel in Kernel.allCases where kernel.isAvailable {
            for workers in [1, 2, 3, 5, 8, 16] {
                c.workers = workers
                let r = try run(c, on: dataset, kernel: kernel, steps: 7)
                #expect(r.gradient == reference.gradient, "\(kernel), \(workers) workers")
                #expect(r.parameters == reference.parameters, "\(kernel), \(workers) workers")
                #expect(r.state == reference.state, "\(kernel), \(workers) workers")
                #expect(r.losses == reference.losses, "\(kernel), \(workers) workers")
            }
        }
    }

    @Test("the step's gradient is the shards' gradients added in shard order, bit for bit")
    func shardOrderSum() throws {
        let dataset = randomDataset(count: 40, featureCount: 5, classCount: 3, seed: 2)
        var c = configuration(sizes: [5, 6, 3], workers: 2)
        c.reduction = .sum
        c.shuffle = false
        c.schedule.base = 0
        let trainer = try Trainer(configuration: c, dataset: dataset)
        trainer.recordsGradient = true
        let (inputs, targets) = dataset.arrays(outputCount: 3, as: Float.self)
        // Shard s = rows 8s..<8s+8 of the one batch (no shuffle, batch 40).
        var expected: [Float] = []
        for s in 0..<5 {
            let x = Array(inputs[(s * 8 * 5)..<((s + 1) * 8 * 5)]), t = Array(targets[(s * 8 * 3)..<((s + 1) * 8 * 3)])
            let shard = trainer.network.gradient(inputs: x, targets: t).gradient
            expected = s == 0 ? shard : zip(expected, shard).map { $0 + $1 }
        }
        // η = 0 and one batch per epoch: every step sees the same batch and weights.
        for step in 1...3 {
            try trainer.step()
            #expect(trainer.lastGradient.map(\.bitPattern) == expected.map(\.bitPattern), "step \(step)")
        }
        // One shard for the whole batch is the one-block gradient itself.
        c.shardSize = 40
        let whole = try Trainer(configuration: c, dataset: dataset)
        whole.recordsGradient = true
        try whole.step()
        #expect(whole.lastGradient.map(\.bitPattern)
                == whole.network.gradient(inputs: inputs, targets: targets).gradient.map(\.bitPattern))
    }

    @Test("a step whose loss is not finite changes nothing, and the next step is as if it never ran")
    func divergedStepLeavesNothing() throws {
        let dataset = randomDataset(count: 24, featureCount: 5, classCount: 3, seed: 4)
        var network = try Network<Float>(sizes: [5, 6, 3], loss: .crossEntropy)
        var generator = SeededGenerator(seed: 4)
        network.initialize(.pytorch, generator: &generator)
        let indices = (0..<Int32(24)).map { $0 }
        var poisoned = network
        poisoned.parameters[network.layers[1].biasOffset] = .infinity
        /// One momentum step of `network` on an engine that first ran `before` steps of the poisoned one.
        func step(after before: Int) -> (loss: Float, parameters: [Float], gradient: [Float]) {
            let gradients = TrainingStep(network: network, batchSize: 24, shardSize: 8, workerCount: 2)
            gradients.recordsGradient = true
            var optimizer = SGD<Float>(settings: OptimizerSettings(kind: .momentum),
                                       parameterCount: network.parameterCount)
            var parameters = poisoned.parameters
            indices.withUnsafeBufferPointer { batch in
                for _ in 0..<before {
                    parameters.withUnsafeMutableBufferPointer { w in
                        optimizer.withStep(learningRate: 0.1) { rule in
                            #expect(!gradients.step(data: Batch(dataset), indices: batch, scale: 1, rule: rule,
                                                    parameters: w.baseAddress!).isFinite)
                        }
                    }
                }
            }
            #expect(parameters.map(\.bitPattern) == poisoned.parameters.map(\.bitPattern), "a diverged step wrote w")
            #expect(optimizer.state.buffers["velocity"]!.allSatisfy { $0 == 0 }, "a diverged step wrote the velocity")
            parameters = network.parameters
            let loss = indices.withUnsafeBufferPointer { batch in
                parameters.withUnsafeMutableBufferPointer { w in
                    optimizer.withStep(learningRate: 0.1) { rule in
                        gradients.step(data: Batch(dataset), indices: batch, scale: 1, rule: rule, parameters: w.baseAddress!)
                    }
                }
            }
            return (loss, parameters, gradients.gradient)
        }
        let clean = step(after: 0), afterDiverged = step(after: 2)
        #expect(clean.loss.isFinite && clean.gradient.filter { $0 != 0 }.count > 30)
        #expect(afterDiverged.loss.bitPattern == clean.loss.bitPattern)
        #expect(afterDiverged.gradient.map(\.bitPattern) == clean.gradient.map(\.bitPattern))
        #expect(afterDiverged.parameters.map(\.bitPattern) == clean.parameters.map(\.bitPattern))
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
        c.optimizer = OptimizerSettings(kind: .adam)
        c.schedule.base = 0.03
        c.batchSize = 50
        c.shardSize = 25
        c.workers = 2
        c.epochs = 200
        let start = Date()
        let trainer = try Trainer(configuration: c, dataset: dataset)
        while !trainer.isFinished { try trainer.step() }
        let seconds = Date().timeIntervalSince(start)
        let accuracy = try evaluate(trainer.network, on: dataset, workers: 2).score
        #expect(trainer.position.step == 800)
        #expect(accuracy >= 0.95, "accuracy \(accuracy)")
        // Wall time is checked only on request: shared machines are noisy (see README, Testing).
        if ProcessInfo.processInfo.environment["BACKPROP_TIMED_TESTS"] != nil {
            #expect(seconds < 1, "took \(seconds) s")
        }
    }

    @Test("a huge learning rate stops with diverged; parameters and optimizer state untouched", arguments: [OptimizerKind.sgd, .adam])
    func divergence(optimizer: OptimizerKind) throws {
        let dataset = randomDataset(count: 64, featureCount: 8, classCount: 3, seed: 3)
        var c = configuration(sizes: [8, 8, 3], workers: 2, optimizer: optimizer)
        c.loss = .sumOfSquares
        c.schedule.base = optimizer == .sgd ? 1e30 : 1e36
        let trainer = try Trainer(configuration: c, dataset: dataset)
        var caught: TrainingError?
        var before: [Float] = []
        var state = trainer.optimizer.state
        for _ in 0..<10 {
            before = trainer.network.parameters
            state = trainer.optimizer.state
            do { try trainer.step() } catch { caught = error; break }
        }
        guard case .diverged(let step, _, _) = caught else { Issue.record("expected divergence, got \(String(describing: caught))"); return }
        #expect(step >= 1)
        #expect(trainer.network.parameters.map(\.bitPattern) == before.map(\.bitPattern))
        #expect(trainer.optimizer.state == state)
        #expect(caught?.description.contains("diverged at step \(step)") == true)
    }

    @Test("configuration errors name the problem")
    func configurationErrors() throws {
        let dataset = randomDataset(count: 10, featureCount: 4, classCount: 5, seed: 4)
        #expect(throws: TrainingError.invalidLayers([4])) { try Network<Float>(sizes: [4], loss: .crossEntropy) }
        // Widths whose parameter count overflows, or passes the limit by one
        // (16382·16384 + 16384 + 16384 + 1 = 2²⁸ + 1), are refused before anything is allocated.
        for sizes in [[784, 1 << 40, 10], [2, Int.max, 2], [Int.max, Int.max], [16382, 16384, 1]] {
            #expect(throws: TrainingError.tooManyParameters(sizes: sizes, limit: Network<Float>.parameterLimit)) {
                try Network<Float>(sizes: sizes, loss: .sumOfSquares)
            }
        }
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
        for (setting, change) in [(TrainingError.Setting("learningRate"), { (c: inout TrainingConfiguration) in c.schedule.base = .nan }),
                                  ("batchSize", { $0.batchSize = 0 }), ("workers", { $0.workers = -1 })] {
            var bad = c
            change(&bad)
            #expect { try bad.validate() } throws: { error in
                guard case .outOfDomain(let found, _, _) = error as? TrainingError else { return false }
                return found == setting
            }
        }
    }

    @Test("a configuration as checkpoints before 0.7 stored it (η in the optimizer's settings) reads as the schedule's base rate")
    func legacyConfiguration() throws {
        // /training/configuration of the default run's model.h5, written by 0.6.0.
        let stored = #"{"batchSize":256,"epochs":10,"hiddenActivation":"relu","initialization":"pytorch","loss":"cross-entropy","optimizer":{"beta1":0.9,"beta2":0.999,"epsilon":1e-08,"kind":"momentum","learningRate":0.05,"momentum":0.9,"weightDecay":0},"reduction":"mean","schedule":{"constant":{}},"seed":0,"shardSize":128,"shuffle":true,"sizes":[784,256,128,10],"workers":2}"#
        var expected = TrainingConfiguration()
        expected.workers = 2
        #expect(try JSONDecoder().decode(TrainingConfiguration.self, from: Data(stored.utf8)) == expected)
        let cosine = stored.replacingOccurrences(of: #""learningRate":0.05"#, with: #""learningRate":0.2"#)
            .replacingOccurrences(of: #"{"constant":{}}"#, with: #"{"cosine":{"warmupSteps":3,"totalSteps":20,"minimum":0.001}}"#)
        expected.schedule = LearningRateSchedule(base: 0.2, .cosine(warmupSteps: 3, totalSteps: 20, minimum: 0.001))
        #expect(try JSONDecoder().decode(TrainingConfiguration.self, from: Data(cosine.utf8)) == expected)
        // And today's form round-trips.
        #expect(try JSONDecoder().decode(TrainingConfiguration.self, from: JSONEncoder().encode(expected)) == expected)
        // A property every checkpoint holds is required: without it the configuration is refused, not defaulted.
        for key in ["sizes", "loss", "seed", "optimizer"] {
            let without = try JSONSerialization.jsonObject(with: Data(stored.utf8)) as! [String: Any]
            let data = try JSONSerialization.data(withJSONObject: without.filter { $0.key != key })
            #expect(throws: DecodingError.self, "\(key)") { try JSONDecoder().decode(TrainingConfiguration.self, from: data) }
        }
    }
}
