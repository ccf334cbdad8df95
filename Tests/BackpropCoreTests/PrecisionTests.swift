import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// `--precision bf16` in the step (issue 55): the products' operands rounded
/// to bf16 where they are packed and nowhere else, and the same bits on
/// every worker count and kernel path (the hardware instruction and both
/// emulations).
struct PrecisionTests {
    /// A 3-4-2 network of sum-of-squares with every weight a multiple of ½
    /// (bf16 holds them), its biases 0, and the step of `precision` on it.
    static func halvesNetwork() throws -> Network<Float> {
        var network = try Network<Float>(sizes: [3, 4, 2], activations: [.relu, .identity], loss: .sumOfSquares)
        for (i, _) in network.parameters.enumerated() { network.parameters[i] = Float(i * 7 % 5 - 2) / 2 }
        for layer in network.layers { for b in layer.biasRange { network.parameters[b] = 0 } }
        return network
    }

    static func gradient(_ network: Network<Float>, inputs: [Float], targets: [Float], precision: Precision, kernel: Kernel) -> [UInt32] {
        let rows = inputs.count / 3
        let dataset = Dataset(name: "halves", features: .floats(inputs), targets: .values(targets, width: 2), featureCount: 3)
        let step = TrainingStep(network: network, batchSize: rows, shardSize: 2, workerCount: 1, kernel: kernel, precision: precision)
        return lossAndGradient(of: step, at: network, on: dataset).gradient.map(\.bitPattern)
    }

    @Test("rounding enters at the products' operands only: where bf16 holds every operand and fp32 every sum, bf16 gives fp32's gradient bit for bit; an input bf16 cannot hold acts as its bf16 value")
    func roundingAtTheOperands() throws {
        let network = try Self.halvesNetwork()
        // Small whole inputs and targets: every z, δ and sum is a multiple of ¼ well inside bf16's 8 bits.
        let inputs: [Float] = [1, -2, 2, 0, 1, -1, 2, 2, -2, -1, 0, 1, 1, 1, 1]
        let targets: [Float] = [1, -1, 0, 2, -2, 1, 3, 0, 1, 1]
        for kernel in Kernel.allCases where kernel.isAvailable {
            let fp32 = Self.gradient(network, inputs: inputs, targets: targets, precision: .fp32, kernel: kernel)
            #expect(Self.gradient(network, inputs: inputs, targets: targets, precision: .bf16, kernel: kernel) == fp32, "\(kernel)")
            // 1 + 2⁻¹⁰ rounds to 1 in bf16 (7 stored bits): the bf16 step sees 1, the fp32 one does not.
            var nudged = inputs
            nudged[0] = 1 + 0x1p-10
            let bf16Nudged = Self.gradient(network, inputs: nudged, targets: targets, precision: .bf16, kernel: kernel)
            #expect(bf16Nudged == fp32, "\(kernel)")
            #expect(Self.gradient(network, inputs: nudged, targets: targets, precision: .fp32, kernel: kernel) != fp32, "\(kernel)")
        }
    }

    /// Steps of a bf16 or fp32 run: the last gradient and the parameters.
    func run(precision: Precision, workers: Int, kernel: Kernel, optimizer: OptimizerKind, steps: Int = 5) throws -> (gradient: [UInt32], parameters: [UInt32]) {
        // Widths that cross the task blocks and the tiles, odd shards (a chain's last pair padded), a short last batch.
        let dataset = randomDataset(count: 170, featureCount: 70, classCount: 5, seed: 4)
        var c = TrainingConfiguration()
        (c.sizes, c.batchSize, c.shardSize, c.workers, c.seed, c.precision) = ([70, 100, 40, 5], 75, 15, workers, 3, precision)
        c.optimizer = OptimizerSettings(kind: optimizer)
        let trainer = try Trainer(configuration: c, dataset: dataset, kernel: kernel)
        trainer.recordsGradient = true
        for _ in 0..<steps { try trainer.step() }
        return (trainer.lastGradient.map(\.bitPattern), trainer.network.parameters.map(\.bitPattern))
    }

    @Test("a bf16 run's gradient and parameters are bit-identical for 1, 2, 3 and 5 workers on every kernel path (VDPBF16PS, AVX-512 and AVX2 FMAs, element by element), and differ from fp32's",
          arguments: [OptimizerKind.momentum, .adam])
    func workersAndPaths(optimizer: OptimizerKind) throws {
        let reference = try run(precision: .bf16, workers: 1, kernel: .portable, optimizer: optimizer)
        for kernel in Kernel.allCases where kernel.isAvailable {
            for workers in [1, 2, 3, 5] {
                let r = try run(precision: .bf16, workers: workers, kernel: kernel, optimizer: optimizer)
                #expect(r.gradient == reference.gradient && r.parameters == reference.parameters, "\(kernel), \(workers) workers")
            }
        }
        let fp32 = try run(precision: .fp32, workers: 2, kernel: .automatic, optimizer: optimizer)
        #expect(fp32.parameters != reference.parameters)
        // Close, though, at the same parameters (the first step): bf16 keeps 8 significant bits of each operand (here 2.8 % of the norm, where a random-label gradient cancels).
        let first = try (run(precision: .fp32, workers: 1, kernel: .automatic, optimizer: optimizer, steps: 1),
                         run(precision: .bf16, workers: 1, kernel: .automatic, optimizer: optimizer, steps: 1))
        let (a, b) = (first.0.gradient.map(Float.init(bitPattern:)), first.1.gradient.map(Float.init(bitPattern:)))
        let norm = a.reduce(0) { $0 + $1 * $1 }.squareRoot(), difference = zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        #expect(difference < 0.05 * norm && difference > 0, "‖g_bf16 − g_fp32‖ = \(difference), ‖g_fp32‖ = \(norm)")
    }

    @Test("bf16 on the AVX-512 path without AVX512_BF16, and on AVX2 and portable paths, says it is emulated; fp32 says fp32")
    func summaries() {
        #expect(Products(kernel: .portable, precision: .fp32).summary == "fp32")
        #expect(Products(kernel: .portable, precision: .bf16).summary == "bf16 emulated element by element")
        #expect(Products(kernel: .avx2, precision: .bf16).emulatesBF16)
        #expect(!Products(kernel: .avx2, precision: .fp32).emulatesBF16)
        #expect(Products(kernel: .avx512, precision: .bf16).emulatesBF16 == !Precision.hasBF16Hardware)
    }
}
