import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// Weight averaging (`--ema`, `--swa-start`, `WeightAverage`): the average
/// is the recurrence computed by hand from a plain run's parameters, bit for
/// bit; it never changes training; it is the same bits for any worker count,
/// kernel path and rank count; and it is what the fit loop evaluates.
struct WeightAverageTests {
    let dataset = randomDataset(count: 147, featureCount: 70, classCount: 5, seed: 4)

    /// DistributedTests' model (3 batches an epoch: 72, 72, 3), an optimizer (momentum unless given), and an average.
    func configuration(ema: Double? = nil, swaStart: Int? = nil, workers: Int = 1,
                       optimizer: OptimizerKind = .momentum, clipNorm: Double? = nil) -> TrainingConfiguration {
        var c = DistributedTests().configuration(optimizer: optimizer, workers: workers)
        (c.ema, c.swaStart, c.clipNorm) = (ema, swaStart, clipNorm)
        return c
    }

    /// A plain run's parameters after each of `steps` steps (index 0: the initial ones).
    func plainParameters(steps: Int, optimizer: OptimizerKind = .momentum, clipNorm: Double? = nil) throws -> [[Float]] {
        let trainer = try Trainer(configuration: configuration(optimizer: optimizer, clipNorm: clipNorm), dataset: dataset)
        var parameters = [trainer.network.parameters]
        for _ in 0..<steps {
            try trainer.step()
            parameters.append(trainer.network.parameters)
        }
        return parameters
    }

    /// Every optimizer, and the whole-gradient route a norm clip takes: the average sees each step's parameters once, after the update.
    @Test("EMA: θ̄_t = d·θ̄_{t−1} + (1 − d)·θ_t from θ̄_0 = θ_0, computed by hand in Float from a plain run, bit for bit; the parameters trained are the plain run's",
          arguments: [(OptimizerKind.momentum, nil), (.sgd, nil), (.adamw, nil), (.adam, 0.05), (.rmsprop, nil), (.adagrad, nil), (.momentum, 0.05)] as [(OptimizerKind, Double?)])
    func exponential(optimizer: OptimizerKind, clipNorm: Double?) throws {
        let (steps, d) = (7, Float(0.75))
        let plain = try plainParameters(steps: steps, optimizer: optimizer, clipNorm: clipNorm)
        var expected = plain[0]
        for t in 1...steps { expected = zip(expected, plain[t]).map { a, θ in d * a + (1 - d) * θ } }
        let trainer = try Trainer(configuration: configuration(ema: 0.75, optimizer: optimizer, clipNorm: clipNorm), dataset: dataset)
        for _ in 0..<steps { try trainer.step() }
        #expect(trainer.network.parameters.map(\.bitPattern) == plain[steps].map(\.bitPattern))
        #expect(trainer.evaluatedNetwork.parameters.map(\.bitPattern) == expected.map(\.bitPattern))
        #expect(trainer.average?.count == steps)
        #expect(trainer.evaluatedNetwork.parameters != trainer.network.parameters)
    }

    @Test("SWA from epoch 2: the raw parameters until epoch 2 ends, then the running mean θ̄_n = θ̄_{n−1} + (θ − θ̄_{n−1})/n of the epoch ends, by hand, bit for bit")
    func uniform() throws {
        let steps = 12  // four epochs of 3 steps
        let plain = try plainParameters(steps: steps)
        let trainer = try Trainer(configuration: configuration(swaStart: 2), dataset: dataset)
        for step in 1...steps {
            try trainer.step()
            if step < 6 { #expect(trainer.evaluatedNetwork.parameters == trainer.network.parameters, "step \(step)") }
        }
        // Epoch ends at steps 6, 9 and 12 (epochs 2, 3, 4).
        var expected = plain[6]
        for (n, step) in [(2, 9), (3, 12)] {
            expected = zip(expected, plain[step]).map { a, θ in a + (θ - a) / Float(n) }
        }
        #expect(trainer.average?.count == 3)
        #expect(trainer.evaluatedNetwork.parameters.map(\.bitPattern) == expected.map(\.bitPattern))
        #expect(trainer.network.parameters.map(\.bitPattern) == plain[steps].map(\.bitPattern))
    }

    @Test("the average is bit-identical for 1, 2, 3 and 8 workers on every kernel path, and for 1–4 ranks (threads) × 1–2 workers",
          arguments: [(0.9, nil), (nil, 1)] as [(Double?, Int?)])
    func workersKernelsAndRanks(ema: Double?, swaStart: Int?) throws {
        let steps = 7
        @Sendable func averaged(_ trainer: Trainer) throws -> [UInt32] {
            for _ in 0..<steps { try trainer.step() }
            return trainer.evaluatedNetwork.parameters.map(\.bitPattern)
        }
        let reference = try averaged(Trainer(configuration: configuration(ema: ema, swaStart: swaStart), dataset: dataset))
        for kernel in Kernel.allCases where kernel.isAvailable {
            for workers in [1, 2, 3, 8] {
                let c = configuration(ema: ema, swaStart: swaStart, workers: workers)
                #expect(try averaged(Trainer(configuration: c, dataset: dataset, kernel: kernel)) == reference, "\(kernel), \(workers) workers")
            }
        }
        for ranks in 1...4 {
            for workers in [1, 2] {
                let c = configuration(ema: ema, swaStart: swaStart, workers: workers)
                let dataset = self.dataset
                let results = try ThreadJob.run(ranks: ranks) { rank in try averaged(Trainer(configuration: c, dataset: dataset, group: rank)) }
                for (r, result) in results.enumerated() { #expect(result == reference, "\(ranks) ranks × \(workers) workers, rank \(r)") }
            }
        }
    }

    @Test("the fit loop evaluates, chooses and returns the average: the validation loss logged is the average's")
    func loopJudgesTheAverage() throws {
        var c = configuration(ema: 0.5)
        c.epochs = 2
        let validation = randomDataset(count: 40, featureCount: 70, classCount: 5, seed: 9)
        let trainer = try Trainer(configuration: c, dataset: dataset)
        let result = try TrainingLoop(trainer: trainer, validation: validation).fit()
        let averaged = try evaluate(trainer.evaluatedNetwork, on: validation, workers: 1)
        let raw = try evaluate(trainer.network, on: validation, workers: 1)
        #expect(averaged.meanLoss != raw.meanLoss)
        #expect(trainer.history.epochs.last?.validationLoss == averaged.meanLoss)
        #expect(result.network.parameters == trainer.evaluatedNetwork.parameters)
    }

    @Test("--ema with --swa-start is refused by name; a decay outside (0, 1) and a start before epoch 1 too")
    func refusals() {
        for c in [configuration(ema: 0.9, swaStart: 2), configuration(ema: 1), configuration(ema: 0), configuration(swaStart: 0)] {
            #expect(throws: TrainingError.self) { try c.validate() }
        }
    }
}
