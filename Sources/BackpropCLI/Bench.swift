import ArgumentParser
import BackpropCore
import BackpropHDF5
import BackpropOpenBLAS
import Foundation

/// `backprop bench`: the throughput of the training step, where its time
/// goes, and how close it comes to the GEMM-only ceiling measured in the
/// same run, for one or more worker counts.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure training-step throughput against the GEMM-only ceiling, per worker count.",
        discussion: """
        Each repetition times --steps-per-repetition optimizer steps and then the same steps' matrix products \
        alone (the ceiling), for every worker count in turn, so that all see the same machine \
        state; the fraction of the ceiling and the speed-up are medians of per-repetition \
        ratios. The default \
        is the reference workload at a constant learning rate: \(Bench.workload.summary), fp32, on synthetic \
        data of Fashion-MNIST's shape (--data for a real dataset). Throughput does not depend on the \
        learning rate; a small one keeps a run on random labels finite.
        """)

    /// η of every measured step.
    static let learningRate = 0.01

    /// The reference workload as bench runs it: a fresh run's settings, at `learningRate`.
    static var workload: TrainingConfiguration {
        var configuration = fresh
        configuration.schedule = LearningRateSchedule(base: learningRate)
        return configuration
    }

    @OptionGroup(title: "Model") var model: ModelOptions
    @OptionGroup(title: "Optimizer") var optimizerOptions: OptimizerOptions
    @OptionGroup(title: "Batches") var batch: BatchOptions
    @Option(help: "Worker counts to measure, e.g. 1,2,4 (default: 1 and the active cores).")
    var workers: WorkerCounts?
    @Option(help: "An HDF5 dataset to train on (default: 60,000 synthetic samples of the input width).")
    var data: String?
    @Option(help: "Optimizer steps in each timed repetition.")
    var stepsPerRepetition = 40
    @Option(help: "Timed repetitions (the median is reported).")
    var repetitions = 7
    @Option(help: "Untimed warm-up steps before the repetitions.")
    var warmup = 10
    @OptionGroup var kernel: KernelOptions
    @Option(help: "The products' operands to measure, side by side: fp32, bf16 or fp32,bf16 (a row each per worker count).")
    var precision = Precisions(precisions: [.fp32])
    @OptionGroup(title: "Streaming (with --data)") var streaming: StreamOptions
    @Option(name: Settings["shuffleBlocks"].name, help: "With a streamed --data: the rows of each shuffled block (default: 1024).")
    var shuffleBlocks: Int?
    @Flag(inversion: .prefixedNo, help: "Also time each training product alone, one thread, on every kernel path and OpenBLAS.")
    var products = true
    @Flag(help: "Also time DP-SGD steps (clip 1, noise 1, Poisson sampling) beside the plain ones, per worker count.")
    var dp = false
    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    func validate() throws {
        try refuseOutOfDomain(in: self)
        for workers in workers?.counts ?? [1] {
            try Settings.namingFlags { try trainingConfiguration(workers: workers).validate() }
        }
        try optimizerOptions.checkOwners(of: baseConfiguration)
        _ = try Settings.namingFlags { try baseConfiguration.makeNetwork(Float.self) }
    }

    /// 60,000 random samples for `layers`; their features are a square
    /// image (28x28 for 784) when their count is a square, so that --augment
    /// can be measured without a dataset.
    static func syntheticData(layers: [Int]) -> Dataset {
        var dataset = Dataset.random(count: 60_000, featureCount: layers[0], classCount: layers.last!, seed: 1)
        let side = Int(Double(layers[0]).squareRoot().rounded())
        if side * side == layers[0] { dataset.imageShape = ImageShape(height: side, width: side) }
        return dataset
    }

    func run() throws {
        let job = Job.start()
        try job.run { try run(in: job) }
    }

    /// The measurements of one process, or of a job under mpirun (`JobBench`).
    private func run(in job: Job) throws {
        let kernel = try self.kernel.resolved()
        let (layers, batchSize, shardSize, optimizer) = (baseConfiguration.sizes, baseConfiguration.batchSize,
                                                         baseConfiguration.shardSize, baseConfiguration.optimizer.kind)
        let dataset: any RowSource = try data.map { path in
            try guardedRead(path) { () throws -> any RowSource in
                let file = try HDF5File.open(path)
                return try DatasetFile.training(of: file, streaming: streaming.streams(featureBytes: try DatasetFile.featureBytes(of: "train", in: file)))
            }
        }
            ?? Bench.syntheticData(layers: layers)
        if job.size > 1 { return try JobBench(bench: self, job: job).run(dataset: dataset, kernel: kernel) }
        let cores = WorkerOptions.defaultCount
        let counts = workers?.counts ?? Array(Set([1, cores])).sorted()
        var report = BenchReport(cpu: Bench.cpuName(), kernel: kernel.rawValue, blasCore: BLAS.coreName, blas: BLAS.configuration,
                                 layers: layers, batchSize: batchSize, shardSize: shardSize,
                                 optimizer: optimizer.rawValue, data: data ?? "synthetic",
                                 flopsPerSample: 0, results: [], products: [], peakResidentMiB: 0)
        if !json {
            print("CPU: \(report.cpu), \(cores) active cores; kernel \(kernel.summary); "
                  + "yardstick OpenBLAS core \(report.blasCore), 1 thread per worker")
            warnIfGenericBLAS()
            print("model \(layers.map(String.init).joined(separator: "-")), batch \(batchSize), shard \(shardSize), "
                  + "\(optimizer.rawValue), \(report.data) data; \(repetitions) × \(stepsPerRepetition) steps after \(warmup) warm-up")
        }
        // Every worker count is set up and warmed first, then measured round
        // robin, so that each repetition sees all of them (and their ceilings)
        // within seconds: the ratios are taken per repetition, where the
        // machine's state is shared, and their medians reported.
        let subjects = try precision.precisions.flatMap { precision in
            try counts.map { try Subject(workers: $0, precision: precision, kernel: kernel, bench: self, dataset: dataset) }
        }
        let private_ = dp ? try counts.map { try PrivateSubject(workers: $0, kernel: kernel, bench: self, dataset: dataset) } : []
        for _ in 0..<repetitions {
            for subject in subjects { try subject.repeatOnce(steps: stepsPerRepetition) }
            for subject in private_ { try subject.repeatOnce(steps: stepsPerRepetition) }
        }
        report.privateSteps = zip(subjects, private_).map { plain, dp in
            PrivateRow(workers: dp.workers, samplesPerSecond: median(dp.rates),
                       stepTimeRatio: median(zip(plain.rates, dp.rates).map { $0 / $1 }))
        }
        for subject in subjects {
            let baseline = subjects.first { $0.workers == 1 && $0.precision == subject.precision }
            let fp32 = subject.precision == .fp32 ? nil : subjects.first { $0.workers == subject.workers && $0.precision == .fp32 }
            report.flopsPerSample = subject.trainer.network.flopsPerSample
            report.results.append(subject.row(steps: stepsPerRepetition, baseline: baseline, fp32: fp32))
            if !json { print(report.results.last!.phaseLine) }
        }
        // The cost of starting and synchronising the workers alone, per worker count.
        report.synchronization = counts.map { SynchronizationCost.measure(workers: $0) }
        if !json {
            for cost in report.synchronization {
                print(String(format: "%2ld worker%@: beyond its tasks of %.0f µs, a step on the team takes %.1f µs, a phase boundary %.1f µs "
                             + "(a concurrentPerform region, as a step once began: %.1f µs)", SynchronizationCost.taskMicroseconds,
                             cost.workers, cost.workers == 1 ? " " : "s", cost.teamStepMicroseconds,
                             cost.phaseBoundaryMicroseconds, cost.regionMicroseconds))
            }
        }
        if products {
            report.products = timeProducts()
            if !json { print(report.productTable) }
        }
        if !json {
            for row in report.privateSteps {
                print(String(format: "DP-SGD (clip 1, σ 1, Poisson), %ld worker%@: %@ samples/s, a step %.2f× a plain step's time",
                             row.workers, row.workers == 1 ? "" : "s", grouped(row.samplesPerSecond), row.stepTimeRatio))
            }
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

    /// The measured workload: a fresh run's settings edited by the model,
    /// optimizer and batch flags, with no end, at `Bench.learningRate`.
    var baseConfiguration: TrainingConfiguration {
        var edits = SettingEdits()
        let groups: [any ConfigurationOptions] = [model, optimizerOptions, batch]
        for group in groups { edits.add(group) }
        var configuration = TrainingConfiguration()
        configuration.schedule = LearningRateSchedule(base: Bench.learningRate)
        configuration = edits.applied(to: configuration)
        configuration.epochs = Int.max / 2
        // A streamed dataset is read in blocks: shuffled in them, as train would.
        if streaming.stream || streaming.dataMemory != nil || shuffleBlocks != nil { configuration.blockShuffle.rows = shuffleBlocks ?? 1024 }
        return configuration
    }

    /// The measured workload on `workers` workers.
    func trainingConfiguration(workers: Int) -> TrainingConfiguration {
        var configuration = baseConfiguration
        configuration.workers = workers
        return configuration
    }

    /// Every training product of the model at one shard's rows, alone on
    /// one thread: median GFLOP/s on each available path and on OpenBLAS,
    /// the engines alternating within each repetition.
    private func timeProducts() -> [ProductRow] {
        let configuration = baseConfiguration
        var timer = ProductTimer(sizes: configuration.sizes, rows: min(configuration.shardSize, configuration.batchSize))
        let engines = GemmCeiling.Engine.timed
        return timer.products.map { product in
            // About 2 ms per timing.
            let calls = max(1, 2_000_000 / max(product.flops / 50, 1))
            var samples = Array(repeating: [Double](), count: engines.count)
            for _ in 0..<repetitions {
                for (e, engine) in engines.enumerated() {
                    samples[e].append(timer.seconds(product, on: engine, calls: calls, repetitions: 1))
                }
            }
            let gflops = samples.map { Double(product.flops) / median($0) * 1e-9 }
            return ProductRow(name: product.name, gflops: Dictionary(uniqueKeysWithValues: zip(engines.map(\.name), gflops)))
        }
    }

    /// One worker count's DP-SGD steps (clip 1, σ 1, Poisson sampling at the
    /// same expected batch): samples per second of each repetition.
    private final class PrivateSubject {
        let workers: Int
        let trainer: Trainer
        var rates: [Double] = []

        init(workers: Int, kernel: Kernel, bench: Bench, dataset: any RowSource) throws {
            self.workers = workers
            var configuration = bench.trainingConfiguration(workers: workers)
            configuration.privacy = DifferentialPrivacy(clip: 1, noise: 1, delta: 1e-5)
            configuration.sampling = .poisson
            trainer = try Trainer(configuration: configuration, dataset: dataset, kernel: kernel)
            for _ in 0..<bench.warmup { try trainer.step() }
        }

        func repeatOnce(steps: Int) throws {
            let start = ContinuousClock.now
            var samples = 0
            for _ in 0..<steps { samples += try trainer.step().sampleCount }
            rates.append(Double(samples) / ((ContinuousClock.now - start) / .seconds(1)))
        }
    }

    /// One worker count under measurement: its trainer, its GEMM ceiling
    /// (and OpenBLAS's, for the same products), and the samples per second
    /// of each repetition.
    private final class Subject {
        let workers: Int
        let precision: Precision
        let trainer: Trainer
        let ceiling: GemmCeiling
        let blasCeiling: GemmCeiling
        var rates: [Double] = [], ceilings: [Double] = [], blasCeilings: [Double] = []
        var wall = 0.0
        /// The trainer's time waited for a stream before the timed steps.
        var waitBefore = 0.0

        init(workers: Int, precision: Precision, kernel: Kernel, bench: Bench, dataset: any RowSource) throws {
            (self.workers, self.precision) = (workers, precision)
            var configuration = bench.trainingConfiguration(workers: workers)
            configuration.precision = precision
            trainer = try Trainer(configuration: configuration, dataset: dataset, kernel: kernel)
            // No batch is larger than the data (the trainer's are not either).
            let batchSize = min(configuration.batchSize, dataset.count)
            ceiling = GemmCeiling(network: trainer.network, batchSize: batchSize, shardSize: configuration.shardSize,
                                  workerCount: workers, engine: .own(kernel), precision: precision)
            blasCeiling = GemmCeiling(network: trainer.network, batchSize: batchSize, shardSize: configuration.shardSize,
                                      workerCount: workers, engine: .openBLAS)
            for _ in 0..<bench.warmup { try trainer.step() }
            _ = ceiling.samplesPerSecond(steps: max(bench.warmup, 1))
            _ = blasCeiling.samplesPerSecond(steps: max(bench.warmup, 1))
            trainer.resetPhaseTimes()
            waitBefore = trainer.dataWaitSeconds
        }

        /// Times `steps` optimizer steps, then the same steps' matrix products alone.
        func repeatOnce(steps: Int) throws {
            let start = ContinuousClock.now
            var samples = 0
            for _ in 0..<steps { samples += try trainer.step().sampleCount }
            let seconds = (ContinuousClock.now - start) / .seconds(1)
            wall += seconds
            rates.append(Double(samples) / seconds)
            ceilings.append(ceiling.samplesPerSecond(steps: steps))
            blasCeilings.append(blasCeiling.samplesPerSecond(steps: steps))
        }

        /// The medians; the fraction of the ceiling, the speed-up over
        /// `baseline` (1 worker) and the speed over `fp32` (the same workers at
        /// fp32) are medians of per-repetition ratios.
        func row(steps: Int, baseline: Subject?, fp32: Subject?) -> BenchRow {
            let measuredSteps = Double(steps * rates.count)
            let phases = trainer.phaseTimes
            let speedUps = baseline.map { base in zip(rates, base.rates).map { $0 / $1 } } ?? [1]
            return BenchRow(
                workers: workers, precision: precision.rawValue, overFP32: fp32.map { median(zip(rates, $0.rates).map { $0 / $1 }) },
                median: median(rates), min: rates.min()!, max: rates.max()!,
                gflops: median(rates) * Double(trainer.network.flopsPerSample) * 1e-9, ceiling: median(ceilings),
                openBLASCeiling: median(blasCeilings),
                fractionOfCeiling: median(zip(rates, ceilings).map { $0 / $1 }), speedUp: median(speedUps),
                repetitions: rates, ceilings: ceilings,
                stepMilliseconds: 1000 * wall / measuredSteps,
                idleMicroseconds: phases.workerBusy.map { 1e6 * max(0, wall - $0) / measuredSteps },
                phaseMilliseconds: [
                    "conversion": 1000 * phases.conversion / Double(workers) / measuredSteps,
                    "forward": 1000 * phases.forward / Double(workers) / measuredSteps,
                    "backward": 1000 * phases.backward / Double(workers) / measuredSteps,
                    "update": 1000 * phases.update / Double(workers) / measuredSteps,
                ].merging(trainer.waitsForData ? ["data wait": 1000 * (trainer.dataWaitSeconds - waitBefore) / measuredSteps] : [:]) { a, _ in a })
        }
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

/// A comma-separated list of precisions, e.g. "fp32,bf16"; an unknown one is refused by name.
struct Precisions: ExpressibleByArgument {
    let precisions: [Precision]

    init(precisions: [Precision]) { self.precisions = precisions }

    init?(argument: String) {
        let precisions = argument.split(separator: ",", omittingEmptySubsequences: false)
            .map { Precision(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
        guard !precisions.isEmpty, precisions.allSatisfy({ $0 != nil }) else { return nil }
        var distinct: [Precision] = []
        for precision in precisions.compactMap({ $0 }) where !distinct.contains(precision) { distinct.append(precision) }
        self.precisions = distinct
    }

    var defaultValueDescription: String { precisions.map(\.rawValue).joined(separator: ",") }
}

/// The middle value (the mean of the two middle ones for an even count).
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

extension Bench: OptionDomains {
    static let domains: [String: SettingDomain] = ["stepsPerRepetition": .atLeast(1), "repetitions": .atLeast(1), "warmup": .atLeast(0)]
}
