import ArgumentParser
import BackpropCore
import BackpropHDF5
import Foundation

/// `backprop bench`: the throughput of the training step, where its time
/// goes, and how close it comes to the GEMM-only ceiling measured in the
/// same run, for one or more worker counts.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure training-step throughput against the GEMM-only ceiling, per worker count.",
        discussion: """
        Each repetition times --steps optimizer steps and then the same steps' matrix products \
        alone (the ceiling), side by side, so that both see the same machine state. The default \
        is the reference workload: 784-256-128-10, ReLU, softmax cross-entropy, SGD momentum 0.9, \
        fp32, batch 256, on synthetic data of Fashion-MNIST's shape (--data for a real dataset).
        """)

    @Option(help: "Layer widths from input to output.")
    var layers = LayerSizes(argument: "784,256,128,10")!
    @Option(help: "Samples per mini-batch.")
    var batchSize = 256
    @Option(help: "Samples per shard.")
    var shardSize = 128
    @Option(help: "Optimizer: sgd, momentum, nesterov, adam, adamw.")
    var optimizer: OptimizerKind = .momentum
    @Option(help: "Worker counts to measure, e.g. 1,2,4 (default: 1 and the active cores).")
    var workers: WorkerCounts?
    @Option(help: "An HDF5 dataset to train on (default: 60,000 synthetic samples of the input width).")
    var data: String?
    @Option(help: "Optimizer steps per repetition.")
    var steps = 40
    @Option(help: "Timed repetitions (the median is reported).")
    var repetitions = 7
    @Option(help: "Untimed warm-up steps before the repetitions.")
    var warmup = 10
    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    func validate() throws {
        for (flag, value) in [("--batch-size", batchSize), ("--shard-size", shardSize), ("--steps", steps), ("--repetitions", repetitions)]
        where value < 1 {
            throw ValidationError("\(flag) \(value) is invalid: it must be at least 1.")
        }
        if warmup < 0 { throw ValidationError("--warmup \(warmup) is invalid: it must be 0 or more.") }
    }

    func run() throws {
        Backprop.setUp()
        let dataset = try data.map { path in try guardedRead(path) { try DatasetFile.load(path).train } }
            ?? Dataset.random(count: 60_000, featureCount: layers.sizes[0], classCount: layers.sizes.last!, seed: 1)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let counts = workers?.counts ?? Array(Set([1, cores])).sorted()
        var report = BenchReport(cpu: Bench.cpuName(), blasCore: BLAS.coreName, blas: BLAS.configuration,
                                 layers: layers.sizes, batchSize: batchSize, shardSize: shardSize,
                                 optimizer: optimizer.rawValue, data: data ?? "synthetic",
                                 flopsPerSample: 0, results: [], peakResidentMiB: 0)
        if !json {
            print("CPU: \(report.cpu), \(cores) active cores; BLAS: OpenBLAS core \(report.blasCore), 1 thread per worker")
            warnIfGenericBLAS()
            print("model \(layers.sizes.map(String.init).joined(separator: "-")), batch \(batchSize), shard \(shardSize), "
                  + "\(optimizer.rawValue), \(report.data) data; \(repetitions) × \(steps) steps after \(warmup) warm-up")
        }
        for count in counts {
            let result = try measure(workers: count, dataset: dataset)
            report.flopsPerSample = result.flopsPerSample
            report.results.append(result.row)
            if !json { print(result.row.phaseLine) }
        }
        if let base = report.results.first(where: { $0.workers == 1 }) {
            for i in report.results.indices { report.results[i].speedUp = report.results[i].median / base.median }
        }
        report.peakResidentMiB = Bench.peakResidentMiB()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.table)
        }
    }

    /// Times training steps and the GEMM ceiling, interleaved, on `workers` workers.
    private func measure(workers: Int, dataset: Dataset) throws -> (row: BenchRow, flopsPerSample: Int) {
        var configuration = TrainingConfiguration()
        configuration.sizes = layers.sizes
        configuration.batchSize = batchSize
        configuration.shardSize = shardSize
        configuration.workers = workers
        configuration.epochs = Int.max / 2
        configuration.optimizer = OptimizerSettings(kind: optimizer, learningRate: 0.01, momentum: 0.9)
        let trainer = try Trainer(configuration: configuration, dataset: dataset)
        let ceiling = GemmCeiling(network: trainer.network, batchSize: batchSize, shardSize: shardSize, workerCount: workers)
        for _ in 0..<warmup { try trainer.step() }
        _ = ceiling.samplesPerSecond(steps: max(warmup, 1))

        var rates: [Double] = [], ceilings: [Double] = []
        trainer.resetPhaseTimes()
        var wall = 0.0
        for _ in 0..<repetitions {
            let start = ContinuousClock.now
            for _ in 0..<steps { try trainer.step() }
            let seconds = (ContinuousClock.now - start) / .seconds(1)
            wall += seconds
            rates.append(Double(steps * batchSize) / seconds)
            ceilings.append(ceiling.samplesPerSecond(steps: steps))
        }
        let flops = trainer.network.flopsPerSample
        let measuredSteps = Double(steps * repetitions)
        let phases = trainer.phaseTimes
        let row = BenchRow(
            workers: workers, median: median(rates), min: rates.min()!, max: rates.max()!,
            gflops: median(rates) * Double(flops) * 1e-9, ceiling: median(ceilings),
            fractionOfCeiling: median(rates) / median(ceilings), speedUp: 1,
            stepMilliseconds: 1000 * wall / measuredSteps,
            phaseMilliseconds: [
                "conversion": 1000 * phases.conversion / Double(workers) / measuredSteps,
                "forward": 1000 * phases.forward / Double(workers) / measuredSteps,
                "backward": 1000 * phases.backward / Double(workers) / measuredSteps,
                "reduction+update": 1000 * phases.update / measuredSteps,
            ])
        return (row, flops)
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// The CPU's model name from /proc/cpuinfo.
    static func cpuName() -> String {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("model name") }
        return line.flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    }

    /// The process's peak resident set (getrusage ru_maxrss), in MiB.
    static func peakResidentMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}

/// A comma-separated list of worker counts, e.g. "1,2,4,8".
struct WorkerCounts: ExpressibleByArgument {
    let counts: [Int]

    init?(argument: String) {
        let counts = argument.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.count == argument.split(separator: ",").count, counts.allSatisfy({ $0 > 0 }) else { return nil }
        self.counts = counts
    }
}

/// One worker count's measurements.
struct BenchRow: Codable {
    var workers: Int
    /// Samples per second over the repetitions.
    var median: Double
    var min: Double
    var max: Double
    var gflops: Double
    /// The GEMM-only ceiling's median samples per second.
    var ceiling: Double
    var fractionOfCeiling: Double
    /// median / the 1-worker median (1 when no 1-worker row was measured).
    var speedUp: Double
    var stepMilliseconds: Double
    /// Per step: conversion, forward, backward per worker; the fused reduction and update in wall time.
    var phaseMilliseconds: [String: Double]

    var phaseLine: String {
        let parts = ["conversion", "forward", "backward", "reduction+update"].map {
            String(format: "%@ %.3f", $0, phaseMilliseconds[$0] ?? 0)
        }
        let accounted = phaseMilliseconds.values.reduce(0, +)
        return String(format: "%2d worker%@: step %.3f ms = ", workers, workers == 1 ? " " : "s", stepMilliseconds)
            + parts.joined(separator: ", ") + String(format: ", other %.3f (ms per step)", stepMilliseconds - accounted)
    }
}

/// Everything `backprop bench` measured, as printed or as JSON.
struct BenchReport: Codable {
    var cpu: String
    var blasCore: String
    var blas: String
    var layers: [Int]
    var batchSize: Int
    var shardSize: Int
    var optimizer: String
    var data: String
    var flopsPerSample: Int
    var results: [BenchRow]
    var peakResidentMiB: Double

    var table: String {
        func pad(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        var lines = ["", "workers  samples/s  (min – max)           GFLOP/s  GEMM ceiling  of ceiling  speed-up"]
        for r in results {
            lines.append(pad("\(r.workers)", 7) + pad(grouped(r.median), 11) + "  (" + pad(grouped(r.min), 9) + " – "
                         + pad(grouped(r.max), 9) + ")" + String(format: "%9.1f", r.gflops) + pad(grouped(r.ceiling), 14)
                         + String(format: "%11.1f%%%9.2f×", 100 * r.fractionOfCeiling, r.speedUp))
        }
        lines.append(String(format: "%.2f MFLOP per sample; peak resident memory %.0f MiB", Double(flopsPerSample) / 1e6, peakResidentMiB))
        return lines.joined(separator: "\n")
    }
}
