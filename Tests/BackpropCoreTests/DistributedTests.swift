import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// A step shared by N processes (`DistributedStep`) has the bits of one
/// process, checked with ranks on threads (`ThreadJob`); the same over MPI
/// is checked end to end in BackpropCLITests/MPITests.
struct DistributedTests {
    func configuration(optimizer: OptimizerKind, workers: Int) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        // Widths that cross the task blocks, batches of 5 shards, a short last batch of 3.
        c.sizes = [70, 300, 40, 5]
        c.batchSize = 72
        c.shardSize = 16
        c.workers = workers
        c.epochs = 2
        c.seed = 9
        c.optimizer = OptimizerSettings(kind: optimizer, weightDecay: 0.001)
        return c
    }

    /// `steps` steps of rank `group.rank` (or one process): parameters, the whole optimizer state and every loss.
    static func run(_ c: TrainingConfiguration, on dataset: Dataset, steps: Int, group: (any ProcessGroup)?) throws
        -> (parameters: [UInt32], state: OptimizerState<Float>, losses: [Double]) {
        let trainer = try Trainer(configuration: c, dataset: dataset, group: group)
        var losses: [Double] = []
        for _ in 0..<steps { losses.append(try trainer.step().meanLoss) }
        trainer.gatherOptimizerState()
        return (trainer.network.parameters.map(\.bitPattern), trainer.optimizer.state, losses)
    }

    /// `run` on every rank of a job of `ranks` ranks (threads), each rank's result in rank order.
    static func runJob(_ c: TrainingConfiguration, on dataset: Dataset, steps: Int, ranks: Int) throws
        -> [(parameters: [UInt32], state: OptimizerState<Float>, losses: [Double])] {
        try ThreadJob.run(ranks: ranks) { rank in try run(c, on: dataset, steps: steps, group: rank) }
    }

    @Test("1–5 ranks × 1 and 2 workers: parameters, optimizer state and losses bit-identical to one process",
          arguments: [OptimizerKind.momentum, .adam])
    func rankCountInvariance(optimizer: OptimizerKind) throws {
        let dataset = randomDataset(count: 147, featureCount: 70, classCount: 5, seed: 4)
        let steps = 5  // two epochs of 3 batches (72, 72, 3), into the second
        let reference = try Self.run(configuration(optimizer: optimizer, workers: 1), on: dataset, steps: steps, group: nil)
        for ranks in 1...5 {
            for workers in [1, 2] {
                let c = configuration(optimizer: optimizer, workers: workers)
                let results = try Self.runJob(c, on: dataset, steps: steps, ranks: ranks)
                for (r, result) in results.enumerated() {
                    // Compared first, so that a failure names the run rather than printing every parameter.
                    let (parameters, state) = (result.parameters == reference.parameters, result.state == reference.state)
                    #expect(parameters && state, "\(ranks) ranks × \(workers) workers, rank \(r)")
                    #expect(result.losses == reference.losses, "\(ranks) ranks × \(workers) workers, rank \(r)")
                }
            }
        }
    }

    @Test("DP-SGD (Poisson sampling, clipping, keyed noise) on 1–4 ranks: one process's bits, empty samples included")
    func privateSteps() throws {
        let dataset = randomDataset(count: 120, featureCount: 70, classCount: 5, seed: 8)
        var c = configuration(optimizer: .adam, workers: 1)
        c.batchSize = 40
        c.sampling = .poisson
        c.privacy = DifferentialPrivacy(clip: 0.3, noise: 1.3, delta: 1e-5)
        let reference = try Self.run(c, on: dataset, steps: 6, group: nil)
        for ranks in 1...4 {
            let results = try Self.runJob(c, on: dataset, steps: 6, ranks: ranks)
            for (r, result) in results.enumerated() {
                let same = (result.parameters == reference.parameters, result.state == reference.state, result.losses == reference.losses)
                #expect(same == (true, true, true), "\(ranks) ranks, rank \(r)")
            }
        }
        // A sample rate so small that steps are empty: the noise alone, on every rank alike.
        var sparse = c
        sparse.batchSize = 1
        let alone = try Self.run(sparse, on: dataset, steps: 6, group: nil)
        let shared = try Self.runJob(sparse, on: dataset, steps: 6, ranks: 3)
        #expect(shared.allSatisfy { $0.parameters == alone.parameters && $0.state == alone.state })
    }

    @Test("more ranks than shards: the ranks without a shard still take part, and the bits are one process's")
    func idleRanks() throws {
        let dataset = randomDataset(count: 40, featureCount: 6, classCount: 3, seed: 2)
        var c = TrainingConfiguration()
        (c.sizes, c.batchSize, c.shardSize, c.epochs, c.seed) = ([6, 9, 3], 20, 8, 1, 3)
        let reference = try Self.run(c, on: dataset, steps: 2, group: nil)
        let results = try Self.runJob(c, on: dataset, steps: 2, ranks: 7)
        #expect(results.allSatisfy { $0.parameters == reference.parameters && $0.losses == reference.losses })
    }

    @Test("a request of any rank reaches every rank after the same step")
    func requests() throws {
        let dataset = randomDataset(count: 40, featureCount: 6, classCount: 3, seed: 2)
        var c = TrainingConfiguration()
        (c.sizes, c.batchSize, c.shardSize, c.epochs) = ([6, 9, 3], 20, 8, 1)
        let configured = c
        let agreed = try ThreadJob.run(ranks: 3) { rank in
            let trainer = try Trainer(configuration: configured, dataset: dataset, group: rank)
            let first = try trainer.step(requests: rank.rank == 2 ? .stop : []).agreed
            let second = try trainer.step(requests: rank.rank == 0 ? .save : []).agreed
            return [first, second]
        }
        #expect(agreed.allSatisfy { $0 == [.stop, .save] })
    }

    @Test("ranks deal shards and parameters in contiguous blocks that cover everything once")
    func plan() {
        let plan = ShardPlan(ranks: 3)
        #expect((0..<3).map { plan.part($0, of: 5) } == [0..<1, 1..<3, 3..<5])
        #expect(plan.counts(of: 2) == [0, 1, 1])
        #expect(plan.counts(of: 235_146).reduce(0, +) == 235_146)
    }
}
