import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// The code of the DocC article "Training the reference model from Swift"
/// (Sources/BackpropCore/BackpropCore.docc/TrainingFromSwift.md), run on a
/// small dataset of the reference model's shape: if it stops compiling or
/// training, this test says so.
struct LibraryExampleTests {
    /// A dataset file of the reference model's shape in a fresh directory: `train` random samples, 128 test ones.
    func datasetFile(_ label: String, train: Int, seed: UInt64) throws -> (directory: String, path: String) {
        let directory = temporaryDirectory(label)
        let path = "\(directory)/fashion-mnist.h5"
        try DatasetFile.write(train: randomDataset(count: train, featureCount: 784, classCount: 10, seed: seed),
                              test: randomDataset(count: 128, featureCount: 784, classCount: 10, seed: seed + 1),
                              attributes: [:], to: path)
        return (directory, path)
    }

    @Test("the article's dozen lines train, evaluate and save a checkpoint that loads and matches the trainer")
    func articleExample() throws {
        let (directory, path) = try datasetFile("library-example", train: 512, seed: 1)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        // The article's code, with one epoch instead of ten.
        let (train, test) = try DatasetFile.load(path)
        var configuration = TrainingConfiguration()
        configuration.workers = ProcessInfo.processInfo.activeProcessorCount
        configuration.epochs = 1
        let trainer = try Trainer(configuration: configuration, dataset: train)
        while !trainer.isFinished {
            try trainer.step()
        }
        let result = try evaluate(trainer.network, on: test, workers: configuration.workers)
        print("\(result.task.scoreName): \(result.task.format(result.score))")
        try Checkpoint(model: trainer.evaluatedNetwork, configuration: configuration, task: train.task).save(to: "\(directory)/model.h5")
        try Checkpoint(of: trainer, dataPath: path, dataFingerprint: train.fingerprint).save(to: "\(directory)/last.h5")

        #expect(trainer.position.step == 2 && result.task == .classification && result.sampleCount == 128)
        let loaded = try Checkpoint.load(from: "\(directory)/last.h5")
        #expect(loaded.network.parameters.map(\.bitPattern) == trainer.network.parameters.map(\.bitPattern))
        #expect(loaded.dataFingerprint == train.fingerprint && loaded.position.step == 2 && !loaded.isModelOnly)
        // The model alone: the same parameters and model, no run.
        let model = try Checkpoint.load(from: "\(directory)/model.h5")
        #expect(model.network.parameters.map(\.bitPattern) == trainer.network.parameters.map(\.bitPattern))
        #expect(model.network.sizes == trainer.network.sizes && model.configuration == configuration && model.task == .classification)
        #expect(model.isModelOnly && model.position == TrainingPosition() && model.order.isEmpty)
        #expect(try evaluate(model.network, on: test, workers: 1).score == result.score)
    }

    /// The article's observer.
    final class PrintEpochs: TrainingObserver {
        var lines = 0
        func didEndEpoch(_ loop: TrainingLoop, _ epoch: EpochReport) {
            print("epoch \(epoch.record.epoch + 1): validation loss \(epoch.record.validationLoss)", epoch.isBest ? "(best)" : "")
            lines += 1
        }
    }

    @Test("the article's fit loop trains with early stopping and a plateau schedule and ends with the best epoch's weights")
    func fitLoopExample() throws {
        let (directory, path) = try datasetFile("library-fit", train: 600, seed: 3)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        // The article's code, on random labels (the validation loss soon stops improving).
        let printer = PrintEpochs()
        var configuration = TrainingConfiguration()
        configuration.workers = ProcessInfo.processInfo.activeProcessorCount
        configuration.epochs = 50
        configuration.monitor = .validationLoss
        configuration.earlyStopping = EarlyStopping(patience: 5)
        configuration.schedule = LearningRateSchedule(base: 0.05, .plateau(factor: 0.5, patience: 2, minimum: 1e-4))
        let (whole, test) = try DatasetFile.load(path)
        let (train, validation) = try whole.split(validationFraction: 0.1, seed: configuration.seed)
        let loop = try TrainingLoop(trainer: try Trainer(configuration: configuration, dataset: train), validation: validation)
        let fit = try loop.fit(observers: [printer])
        let score = try evaluate(fit.network, on: test, workers: configuration.workers)

        #expect(fit.reason == .stoppedEarly && fit.isBest && printer.lines == fit.best!.epoch + 6)
        #expect(fit.history == loop.trainer.history && fit.history.epochs.count == printer.lines)
        #expect(loop.trainer.history.reductions > 0 && score.sampleCount == 128)
        #expect(try evaluate(fit.network, on: validation, workers: 1).meanLoss == fit.best!.score)
    }
}
