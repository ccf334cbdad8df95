// Benchmarks of the reference workload (MLP 784-256-128-10, ReLU, softmax
// cross-entropy, SGD momentum 0.9, batch 256, fp32): the training step and
// its products-only ceiling (own kernel and OpenBLAS) per worker count, each
// of the 8 training products per kernel path and on OpenBLAS, the optimizer
// update; and of checkpointing.
// Targets (issue 4): a checkpoint write ≤ 20 ms median; resume start-up to
// the first step ≤ 0.3 s. Thresholds: Benchmarks/Thresholds/.
import BackpropCore
import BackpropHDF5
import BackpropOpenBLAS
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

    // One optimizer step of the reference model: forward, backward with the
    // gradient summed shard by shard, momentum update. The trainer lives
    // across iterations, so the counts are the steady state (the step-loss
    // log grows by doubling).
    for workers in [1, 2] {
        let trainer = try! Trainer(configuration: referenceConfiguration(workers: workers), dataset: dataset)
        Benchmark("training step, batch 256, \(workers) worker\(workers == 1 ? "" : "s")",
                  configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], warmupIterations: 10,
                                       maxDuration: .seconds(5), maxIterations: 2_000)) { benchmark in
            for _ in benchmark.scaledIterations { try trainer.step() }
        }
        // The same step's matrix products alone, on the kernel and on
        // OpenBLAS: the ceilings `backprop bench` compares with.
        for engine in [GemmCeiling.Engine.own(.best), .openBLAS] {
            let ceiling = GemmCeiling(network: trainer.network, batchSize: 256, shardSize: 128, workerCount: workers,
                                      engine: engine)
            Benchmark("GEMM ceiling \(engine.name), batch 256, \(workers) worker\(workers == 1 ? "" : "s")",
                      configuration: .init(metrics: [.wallClock, .throughput], warmupIterations: 10,
                                           maxDuration: .seconds(5), maxIterations: 2_000)) { benchmark in
                for _ in benchmark.scaledIterations { blackHole(ceiling.samplesPerSecond(steps: 1)) }
            }
        }
    }

    // The 8 training products of one shard of 128, one at a time, one
    // thread, on every engine products are timed on. Names stay ASCII: they
    // become the threshold files' names.
    let kernel = Benchmark.Configuration(metrics: [.wallClock, .throughput], warmupIterations: 10,
                                         maxDuration: .seconds(2), maxIterations: 5_000)
    let engines = GemmCeiling.Engine.timed
    let timer = ProductTimer(sizes: [784, 256, 128, 10], rows: 128)
    for product in timer.products {
        let name = product.name.replacingOccurrences(of: "ᵀ", with: "t").replacingOccurrences(of: "·", with: ".")
            .replacingOccurrences(of: "δ", with: "delta").replacingOccurrences(of: "×", with: "x")
        for engine in engines {
            Benchmark("product \(name), \(engine.name)", configuration: kernel) { benchmark in
                var timer = timer
                for _ in benchmark.scaledIterations { timer.run(product, on: engine) }
            }
        }
    }

    Benchmark("optimizer update, momentum, 235,146 parameters", configuration: timing) { benchmark in
        var optimizer = OptimizerSettings(kind: .momentum, momentum: 0.9)
            .makeOptimizer(parameterCount: 235_146, scalar: Float.self)
        var parameters = [Float](repeating: 0.5, count: 235_146)
        let gradient = [Float](repeating: 0.001, count: 235_146)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { optimizer.update(&parameters, along: gradient, learningRate: 0.05) }
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
