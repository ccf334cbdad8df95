import BackpropCore
import BackpropHDF5
import BackpropIO
import BackpropTestSupport
import Foundation
import Testing

/// Resume parity: n steps straight through equal k steps, a checkpoint
/// written to disk and read back into a new trainer, then n − k steps —
/// parameters, optimizer state, data order and every logged loss, bit for bit.
struct ResumeTests {
    let directory = temporaryDirectory("resume")
    /// 30 samples in batches of 8: epochs of 4 steps (8, 8, 8, 6); images of 1×5 for augmentation.
    let dataset = {
        var dataset = randomDataset(count: 30, featureCount: 5, classCount: 3, seed: 11)
        dataset.imageShape = ImageShape(height: 1, width: 5)
        // A teacher's probabilities, which the distilled cases train on.
        dataset.teacher = TeacherColumn((0..<30).flatMap { n -> [Float] in
            let e = (0..<3).map { k in Float(1 + (n * 7 + k * 3) % 5) }
            return e.map { $0 / e.reduce(0, +) }
        })
        return dataset
    }()

    struct Case: Sendable, CustomTestStringConvertible {
        let optimizer: OptimizerKind
        let schedule: LearningRateSchedule.Shape
        /// Steps before the stop; 4 is an epoch boundary.
        let stopAfter: Int
        let workersBefore: Int
        let workersAfter: Int
        /// With dropout, input dropout, label smoothing and augmentation.
        var regularized = false
        /// An EMA of this decay of the parameters.
        var ema: Double? = nil
        /// SWA from the end of this epoch on.
        var swaStart: Int? = nil
        /// Distillation from the dataset's teacher, (α, T).
        var distillation: (Double, Double)? = nil
        var testDescription: String {
            "\(optimizer.rawValue), \(schedule.name), stop after \(stopAfter), workers \(workersBefore) → \(workersAfter)"
                + (regularized ? ", dropout, label smoothing and augmentation" : "")
                + (ema.map { ", EMA \($0)" } ?? "") + (swaStart.map { ", SWA from epoch \($0)" } ?? "")
                + (distillation.map { ", distilled (α \($0.0), T \($0.1))" } ?? "")
        }
    }

    static let cases = [
        Case(optimizer: .momentum, schedule: .constant, stopAfter: 2, workersBefore: 1, workersAfter: 1),
        Case(optimizer: .momentum, schedule: .stepDecay(stepSize: 3, gamma: 0.5), stopAfter: 4, workersBefore: 2, workersAfter: 2),
        Case(optimizer: .adam, schedule: .cosine(warmupSteps: 2, totalSteps: 11, minimum: 0.001), stopAfter: 6, workersBefore: 1, workersAfter: 3),
        Case(optimizer: .nesterov, schedule: .constant, stopAfter: 8, workersBefore: 3, workersAfter: 1),
        Case(optimizer: .adamw, schedule: .constant, stopAfter: 1, workersBefore: 2, workersAfter: 8),
        Case(optimizer: .rmsprop, schedule: .constant, stopAfter: 5, workersBefore: 2, workersAfter: 3),
        Case(optimizer: .adagrad, schedule: .stepDecay(stepSize: 3, gamma: 0.5), stopAfter: 3, workersBefore: 1, workersAfter: 2),
        Case(optimizer: .adamw, schedule: .constant, stopAfter: 6, workersBefore: 1, workersAfter: 3, regularized: true),
        Case(optimizer: .momentum, schedule: .constant, stopAfter: 4, workersBefore: 2, workersAfter: 1, regularized: true),
        Case(optimizer: .adam, schedule: .constant, stopAfter: 5, workersBefore: 1, workersAfter: 2, ema: 0.8),
        Case(optimizer: .momentum, schedule: .constant, stopAfter: 6, workersBefore: 2, workersAfter: 3, swaStart: 2),
        Case(optimizer: .momentum, schedule: .constant, stopAfter: 9, workersBefore: 3, workersAfter: 1, swaStart: 2),
        Case(optimizer: .adamw, schedule: .constant, stopAfter: 6, workersBefore: 1, workersAfter: 3, regularized: true, distillation: (0.8, 3)),
        Case(optimizer: .momentum, schedule: .constant, stopAfter: 3, workersBefore: 2, workersAfter: 1, ema: 0.9, distillation: (1, 1)),
    ]

    func configuration(_ c: Case, workers: Int) -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.sizes = [5, 7, 3]
        configuration.batchSize = 8
        configuration.shardSize = 3
        configuration.epochs = 4
        configuration.workers = workers
        configuration.schedule.shape = c.schedule
        configuration.optimizer = OptimizerSettings(kind: c.optimizer, momentum: 0.9, weightDecay: 0.01)
        // RMSprop with every buffer (momentum and centring), Adagrad with its decay and a starting accumulator.
        (configuration.optimizer.centered, configuration.optimizer.alpha) = (true, 0.95)
        (configuration.optimizer.learningRateDecay, configuration.optimizer.initialAccumulator) = (0.1, 0.01)
        if c.regularized {
            configuration.dropout = Dropout(input: 0.2, hidden: [0.4])
            (configuration.augmentation, configuration.labelSmoothing) = (Augmentation(shift: 1, flip: true), 0.1)
        }
        (configuration.ema, configuration.swaStart) = (c.ema, c.swaStart)
        (configuration.distillAlpha, configuration.temperature) = (c.distillation?.0, c.distillation?.1)
        return configuration
    }

    @Test("resume is bit-identical to a run straight through", arguments: cases)
    func parity(_ c: Case) throws {
        let steps = 11
        let straight = try Trainer(configuration: configuration(c, workers: c.workersBefore), dataset: dataset)
        var losses: [Double] = []
        for _ in 0..<steps { losses.append(try straight.step().meanLoss) }

        let first = try Trainer(configuration: configuration(c, workers: c.workersBefore), dataset: dataset)
        for _ in 0..<c.stopAfter { try first.step() }
        let file = "\(directory)/stop.h5"
        try Checkpoint(of: first, dataPath: "data.h5", dataFingerprint: dataset.fingerprint).save(to: file)

        let saved = try Checkpoint.load(from: file)
        #expect(saved.configuration == first.configuration && saved.dataFingerprint == dataset.fingerprint)
        let resumed = try Trainer(configuration: configuration(c, workers: c.workersAfter), dataset: dataset, network: saved.trainedNetwork)
        resumed.restore(position: saved.position, optimizerState: saved.optimizerState, order: saved.order, history: saved.history,
                        average: saved.average)
        // The file's model is what the run evaluates: the average, once there is one.
        #expect(saved.network.parameters.map(\.bitPattern) == first.evaluatedNetwork.parameters.map(\.bitPattern))
        #expect(resumed.learningRate == first.learningRate)
        for _ in c.stopAfter..<steps { try resumed.step() }

        #expect(resumed.network.parameters.map(\.bitPattern) == straight.network.parameters.map(\.bitPattern))
        #expect(resumed.optimizer.state == straight.optimizer.state)
        #expect(resumed.average == straight.average)
        #expect(resumed.evaluatedNetwork.parameters.map(\.bitPattern) == straight.evaluatedNetwork.parameters.map(\.bitPattern))
        #expect(resumed.position == straight.position && resumed.order == straight.order)
        // Every step's loss, through the digest; the epoch under way's, as they are.
        #expect(resumed.history.stepLossDigest == straight.history.stepLossDigest)
        #expect(straight.history.stepLossDigest == losses.reduce(History.emptyDigest, History.digest))
        #expect(resumed.history.stepLosses.map(\.bitPattern) == straight.history.stepLosses.map(\.bitPattern))
        #expect(straight.history.stepLosses == Array(losses.suffix(steps % straight.epochs.batchesPerEpoch)))
        // The next epoch's shuffle (the RNG stream) agrees too.
        #expect(resumed.epochs.order(epoch: 5) == straight.epochs.order(epoch: 5))
    }

    @Test("a mid-epoch resume does not replay: the order and position come from the file")
    func noReplay() throws {
        let c = Self.cases[0]
        let trainer = try Trainer(configuration: configuration(c, workers: 1), dataset: dataset)
        for _ in 0..<2 { try trainer.step() }
        let file = "\(directory)/mid.h5"
        try Checkpoint(of: trainer, dataPath: "data.h5", dataFingerprint: dataset.fingerprint).save(to: file)
        let saved = try Checkpoint.load(from: file)
        #expect(saved.position == TrainingPosition(epoch: 0, batch: 2, step: 2))
        #expect(saved.order == trainer.order && saved.order != (0..<30).map { Int32($0) })
        #expect(saved.history == trainer.history)
    }

    @Test("a run directory keeps the newest N, links last.h5 and best.h5, and skips broken files")
    func runDirectory() throws {
        let run = RunDirectory("\(directory)/run")
        let trainer = try Trainer(configuration: configuration(Self.cases[0], workers: 1), dataset: dataset)
        var written: [String] = []
        for step in 1...5 {
            try trainer.step()
            let checkpoint = Checkpoint(of: trainer, dataPath: "data.h5", dataFingerprint: dataset.fingerprint)
            written.append(try run.save(checkpoint, isBest: step == 2, keep: 2))
        }
        #expect(run.checkpoints().map(\.path) == [written[4], written[3]])
        #expect(try Checkpoint.load(from: run.lastPath).position.step == 5)
        #expect(try Checkpoint.load(from: run.bestPath).position.step == 2)

        // Truncate the newest: resume falls back to the one before, with a warning naming it.
        let handle = try #require(FileHandle(forUpdatingAtPath: written[4]))
        try handle.truncate(atOffset: 1000)
        try handle.close()
        var warnings: [String] = []
        let (checkpoint, path) = try run.newestValidCheckpoint { warnings.append($0) }
        #expect(path == written[3] && checkpoint.position.step == 4)
        #expect(warnings.count == 1 && warnings[0].contains(written[4]))

        #expect(throws: StorageError.missingFile(path: "\(directory)/nowhere")) {
            try RunDirectory("\(directory)/nowhere").newestValidCheckpoint { _ in }
        }
    }
}
