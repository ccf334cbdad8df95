import ArgumentParser
import BackpropCore
import CGemm
import Foundation

/// `mpirun -np N backprop bench`: the job's samples per second at the
/// global batch, the time and bytes of its collectives per step, beside one
/// process with as many workers as the job has in all, at the same batch,
/// measured in the same run (the other ranks sleep while rank 0 measures
/// it alone), repetition by repetition.
struct JobBench {
    let bench: Bench
    let job: Job

    /// What rank 0 reports.
    struct Report: Codable {
        var cpu: String
        var ranks: Int
        var workersPerRank: Int
        var layers: [Int]
        var batchSize: Int
        var shardSize: Int
        /// The job's samples per second, median over repetitions.
        var jobSamplesPerSecond: Double
        /// One process with ranks × workersPerRank workers.
        var singleProcessSamplesPerSecond: Double
        /// The median of the per-repetition ratios job ÷ one process.
        var ratio: Double
        var stepMilliseconds: Double
        /// Seconds per step inside collectives (rank 0's view), in ms.
        var communicationMilliseconds: Double
        /// Bytes a rank hands the collectives per step for other ranks.
        var bytesPerStepPerRank: Int
        var collectivesPerStep: Int
        var repetitions: [Double]
        var singleProcessRepetitions: [Double]
    }

    /// The cores this process may run on (mpirun binds ranks to cores by default).
    static func usableCores() -> Int {
        let usable = Int(backprop_usable_cores())
        return usable > 0 ? usable : ProcessInfo.processInfo.activeProcessorCount
    }

    func run(dataset: any RowSource, kernel: Kernel) throws {
        guard let mpi = job.mpi else { return }
        let perRank = bench.workers?.counts.first ?? job.defaultWorkers
        func trainer(workers: Int, group: (any ProcessGroup)?) throws -> Trainer {
            try Trainer(configuration: bench.trainingConfiguration(workers: workers), dataset: dataset, kernel: kernel, group: group)
        }
        let shared = try trainer(workers: perRank, group: mpi)
        let alone = job.isWriter ? try trainer(workers: perRank * mpi.count, group: nil) : nil
        if job.isWriter && !bench.json {
            print("CPU: \(Bench.cpuName()); kernel \(kernel.summary)")
            let usable = Self.usableCores(), cores = ProcessInfo.processInfo.activeProcessorCount
            if usable < min(perRank * mpi.count, cores) {
                print("note: rank 0 may run on \(usable) of \(cores) cores, so the one-process figure is held back; "
                      + "start with mpirun --bind-to none for a fair one")
            }
            print("job of \(mpi.count) ranks × \(perRank) worker\(perRank == 1 ? "" : "s") beside 1 process × \(perRank * mpi.count) workers; "
                  + "model \(bench.baseConfiguration.sizes.map(String.init).joined(separator: "-")), global batch \(bench.baseConfiguration.batchSize), "
                  + "shard \(bench.baseConfiguration.shardSize), \(bench.baseConfiguration.optimizer.kind.rawValue); \(bench.repetitions) × \(bench.stepsPerRepetition) steps after \(bench.warmup) warm-up")
        }
        /// Samples per second over `steps` steps of `trainer`, and the seconds and bytes of its collectives.
        func timed(_ trainer: Trainer, steps: Int) throws -> (rate: Double, communication: Double, bytes: Int) {
            let start = ContinuousClock.now
            var samples = 0, communication = 0.0, bytes = 0
            for _ in 0..<steps {
                samples += try trainer.step().sampleCount
                communication += trainer.lastCommunication.seconds
                bytes += trainer.lastCommunication.bytes
            }
            return (Double(samples) / ((ContinuousClock.now - start) / .seconds(1)), communication, bytes)
        }
        // Warm-up, then repetitions alternating the job and the lone process.
        _ = try timed(shared, steps: bench.warmup)
        if let alone { _ = try timed(alone, steps: bench.warmup) }
        mpi.sleepingBarrier()
        var rates: [Double] = [], aloneRates: [Double] = [], communication = 0.0, bytes = 0
        for _ in 0..<bench.repetitions {
            let measured = try timed(shared, steps: bench.stepsPerRepetition)
            rates.append(measured.rate)
            communication += measured.communication
            bytes += measured.bytes
            if let alone { aloneRates.append(try timed(alone, steps: bench.stepsPerRepetition).rate) }
            mpi.sleepingBarrier()
        }
        guard job.isWriter else { return }
        let steps = Double(bench.stepsPerRepetition * bench.repetitions)
        let report = Report(
            cpu: Bench.cpuName(), ranks: mpi.count, workersPerRank: perRank, layers: bench.baseConfiguration.sizes,
            batchSize: bench.baseConfiguration.batchSize, shardSize: bench.baseConfiguration.shardSize,
            jobSamplesPerSecond: median(rates), singleProcessSamplesPerSecond: median(aloneRates),
            ratio: median(zip(rates, aloneRates).map { $0 / $1 }),
            stepMilliseconds: 1000 * Double(min(bench.baseConfiguration.batchSize, dataset.count)) / median(rates),
            communicationMilliseconds: 1000 * communication / steps, bytesPerStepPerRank: Int(Double(bytes) / steps),
            collectivesPerStep: 2, repetitions: rates, singleProcessRepetitions: aloneRates)
        if bench.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        func row(_ cells: [String]) -> String {
            zip(cells, [-24, 12, 9, 16, 17]).map { cell, width in
                let padding = String(repeating: " ", count: max(abs(width) - cell.count, 0))
                return width < 0 ? cell + padding : padding + cell
            }.joined(separator: " ")
        }
        let aloneStep = 1000 * Double(min(bench.baseConfiguration.batchSize, dataset.count)) / report.singleProcessSamplesPerSecond
        print(row(["", "samples/s", "step ms", "collectives ms", "bytes/step/rank"]))
        print(row(["\(mpi.count) ranks × \(perRank) worker\(perRank == 1 ? "" : "s")", grouped(report.jobSamplesPerSecond),
                   String(format: "%.2f", report.stepMilliseconds), String(format: "%.3f", report.communicationMilliseconds),
                   grouped(Double(report.bytesPerStepPerRank))]))
        print(row(["1 process × \(perRank * mpi.count) workers", grouped(report.singleProcessSamplesPerSecond),
                   String(format: "%.2f", aloneStep), "", ""]))
        print(String(format: "job ÷ one process: %.2f (median of per-repetition ratios); 2 collectives per step", report.ratio))
    }
}
