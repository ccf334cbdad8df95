// Benchmarks of the reference workload (MLP 784-256-128-10, ReLU, softmax
// cross-entropy, SGD momentum 0.9, batch 256, fp32): the training step and
// its GEMM ceiling per worker count, each of the 8 GEMMs of a shard, one
// dense layer's forward and backward, the optimizer update; and of
// checkpointing.
// Targets (issue 4): a checkpoint write ≤ 20 ms median; resume start-up to
// the first step ≤ 0.3 s. Thresholds: Benchmarks/Thresholds/.
@_spi(Benchmarks) import BackpropCore
import BackpropHDF5
import Benchmark
import Foundation

/// The reference configuration on `workers` workers.
func referenceConfiguration(workers: Int) -> TrainingConfiguration {
    var configuration = TrainingConfiguration()
    configuration.workers = workers
    configuration.epochs = 1_000_000
    return configuration
}

/// A scratch directory for files the benchmarks write.
let scratch: String = {
    let path = NSTemporaryDirectory() + "backprop-benchmarks-\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}()

let benchmarks: @Sendable () -> Void = {
    BLAS.useSingleThread()
    let dataset = Dataset.random(count: 10_240, featureCount: 784, classCount: 10, seed: 1)
    let timing = Benchmark.Configuration(metrics: [.wallClock, .mallocCountTotal, .peakMemoryResident],
                                         warmupIterations: 3, maxDuration: .seconds(5), maxIterations: 200)

    // One optimizer step of the reference model: sharded gradient, ordered
    // reduction, momentum update. The trainer lives across iterations, so
    // the counts are the steady state (the step-loss log grows by doubling).
    for workers in [1, 2] {
        let trainer = try! Trainer(configuration: referenceConfiguration(workers: workers), dataset: dataset)
        Benchmark("training step, batch 256, \(workers) worker\(workers == 1 ? "" : "s")",
                  configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], warmupIterations: 10,
                                       maxDuration: .seconds(5), maxIterations: 2_000)) { benchmark in
            for _ in benchmark.scaledIterations { try trainer.step() }
        }
        // The same step's matrix products alone: the ceiling `backprop bench` compares with.
        let ceiling = GemmCeiling(network: trainer.network, batchSize: 256, shardSize: 128, workerCount: workers)
        Benchmark("GEMM ceiling, 8 training GEMMs, batch 256, \(workers) worker\(workers == 1 ? "" : "s")",
                  configuration: .init(metrics: [.wallClock, .throughput], warmupIterations: 10,
                                       maxDuration: .seconds(5), maxIterations: 2_000)) { benchmark in
            for _ in benchmark.scaledIterations { blackHole(ceiling.samplesPerSecond(steps: 1)) }
        }
    }

    // Kernels alone: time only (their buffers are set up inside the
    // closure, so a malloc count would count the set-up).
    let kernel = Benchmark.Configuration(metrics: [.wallClock, .throughput], warmupIterations: 10,
                                         maxDuration: .seconds(2), maxIterations: 5_000)

    // The 8 training GEMMs of one shard of 128, one at a time, through the
    // BLAS call training makes (row-major, one thread). Names stay ASCII:
    // they become the threshold files' names.
    let sizes = [784, 256, 128, 10], rows = 128
    let products: [(name: String, transposeA: Transpose, transposeB: Transpose, m: Int, n: Int, k: Int)] =
        (0..<3).map { l in ("forward Z.Wt", .none, .transposed, rows, sizes[l + 1], sizes[l]) }
        + (0..<3).reversed().map { l in ("weight gradient deltat.Z", .transposed, .none, sizes[l + 1], sizes[l], rows) }
        + (1..<3).reversed().map { l in ("backpropagated delta.W", .none, .none, rows, sizes[l], sizes[l + 1]) }
    for p in products {
        Benchmark("GEMM \(p.name), \(p.m)x\(p.k) by \(p.k)x\(p.n)", configuration: kernel) { benchmark in
            var generator = SeededGenerator(seed: 3)
            let a = (0..<(p.m * p.k)).map { _ in Float(generator.nextNormal()) }
            let b = (0..<(p.k * p.n)).map { _ in Float(generator.nextNormal()) }
            var c = [Float](repeating: 0, count: p.m * p.n)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                Float.blasGemm(p.transposeA, p.transposeB, m: p.m, n: p.n, k: p.k, alpha: 1,
                               a: a, lda: p.transposeA == .none ? p.k : p.m, b: b, ldb: p.transposeB == .none ? p.n : p.k,
                               beta: 0, c: &c, ldc: p.n)
            }
            benchmark.stopMeasurement()
            blackHole(c)
        }
    }

    // One dense layer alone, on a shard of 128: forward (Z·Wᵀ, bias, ReLU)
    // and backward (δᵀ·Z, bias sums, δ·W and the ReLU mask for the layer below).
    for (input, output) in [(784, 256), (256, 128)] {
        let layer = Dense(inputCount: input, outputCount: output, activation: .relu, weightOffset: 0)
        var generator = SeededGenerator(seed: 5)
        let z = (0..<(rows * input)).map { _ in max(0, Float(generator.nextNormal())) }
        let delta = (0..<(rows * output)).map { _ in Float(generator.nextNormal()) * 0.01 }
        let parameters = (0..<layer.parameterCount).map { _ in Float(generator.nextNormal()) * 0.05 }
        Benchmark("dense forward \(input)-\(output) ReLU, shard 128", configuration: kernel) { benchmark in
            var a = [Float](repeating: 0, count: rows * output)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                layer.forward(z, rows: rows, parameters: parameters, into: &a, activate: true, kernel: .blas)
            }
            benchmark.stopMeasurement()
            blackHole(a)
        }
        Benchmark("dense backward \(input)-\(output), delta to a ReLU layer below, shard 128", configuration: kernel) { benchmark in
            // Training adds each shard's products into a slot the reduction
            // has zeroed; here they add up over the iterations, which does
            // not change the time.
            var gradient = [Float](repeating: 0, count: layer.parameterCount)
            var below = [Float](repeating: 0, count: rows * input)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                layer.backward(delta: delta, input: z, rows: rows, parameters: parameters, gradient: &gradient,
                               inputDelta: &below, inputActivation: .relu, kernel: .blas)
            }
            benchmark.stopMeasurement()
            blackHole(gradient)
            blackHole(below)
        }
    }

    Benchmark("optimizer update, momentum, 235,146 parameters", configuration: timing) { benchmark in
        var optimizer = OptimizerSettings(kind: .momentum, learningRate: 0.05, momentum: 0.9)
            .makeOptimizer(parameterCount: 235_146, scalar: Float.self)
        var parameters = [Float](repeating: 0.5, count: 235_146)
        let gradient = [Float](repeating: 0.001, count: 235_146)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { optimizer.update(&parameters, along: gradient) }
        benchmark.stopMeasurement()
        blackHole(parameters)
    }

    // The checkpoint of the reference model after some training: weights,
    // momentum buffers, the 60,000-sample order, a step log, fsync and rename.
    Benchmark("checkpoint write, reference model + momentum", configuration: timing) { benchmark in
        let trainer = try Trainer(configuration: referenceConfiguration(workers: 2), dataset: Dataset.random(count: 60_000, featureCount: 784, classCount: 10, seed: 1))
        for _ in 0..<10 { try trainer.step() }
        let checkpoint = Checkpoint(of: trainer, dataPath: "synthetic.h5", dataFingerprint: "benchmark")
        let path = "\(scratch)/checkpoint.h5"
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { try checkpoint.save(to: path) }
        benchmark.stopMeasurement()
    }

    // Everything `train --resume` does before its first step on the full
    // Fashion-MNIST shape: read and validate the checkpoint, read the dataset,
    // fingerprint it, build the trainer and restore its state.
    Benchmark("resume start-up, 60,000 samples", configuration: timing) { benchmark in
        let train = Dataset.random(count: 60_000, featureCount: 784, classCount: 10, seed: 1)
        let dataPath = "\(scratch)/data.h5"
        try DatasetFile.write(train: train, test: Dataset.random(count: 10_000, featureCount: 784, classCount: 10, seed: 1), attributes: [:], to: dataPath)
        let trainer = try Trainer(configuration: referenceConfiguration(workers: 2), dataset: train)
        for _ in 0..<10 { try trainer.step() }
        let checkpointPath = "\(scratch)/resume.h5"
        try Checkpoint(of: trainer, dataPath: dataPath, dataFingerprint: train.fingerprint).save(to: checkpointPath)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let checkpoint = try Checkpoint.load(from: checkpointPath)
            let (data, _) = try DatasetFile.load(checkpoint.dataPath)
            precondition(data.fingerprint == checkpoint.dataFingerprint)
            let resumed = try Trainer(configuration: checkpoint.configuration, dataset: data, network: checkpoint.network)
            resumed.restore(position: checkpoint.position, optimizerState: checkpoint.optimizerState,
                            order: checkpoint.order, history: checkpoint.history)
            blackHole(resumed)
        }
        benchmark.stopMeasurement()
    }
}
