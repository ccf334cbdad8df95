@testable import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// Global gradient-norm clipping (`--clip-norm`, `GradientNormClip`):
/// g ← g · min(1, C/‖g‖) before the update, with the same bits on any worker
/// count, kernel path and rank count.
struct GradientNormClipTests {
    /// DistributedTests' model (33,545 parameters: 9 chunks of 4,096, the last one short) with plain settings and the clip.
    func configuration(clip: Double?, optimizer: OptimizerKind = .sgd, workers: Int = 1) -> TrainingConfiguration {
        var c = DistributedTests().configuration(optimizer: optimizer, workers: workers)
        c.optimizer = OptimizerSettings(kind: optimizer)
        c.schedule.base = 0.1
        c.clipNorm = clip
        return c
    }

    let dataset = randomDataset(count: 147, featureCount: 70, classCount: 5, seed: 4)

    /// The first step's gradient g, unclipped, and the parameters before it.
    func firstGradient() throws -> (g: [Float], w: [Float]) {
        let trainer = try Trainer(configuration: configuration(clip: nil), dataset: dataset)
        let before = trainer.network.parameters
        trainer.recordsGradient = true
        try trainer.step()
        return (trainer.lastGradient, before)
    }

    @Test("a step with C below ‖g‖ moves plain SGD by η · g · C/‖g‖, hand-computed from the unclipped gradient, bit for bit; the clipped gradient has norm C")
    func handComputed() throws {
        let (g, w) = try firstGradient()
        let norm = g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let clip = norm / 3
        let trainer = try Trainer(configuration: configuration(clip: clip), dataset: dataset)
        trainer.recordsGradient = true
        try trainer.step()
        let factor = Float(clip / norm)
        // w ← w − η (g · f): SGD's rule with λ = 0, in Float as the rule computes it.
        let expected = zip(w, g).map { w, g in w - Float(0.1) * (g * factor + 0 * w) }
        #expect(trainer.network.parameters.map(\.bitPattern) == expected.map(\.bitPattern))
        #expect(trainer.lastGradient.map(\.bitPattern) == g.map { ($0 * factor).bitPattern })
        let clippedNorm = trainer.lastGradient.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        #expect(relativeError(clippedNorm, clip) < 1e-6)
    }

    @Test("a C above every step's ‖g‖ changes no bit of an Adam run: the same parameters, state and losses as no clip")
    func inactiveClipIsExact() throws {
        let steps = 5
        let plain = try DistributedTests.run(configuration(clip: nil, optimizer: .adam), on: dataset, steps: steps, group: nil)
        let clipped = try DistributedTests.run(configuration(clip: 1e30, optimizer: .adam), on: dataset, steps: steps, group: nil)
        #expect(clipped.parameters == plain.parameters && clipped.state == plain.state && clipped.losses == plain.losses)
    }

    @Test("clipped steps are bit-identical for 1, 2, 3 and 8 workers on every kernel path, and for 1–5 ranks (threads) × 1–2 workers",
          arguments: [OptimizerKind.momentum, .adam])
    func workersKernelsAndRanks(optimizer: OptimizerKind) throws {
        let (g, _) = try firstGradient()
        let clip = g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() / 4
        let steps = 5
        let reference = try DistributedTests.run(configuration(clip: clip, optimizer: optimizer), on: dataset, steps: steps, group: nil)
        let unclipped = try DistributedTests.run(configuration(clip: nil, optimizer: optimizer), on: dataset, steps: steps, group: nil)
        #expect(reference.parameters != unclipped.parameters, "the clip acted")
        for kernel in Kernel.allCases where kernel.isAvailable {
            for workers in [1, 2, 3, 8] {
                let trainer = try Trainer(configuration: configuration(clip: clip, optimizer: optimizer, workers: workers), dataset: dataset,
                                          kernel: kernel)
                var losses: [Double] = []
                for _ in 0..<steps { losses.append(try trainer.step().meanLoss) }
                #expect(trainer.network.parameters.map(\.bitPattern) == reference.parameters && losses == reference.losses,
                        "\(kernel), \(workers) workers")
            }
        }
        for ranks in 1...5 {
            for workers in [1, 2] {
                let c = configuration(clip: clip, optimizer: optimizer, workers: workers)
                for (r, result) in try DistributedTests.runJob(c, on: dataset, steps: steps, ranks: ranks).enumerated() {
                    let same = result.parameters == reference.parameters && result.state == reference.state
                    #expect(same && result.losses == reference.losses, "\(ranks) ranks × \(workers) workers, rank \(r)")
                }
            }
        }
    }

    @Test("a clip of 0, a negative one, NaN or ∞ is refused by name", arguments: [0, -1, Double.nan, .infinity])
    func refused(clip: Double) throws {
        do {
            _ = try Trainer(configuration: configuration(clip: clip), dataset: dataset)
            Issue.record("accepted --clip-norm \(clip)")
        } catch {
            guard case .outOfDomain("clipNorm", _, _) = error else { Issue.record("\(error)"); return }
        }
    }
}

/// The chunks' Σ g_i², eight chains side by side.
struct ChunkSquareTests {
    @Test("each chunk's Σ g_i², eight chunks a group side by side, has the bits of a loop over the chunk, for whole and partial groups and a short last chunk",
          arguments: [1, 4096, 4097, 8 * 4096, 8 * 4096 + 5, 11 * 4096 + 777, 17 * 4096])
    func groupsEqualLoops(count: Int) {
        var generator = SeededGenerator(seed: UInt64(count))
        let offset = 2 * GradientNormClip.chunkSize
        let g = (0..<(offset + count)).map { _ in Float(generator.nextNormal()) * 3 }
        let range = offset..<(offset + count)
        let got = g.withUnsafeBufferPointer { GradientNormClip.chunkSquares($0.baseAddress!, range: range, on: Team(workers: 3)) }
        let expected = stride(from: range.lowerBound, to: range.upperBound, by: GradientNormClip.chunkSize).map { first in
            var sum = 0.0
            for i in first..<min(first + GradientNormClip.chunkSize, range.upperBound) { sum += Double(g[i]) * Double(g[i]) }
            return sum
        }
        #expect(got.map(\.bitPattern) == expected.map(\.bitPattern))
    }
}
