@testable import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// Inverted dropout (Dropout.swift): z̃ = m z/(1 − p) up, δ through the same
/// mask down, masks keyed by (seed, step, sample, layer, unit).
struct DropoutTests {
    @Test("E[z̃] = z: over 400 steps × 1,000 units the kept fraction is 1 − p and the mean of z̃ is z, within 4σ",
          arguments: [0.1, 0.5, 0.8])
    func expectation(p: Double) {
        let masks = DropoutMasks<Float>(Dropout(input: p), layerCount: 2, seed: 3)!
        let units = 1000, steps = 400
        var kept = 0, sum = 0.0
        var row = [Float](repeating: 0, count: units)
        var sample: Int32 = 17
        for step in 0..<steps {
            row = row.map { _ in 2.5 }
            row.withUnsafeMutableBufferPointer { z in
                masks.apply(layer: 0, step: UInt64(step), to: z.baseAddress!, rows: 0..<1, columns: 0..<units, stride: units,
                            samples: &sample)
            }
            kept += row.filter { $0 != 0 }.count
            sum += row.reduce(0) { $0 + Double($1) }
        }
        let n = Double(units * steps), q = 1 - Dropout.effectiveRate(p)
        let σ = (q * (1 - q) / n).squareRoot()
        #expect(abs(Double(kept) / n - q) < 4 * σ, "kept \(Double(kept) / n), expected \(q)")
        #expect(abs(sum / n / 2.5 - 1) < 4 * σ / q, "mean z̃/z = \(sum / n / 2.5)")
        // A kept unit is z/(1 − p) exactly as rounded once to Float.
        #expect(Set(row.filter { $0 != 0 }) == [2.5 * Float(1 / q)])
    }

    @Test("p is rounded to a multiple of 2⁻¹⁶; a mask belongs to (step, sample, layer), whatever the row it sits in or the block it is applied in")
    func keyed() {
        #expect(Dropout.effectiveRate(0.5) == 0.5 && Dropout.effectiveRate(0.3) == 19661.0 / 65536)
        let masks = DropoutMasks<Float>(Dropout(input: 0.5, hidden: [0.5]), layerCount: 3, seed: 9)!
        let width = 70
        func masked(_ samples: [Int32], layer: Int = 0, step: UInt64 = 4, rows: Range<Int>? = nil, columns: Range<Int>? = nil) -> [Float] {
            var block = [Float](repeating: 1, count: samples.count * width)
            let rows = rows ?? 0..<samples.count, columns = columns ?? 0..<width
            block.withUnsafeMutableBufferPointer { z in
                samples.withUnsafeBufferPointer { s in
                    masks.apply(layer: layer, step: step, to: z.baseAddress! + rows.lowerBound * width, rows: rows, columns: columns,
                                stride: width, samples: s.baseAddress!)
                }
            }
            return block
        }
        let whole = masked([5, 8, 2, 8])
        // Sample 8's mask at rows 1 and 3, and at row 0 of another batch.
        #expect(whole[width..<(2 * width)] == whole[(3 * width)...] && Array(whole[width..<(2 * width)]) == masked([8]))
        #expect(whole[..<width] != whole[width..<(2 * width)])
        // Tiles of rows and columns (as the step's tasks apply it) give the same mask as one call.
        var tiled = [Float](repeating: 1, count: 4 * width)
        for rows in [0..<1, 1..<4] {
            for columns in [0..<13, 13..<64, 64..<70] {
                let part = masked([5, 8, 2, 8], rows: rows, columns: columns)
                for n in rows { for j in columns { tiled[n * width + j] = part[n * width + j] } }
            }
        }
        #expect(tiled == whole)
        // Another step or layer: another mask.
        #expect(masked([5]) != masked([5], step: 5) && masked([5]) != masked([5], layer: 1))
    }

    @Test("a training step's gradient with fixed masks equals central differences of its own E, in Double",
          arguments: [(Activation.relu, Dropout(hidden: [0.3])), (.leakyRelu, Dropout(input: 0.2, hidden: [0.2, 0.5])),
                      (.tanh, Dropout(input: 0.4)), (.identity, Dropout(hidden: [0.6]))])
    func centralDifferences(activation: Activation, dropout: Dropout) throws {
        let problem = try gradientCheckProblem(sizes: [5, 7, 6, 4], activation: activation, loss: .crossEntropy, rows: 6, seed: 4)
        let dataset = gradientCheckDataset(inputs: problem.inputs, targets: problem.targets, inputCount: 5, loss: .crossEntropy)
        let regularization = KeyedRegularization(seed: 2, dropout: dropout)
        for result in checkStepGradients(of: problem.network, dataset: dataset, regularization: regularization) {
            #expect(result.worstRelativeError < Tolerance.finiteDifference.value,
                    "layer \(result.layer) \(result.tensor): \(result.worstRelativeError)")
        }
        // The masks drop something: the step's E differs from the plain network's.
        let plain = problem.network.error(inputs: problem.inputs.map { Double(Float($0)) }, targets: problem.targets)
        let engine = TrainingStep(network: problem.network, batchSize: 6, shardSize: 2, workerCount: 1, kernel: .portable,
                                  regularization: regularization)
        var optimizer = OptimizerSettings(kind: .sgd).makeOptimizer(parameterCount: problem.network.parameterCount, scalar: Double.self)
        var w = problem.network.parameters
        let indices: [Int32] = Array(0..<6)
        let masked = indices.withUnsafeBufferPointer { batch in
            w.withUnsafeMutableBufferPointer { w in
                optimizer.withStep(learningRate: 0) { engine.step(data: Batch(dataset), indices: batch, scale: 1, rule: $0, parameters: w.baseAddress!,
                                                                  at: StepKey(step: 1)) }
            }
        }
        #expect(abs(masked - plain) > 1e-6, "E with dropout \(masked), without \(plain)")
    }

    @Test("one sample by hand: with input dropout ∂E/∂w_ji = δ_j z̃_i, 0 in the dropped columns and δ_j · 2 x_i in the kept (p = ½)")
    func handComputed() throws {
        var c = TrainingConfiguration()
        c.sizes = [8, 3]
        let network: Network<Float> = try c.makeNetwork()
        let x: [Float] = [0.5, -1, 0.25, 2, -0.75, 1.5, 0.125, -2]
        let dataset = Dataset(name: "one", features: .floats(x), targets: .classes([1]), featureCount: 8)
        func gradient(_ dropout: Dropout) -> [Float] {
            let step = TrainingStep(network: network, batchSize: 1, shardSize: 1, workerCount: 1, kernel: .portable,
                                    regularization: KeyedRegularization(seed: 1, dropout: dropout))
            step.recordsGradient = true
            var optimizer = OptimizerSettings(kind: .sgd).makeOptimizer(parameterCount: network.parameterCount, scalar: Float.self)
            var parameters = network.parameters
            _ = [Int32(0)].withUnsafeBufferPointer { batch in
                parameters.withUnsafeMutableBufferPointer { w in
                    optimizer.withStep(learningRate: 0) { step.step(data: Batch(dataset), indices: batch, scale: 1, rule: $0, parameters: w.baseAddress!,
                                                                    at: StepKey(step: 3)) }
                }
            }
            return step.gradient
        }
        let plain = gradient(Dropout()), dropped = gradient(Dropout(input: 0.5))
        let weights = network.layers[0].weightRange
        var droppedColumns = 0
        for i in 0..<8 {
            let column = (0..<3).map { dropped[weights.lowerBound + $0 * 8 + i] }
            let expected = (0..<3).map { 2 * plain[weights.lowerBound + $0 * 8 + i] }
            if column.allSatisfy({ $0 == 0 }) { droppedColumns += 1 } else { #expect(column == expected, "column \(i)") }
        }
        #expect(droppedColumns > 0 && droppedColumns < 8, "\(droppedColumns) of 8 inputs dropped")
    }

    @Test("with dropout, input dropout, label smoothing and augmentation the run is bit-identical for 1, 2, 3 and 8 workers on every kernel path")
    func workersAndKernels() throws {
        var dataset = randomDataset(count: 150, featureCount: 36, classCount: 4, seed: 21)
        dataset.imageShape = ImageShape(height: 6, width: 6)
        func run(workers: Int, kernel: Kernel, dropout: Dropout, augmentation: Augmentation) throws -> [UInt32] {
            var c = TrainingConfiguration()
            (c.sizes, c.batchSize, c.shardSize, c.workers, c.epochs, c.seed) = ([36, 70, 20, 4], 50, 8, workers, 2, 6)
            (c.dropout, c.augmentation, c.labelSmoothing) = (dropout, augmentation, 0.1)
            c.optimizer = OptimizerSettings(kind: .adam)
            let trainer = try Trainer(configuration: c, dataset: dataset, kernel: kernel)
            while !trainer.isFinished { try trainer.step() }
            return trainer.network.parameters.map(\.bitPattern)
        }
        let (dropout, augmentation) = (Dropout(input: 0.1, hidden: [0.3, 0.5]), Augmentation(shift: 1, flip: true))
        let reference = try run(workers: 1, kernel: .portable, dropout: dropout, augmentation: augmentation)
        for kernel in Kernel.allCases where kernel.isAvailable {
            for workers in [1, 2, 3, 8] {
                #expect(try run(workers: workers, kernel: kernel, dropout: dropout, augmentation: augmentation) == reference,
                        "\(kernel), \(workers) workers")
            }
        }
        // Each of them changes the run; rates of 0 and no augmentation are the plain run.
        let plain = try run(workers: 1, kernel: .portable, dropout: Dropout(), augmentation: Augmentation())
        #expect(try run(workers: 2, kernel: .portable, dropout: Dropout(input: 0, hidden: [0]), augmentation: Augmentation()) == plain)
        #expect(try run(workers: 1, kernel: .portable, dropout: dropout, augmentation: Augmentation()) != plain)
        #expect(try run(workers: 1, kernel: .portable, dropout: Dropout(), augmentation: augmentation) != plain)
    }

    @Test("refused by name: p outside [0, 1), NaN, ∞, a list of the wrong length, hidden dropout after tanh or without a hidden layer")
    func refusals() {
        /// The setting refused and why; nil when the configuration is valid.
        func refusal(_ edit: (inout TrainingConfiguration) -> Void) -> (setting: TrainingError.Setting, reason: String)? {
            var c = TrainingConfiguration()
            c.sizes = [4, 5, 6, 3]
            edit(&c)
            do { try c.validate() } catch {
                if case .invalidSetting(let setting, _, let reason) = error { return (setting, reason) }
                if case .outOfDomain(let setting, _, let domain) = error { return (setting, domain.description) }
                Issue.record("\(error)")
            }
            return nil
        }
        for p in [1, -0.1, .nan, .infinity, 1.5] {
            #expect(refusal { $0.dropout.hidden = [p] }?.setting == "dropout", "\(p)")
            #expect(refusal { $0.dropout.hidden = [0.1, p] }?.setting == "dropout", "\(p)")
            #expect(refusal { $0.dropout.input = p }?.setting == "inputDropout", "\(p)")
        }
        #expect(refusal { $0.dropout.hidden = [0.1, 0.2, 0.3] }?.reason.contains("one per hidden layer (2)") == true)
        #expect(refusal { $0.dropout.hidden = [0.1, 0.2] } == nil && refusal { $0.dropout.hidden = [0.5] } == nil)
        #expect(refusal { ($0.dropout.hidden, $0.hiddenActivation) = ([0.5], .tanh) }?.reason.contains("tanh") == true)
        #expect(refusal { ($0.dropout.input, $0.hiddenActivation) = (0.5, .tanh) } == nil)
        #expect(refusal { ($0.sizes, $0.dropout.hidden) = ([4, 3], [0.5]) }?.reason.contains("no hidden layer") == true)
        #expect(refusal { $0.augmentation = Augmentation(shift: -1) }?.setting == "augment")
    }
}
