import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// Per-sample gradient norms from δ and z, clipping as one row-scaled
/// product, DP-SGD's keyed noise and Poisson sampling, and the gradient
/// noise scale (issue 15).
struct PerSampleTests {
    /// One step of `engine` with learning rate 0 (nothing moves): the norms, and the summed gradient.
    static func measure<T: NetworkScalar>(_ network: Network<T>, dataset: Dataset, rows: Int, options: PerSampleOptions,
                                          workers: Int = 1, shardSize: Int = 4) -> (norms: [T], gradient: [T]) {
        let engine = TrainingStep(network: network, batchSize: rows, shardSize: shardSize, workerCount: workers, kernel: .portable)
        engine.recordsGradient = true
        var optimizer = OptimizerSettings(kind: .sgd).makeOptimizer(parameterCount: network.parameterCount, scalar: T.self)
        var parameters = network.parameters
        let indices = (0..<Int32(rows)).map { $0 }
        _ = indices.withUnsafeBufferPointer { i in
            parameters.withUnsafeMutableBufferPointer { w in
                optimizer.withStep(learningRate: 0) { rule in
                    engine.step(data: Batch(dataset), indices: i, scale: 1, rule: rule, parameters: w.baseAddress!, perSample: options)
                }
            }
        }
        return (engine.lastSampleNorms, engine.gradient)
    }

    /// Each sample's gradient, materialised (the test-only path).
    static func explicitGradients<T: NetworkScalar>(_ network: Network<T>, dataset: Dataset, rows: Int) -> [[T]] {
        let (x, t) = dataset.arrays(outputCount: network.outputCount, as: T.self)
        let (f, k) = (network.inputCount, network.outputCount)
        return (0..<rows).map { n in
            network.gradient(inputs: Array(x[(n * f)..<((n + 1) * f)]), targets: Array(t[(n * k)..<((n + 1) * k)]), kernel: .portable).gradient
        }
    }

    static func network<T: NetworkScalar>(_ sizes: [Int], activation: Activation, loss: Loss, as _: T.Type) throws -> Network<T> {
        var network = try Network<T>(sizes: sizes, hiddenActivation: activation, loss: loss)
        var generator = SeededGenerator(seed: 3)
        network.initialize(.pytorch, generator: &generator)
        return network
    }

    @Test("norms from δ and z equal the norms of materialised per-sample gradients: Double 1e-12, Float 1e-5, every activation and both losses",
          arguments: Activation.allCases.filter(\.isElementwise), [Loss.crossEntropy, .sumOfSquares])
    func norms(activation: Activation, loss: Loss) throws {
        let dataset = loss == .crossEntropy ? randomDataset(count: 13, featureCount: 6, classCount: 3, seed: 1)
                                            : regressionDataset(count: 13, seed: 1)
        let sizes = [dataset.featureCount, 7, 5, loss == .crossEntropy ? 3 : 2]
        let double = try Self.network(sizes, activation: activation, loss: loss, as: Double.self)
        let expected = Self.explicitGradients(double, dataset: dataset, rows: 13).map { $0.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        let measured = Self.measure(double, dataset: dataset, rows: 13, options: PerSampleOptions()).norms
        for (m, e) in zip(measured, expected) { #expect(isClose(m, e, .doubleReordered), "\(activation), \(loss): \(m) vs \(e)") }
        let float = try Self.network(sizes, activation: activation, loss: loss, as: Float.self)
        let floatNorms = Self.measure(float, dataset: dataset, rows: 13, options: PerSampleOptions()).norms
        for (m, e) in zip(floatNorms, expected) { #expect(isClose(Double(m), e, .floatAgainstDouble), "\(activation), \(loss) in Float") }
    }

    @Test("the clipped sum equals Σ_n min(1, C/‖g_n‖) g_n formed explicitly (Double, 1e-12)")
    func clippedSum() throws {
        let dataset = randomDataset(count: 11, featureCount: 6, classCount: 3, seed: 2)
        let network = try Self.network([6, 9, 3], activation: .tanh, loss: .crossEntropy, as: Double.self)
        let gradients = Self.explicitGradients(network, dataset: dataset, rows: 11)
        let norms = gradients.map { $0.reduce(0) { $0 + $1 * $1 }.squareRoot() }
        let clip = norms.sorted()[5]  // about half the samples are clipped
        var expected = [Double](repeating: 0, count: network.parameterCount)
        for (g, norm) in zip(gradients, norms) {
            let c = min(1, clip / norm)
            for i in expected.indices { expected[i] += c * g[i] }
        }
        let measured = Self.measure(network, dataset: dataset, rows: 11, options: PerSampleOptions(clip: clip)).gradient
        // Relative to the largest element: a sum of clipped terms can cancel to near zero.
        let scale = expected.map(abs).max()!
        #expect(zip(measured, expected).allSatisfy { isClose($0 / scale, $1 / scale, .doubleReordered) })
    }

    @Test("C = ∞ and no noise: the per-sample step is the plain step, bit for bit, on 1, 2, 3 and 8 workers")
    func unclippedIsPlain() throws {
        let dataset = randomDataset(count: 150, featureCount: 70, classCount: 5, seed: 4)
        var c = TrainingConfiguration()
        (c.sizes, c.batchSize, c.shardSize, c.epochs, c.workers) = ([70, 300, 40, 5], 50, 16, 1, 1)
        func train(measuring: Bool, workers: Int) throws -> [UInt32] {
            c.workers = workers
            let trainer = try Trainer(configuration: c, dataset: dataset)
            trainer.measuresSampleNorms = measuring
            for _ in 0..<3 { try trainer.step() }
            return trainer.network.parameters.map(\.bitPattern)
        }
        let plain = try train(measuring: false, workers: 1)
        for workers in [1, 2, 3, 8] { #expect(try train(measuring: true, workers: workers) == plain, "\(workers) workers") }
    }

    static func dpConfiguration(workers: Int, sampling: Sampling = .poisson) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        (c.sizes, c.batchSize, c.shardSize, c.epochs, c.workers, c.seed) = ([70, 300, 40, 5], 40, 16, 2, workers, 7)
        c.sampling = sampling
        c.privacy = DifferentialPrivacy(clip: 0.5, noise: 1.1, delta: 1e-5)
        return c
    }

    @Test("DP-SGD (Poisson sampling, clipping, noise) is bit-identical for 1, 2, 3 and 8 workers, and across a resume")
    func dpInvariance() throws {
        let dataset = randomDataset(count: 200, featureCount: 70, classCount: 5, seed: 5)
        func run(workers: Int, steps: Int) throws -> Trainer {
            let trainer = try Trainer(configuration: Self.dpConfiguration(workers: workers), dataset: dataset)
            for _ in 0..<steps { try trainer.step() }
            return trainer
        }
        let reference = try run(workers: 1, steps: 8)
        for workers in [2, 3, 8] {
            let other = try run(workers: workers, steps: 8)
            let same = other.network.parameters.map(\.bitPattern) == reference.network.parameters.map(\.bitPattern)
            #expect(same && other.history.stepLossDigest == reference.history.stepLossDigest, "\(workers) workers")
        }
        // 3 steps, then a new trainer from the saved state, 5 more.
        let first = try run(workers: 2, steps: 3)
        let second = try Trainer(configuration: Self.dpConfiguration(workers: 3), dataset: dataset, network: first.network)
        second.restore(position: first.position, optimizerState: first.optimizer.state, order: first.order, history: first.history)
        for _ in 0..<5 { try second.step() }
        #expect(second.network.parameters.map(\.bitPattern) == reference.network.parameters.map(\.bitPattern))
        // The noise is there: without it the parameters differ.
        var quiet = Self.dpConfiguration(workers: 1)
        quiet.privacy?.noise = 0
        let noiseless = try Trainer(configuration: quiet, dataset: dataset)
        for _ in 0..<8 { try noiseless.step() }
        #expect(noiseless.network.parameters != reference.network.parameters)
    }

    @Test("Poisson samples: keyed by (seed, step), ascending, of mean size q·N, and sometimes empty at small q")
    func poisson() throws {
        let dataset = randomDataset(count: 1000, featureCount: 4, classCount: 2, seed: 6)
        var c = Self.dpConfiguration(workers: 1)
        (c.sizes, c.batchSize, c.epochs) = ([4, 3, 2], 50, 3)
        let trainer = try Trainer(configuration: c, dataset: dataset)
        var sizes: [Int] = []
        for _ in 0..<60 {
            let batch = trainer.batch()
            #expect(zip(batch, batch.dropFirst()).allSatisfy { $0 < $1 } && batch.allSatisfy { $0 >= 0 && $0 < 1000 })
            sizes.append(batch.count)
            #expect(try trainer.step().sampleCount == batch.count)
        }
        let mean = Double(sizes.reduce(0, +)) / 60
        #expect(abs(mean - 50) < 5, "mean batch \(mean)")  // sd of the mean ≈ 0.9
        #expect(Set(sizes).count > 10)
        // q = 1/1000: a step is empty with probability (1 − q)^1000 ≈ 0.37, and an empty step is still a (noise-only) step.
        c.batchSize = 1
        let sparse = try Trainer(configuration: c, dataset: dataset)
        let before = sparse.network.parameters
        var empty = 0
        for _ in 0..<40 where try sparse.step().sampleCount == 0 { empty += 1 }
        #expect(empty > 5 && empty < 30, "\(empty) empty")  // mean 14.7, sd 3.1
        #expect(sparse.network.parameters != before && sparse.position.step == 40)
    }

    @Test("the noise scale on linear regression with known noise is within 10 % of its analytic value")
    func noiseScale() throws {
        // y = w*·x + b* + ε, x ~ N(0, I_d), ε ~ N(0, s²); a linear model at (w0, b0) fixed (η = 0).
        let (d, s, count) = (10, 0.5, 20_000)
        var generator = SeededGenerator(seed: 11)
        let wStar = (0..<d).map { _ in generator.nextNormal() }
        var x: [Float] = [], y: [Float] = []
        for _ in 0..<count {
            let row = (0..<d).map { _ in generator.nextNormal() }
            x += row.map(Float.init)
            y.append(Float(zip(row, wStar).map(*).reduce(0, +) + 0.3 + s * generator.nextNormal()))
        }
        let dataset = Dataset(name: "linear", features: .floats(x), targets: .values(y, width: 1), featureCount: d)
        var c = TrainingConfiguration()
        (c.sizes, c.loss, c.batchSize, c.shardSize, c.epochs, c.workers) = ([d, 1], .sumOfSquares, 200, 64, 1, 2)
        c.optimizer = OptimizerSettings(kind: .sgd)
        c.schedule.base = 0
        let trainer = try Trainer(configuration: c, dataset: dataset)
        trainer.measuresNoiseScale = true
        while !trainer.isFinished { try trainer.step() }
        // Analytic: tr Σ = |Δ|²(d + 2) + (Δb² + s²) d + s², |G|² = |Δ|² + Δb², per-sample gradient (r x, r), r = Δ·x + Δb − ε.
        let w0 = trainer.network.parameters
        let Δ = (0..<d).map { Double(w0[$0]) - wStar[$0] }, Δb = Double(w0[d]) - 0.3
        let ΔΔ = Δ.map { $0 * $0 }.reduce(0, +)
        let analytic = (ΔΔ * Double(d + 2) + (Δb * Δb + s * s) * Double(d) + s * s) / (ΔΔ + Δb * Δb)
        let estimate = try #require(trainer.sampleStatistics.noiseScale)
        #expect(abs(estimate - analytic) < 0.1 * analytic, "estimate \(estimate), analytic \(analytic)")
    }
}

/// The keyed normal generator behind DP-SGD's noise: the standard normal
/// distribution, checked on a million draws (fixed keys: the test is exact, not flaky).
struct KeyedNormalTests {
    @Test("a million keyed normals: mean, variance, kurtosis, tail mass and the Kolmogorov–Smirnov distance to Φ")
    func distribution() {
        let n = 1_000_000
        var values = [Float](repeating: 0, count: n)
        KeyedRandom.addNormalNoise(to: &values, count: n, first: 0, standardDeviation: 1, seed: 42, step: 7)
        let x = values.map(Double.init)
        let mean = x.reduce(0, +) / Double(n)
        let variance = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
        let kurtosis = x.map { pow($0 - mean, 4) }.reduce(0, +) / Double(n) / (variance * variance)
        #expect(abs(mean) < 0.005)                 // sd of the mean: 0.001
        #expect(abs(variance - 1) < 0.006)         // sd: 0.0014
        #expect(abs(kurtosis - 3) < 0.03)          // sd: about 0.005
        // Beyond the ziggurat's r = 3.4426 (the tail path): 2Φ(−r) = 5.76e-4 of the draws.
        let tail = Double(x.filter { abs($0) > 3.442619855899 }.count) / Double(n)
        #expect(abs(tail - 5.76e-4) < 1.2e-4, "tail \(tail)")
        // Kolmogorov–Smirnov: sup |F_n − Φ| < 1.63/√n at the 1 % level.
        let sorted = x.sorted()
        var distance = 0.0
        for (i, value) in sorted.enumerated() where i % 97 == 0 {
            let phi = 0.5 * erfc(-value / 2.0.squareRoot())
            distance = max(distance, abs(Double(i + 1) / Double(n) - phi), abs(Double(i) / Double(n) - phi))
        }
        #expect(distance < 1.63 / Double(n).squareRoot(), "KS distance \(distance)")
    }

    @Test("the same key gives the same normals in any order and chunking; another step or seed, others")
    func keyed() {
        var whole = [Float](repeating: 0, count: 1000), parts = [Float](repeating: 0, count: 1000)
        KeyedRandom.addNormalNoise(to: &whole, count: 1000, first: 5000, standardDeviation: 2, seed: 1, step: 3)
        for start in stride(from: 0, to: 1000, by: 7).reversed() {
            let count = min(7, 1000 - start)
            parts.withUnsafeMutableBufferPointer {
                KeyedRandom.addNormalNoise(to: $0.baseAddress! + start, count: count, first: 5000 + start, standardDeviation: 2, seed: 1, step: 3)
            }
        }
        let same = whole == parts
        #expect(same)
        var other = [Float](repeating: 0, count: 1000)
        KeyedRandom.addNormalNoise(to: &other, count: 1000, first: 5000, standardDeviation: 2, seed: 1, step: 4)
        #expect(zip(other, whole).filter { $0 == $1 }.count < 5)
    }
}
