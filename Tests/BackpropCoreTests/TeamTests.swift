@testable import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// The team that keeps a step's workers awake: every task once, every step,
/// and the same bits when the region gets fewer threads than workers.
struct TeamTests {
    /// Counts each task's runs, by the worker that owns a slot while it runs it.
    struct Count: TeamJob {
        let runs: SharedPointer<Int>
        let workers: SharedPointer<Int>
        func run(worker: Int, task: Int) {
            runs.base[task] += 1  // task t is claimed once, so its slot has one writer
            workers.base[task] = worker
        }
    }

    @Test("a team runs every task of every step exactly once, for 3,000 steps of 1 to 40 tasks, its region full, starved or absent",
          arguments: [(1, nil), (2, nil), (4, nil), (8, nil), (4, 0), (8, 1), (16, 3)] as [(Int, Int?)])
    func everyTaskOnce(workers: Int, regionThreads: Int?) {
        let team = Team(workers: workers, regionThreads: regionThreads)
        let capacity = 40
        let runs = UnsafeMutableBufferPointer<Int>.allocate(capacity: capacity)
        let owners = UnsafeMutableBufferPointer<Int>.allocate(capacity: capacity)
        defer { runs.deallocate(); owners.deallocate() }
        var generator = SeededGenerator(seed: 3)
        var seenWorkers = Set<Int>()
        for step in 0..<3000 {
            let tasks = 1 + Int(generator.next() % UInt64(capacity))
            runs.initialize(repeating: 0)
            owners.initialize(repeating: -1)
            team.run(tasks: tasks, Count(runs: SharedPointer(base: runs.baseAddress!), workers: SharedPointer(base: owners.baseAddress!)))
            let counts = Array(runs.prefix(tasks)), rest = Array(runs.dropFirst(tasks))
            if counts.contains(where: { $0 != 1 }) || rest.contains(where: { $0 != 0 }) {
                Issue.record("step \(step): runs per task \(counts), beyond the step \(rest)")
                return
            }
            seenWorkers.formUnion(owners.prefix(tasks))
        }
        let present = 1 + min(workers - 1, regionThreads ?? workers)
        #expect(seenWorkers.isSubset(of: Set(0..<present)), "workers \(seenWorkers.sorted()) beyond the \(present) present")
    }

    @Test("a team whose workers have gone to sleep wakes them for the next step, and ends while they sleep")
    func sleepsAndWakes() {
        let runs = UnsafeMutableBufferPointer<Int>.allocate(capacity: 64)
        let owners = UnsafeMutableBufferPointer<Int>.allocate(capacity: 64)
        defer { runs.deallocate(); owners.deallocate() }
        do {
            let team = Team(workers: 3)
            for _ in 0..<5 {
                runs.initialize(repeating: 0)
                team.run(tasks: 64, Count(runs: SharedPointer(base: runs.baseAddress!), workers: SharedPointer(base: owners.baseAddress!)))
                #expect(runs.allSatisfy { $0 == 1 })
                // Past the spin: the workers sleep in the kernel until the next step.
                Thread.sleep(forTimeInterval: 3 * Double(Team.spinNanoseconds) * 1e-9)
            }
        }  // deinit ends the region, waking the sleepers
    }

    @Test("steps on a team whose region gets fewer threads than workers (none, one, three of fifteen) give the bits of a full one",
          arguments: [(4, 0), (4, 1), (16, 3), (16, nil), (2, nil)] as [(Int, Int?)])
    func starvedRegionSameBits(workers: Int, regionThreads: Int?) throws {
        let dataset = randomDataset(count: 96, featureCount: 70, classCount: 5, seed: 2)
        var network = try Network<Float>(sizes: [70, 300, 40, 5], loss: .crossEntropy)
        var generator = SeededGenerator(seed: 6)
        network.initialize(.pytorch, generator: &generator)
        /// Five momentum steps on batches of 96 rows: the losses and the parameters' bits.
        func run(workers: Int, regionThreads: Int?) -> (losses: [UInt32], parameters: [UInt32]) {
            let step = TrainingStep(network: network, batchSize: 96, shardSize: 16, workerCount: workers, kernel: .automatic,
                                    labelSmoothing: 0, distillation: nil, regularization: KeyedRegularization(),
                                    regionThreads: regionThreads)
            var optimizer = SGD<Float>(settings: OptimizerSettings(kind: .momentum), parameterCount: network.parameterCount)
            var parameters = network.parameters
            var losses: [UInt32] = []
            let indices = (0..<Int32(96)).reversed().map { $0 }
            indices.withUnsafeBufferPointer { batch in
                for _ in 0..<5 {
                    parameters.withUnsafeMutableBufferPointer { w in
                        optimizer.withStep(learningRate: 0.05) { rule in
                            losses.append(step.step(data: Batch(dataset), indices: batch, scale: 1 / 96, rule: rule,
                                                    parameters: w.baseAddress!).bitPattern)
                        }
                    }
                }
            }
            return (losses, parameters.map(\.bitPattern))
        }
        let reference = run(workers: 1, regionThreads: nil)
        let got = run(workers: workers, regionThreads: regionThreads)
        #expect(got.losses == reference.losses)
        #expect(got.parameters == reference.parameters)
        #expect(reference.parameters != network.parameters.map(\.bitPattern))
    }
}
