// The code of the DocC article "Training the reference model from Swift"
// (Sources/BackpropCore/BackpropCore.docc/TrainingFromSwift.md), section by
// section, as a package that depends on Backprop would write it. The only
// changes: the IDX directory, the output directory and the training rows
// come from the command line, so that a check can run it in seconds.
import BackpropCore
import BackpropHDF5
import BackpropIO
import Foundation

let arguments = CommandLine.arguments
let idxDirectory = arguments.count > 1 ? arguments[1] : "/usr/share/datasets/fashion-mnist"
let output = arguments.count > 2 ? arguments[2] : "."
let trainRows = arguments.count > 3 ? Int(arguments[3]) : nil

// MARK: Getting the data without the command line

let path = "\(output)/fashion-mnist.h5"
let (imported, importedTest) = try IDXImport.read(from: idxDirectory, trainLimit: trainRows)
try DatasetFile.write(train: imported, test: importedTest,
                      attributes: IDXImport.attributes(name: "fashion-mnist", directory: idxDirectory), to: path)

// MARK: Training, evaluating and saving

let (train, test) = try DatasetFile.load(path)
var configuration = TrainingConfiguration()
configuration.workers = ProcessInfo.processInfo.activeProcessorCount
let trainer = try Trainer(configuration: configuration, dataset: train)
while !trainer.isFinished {
    try trainer.step()
}
let result = try evaluate(trainer.network, on: test, workers: configuration.workers)
print("\(result.task.scoreName): \(result.task.format(result.score))")
// The model alone, which `backprop evaluate`, `predict` and `export` read:
try Checkpoint(model: trainer.evaluatedNetwork, configuration: configuration, task: train.task).save(to: "\(output)/model.h5")
// Or the whole run, which `backprop train --resume` continues:
try Checkpoint(of: trainer, dataPath: path, dataFingerprint: train.fingerprint).save(to: "\(output)/last.h5")

let model = try Checkpoint.load(from: "\(output)/model.h5")
precondition(model.network.parameters.map(\.bitPattern) == trainer.network.parameters.map(\.bitPattern) && model.isModelOnly,
             "the model saved is not the model trained")

// MARK: Errors

/// What loading `path` refused, if anything: the readers and writers of
/// BackpropHDF5 throw `StorageError` (from BackpropIO), one line naming the
/// file, the object and the problem.
func refusal(loading path: String) -> StorageError? {
    do {
        _ = try Checkpoint.load(from: path)
        return nil
    } catch {
        return error
    }
}
if let error = refusal(loading: "\(output)/no-such-model.h5") {
    print("refused: \(error)")
}

// MARK: The fit loop

final class PrintEpochs: TrainingObserver {
    func didEndEpoch(_ loop: TrainingLoop, _ epoch: EpochReport) {
        print("epoch \(epoch.record.epoch + 1): validation loss \(epoch.record.validationLoss)", epoch.isBest ? "(best)" : "")
    }
}

configuration.epochs = 50
configuration.monitor = .validationLoss
configuration.earlyStopping = EarlyStopping(patience: 5)
configuration.schedule = LearningRateSchedule(base: 0.05, .plateau(factor: 0.5, patience: 2, minimum: 1e-4))
let (whole, _) = try DatasetFile.load(path)
let (trainPart, validation) = try whole.split(validationFraction: 0.1, seed: configuration.seed)
let loop = try TrainingLoop(trainer: try Trainer(configuration: configuration, dataset: trainPart), validation: validation)
let fit = try loop.fit(observers: [PrintEpochs()])
let score = try evaluate(fit.network, on: test, workers: configuration.workers)
print("best epoch \(fit.best.map { $0.epoch + 1 } ?? 0) of \(fit.history.epochs.count): test \(score.task.format(score.score))")
