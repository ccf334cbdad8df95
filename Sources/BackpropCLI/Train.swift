import ArgumentParser
import BackpropCore
import BackpropHDF5
import Foundation

/// `backprop train`: trains a model and writes its checkpoint.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train an MLP on an HDF5 dataset and save the model as an HDF5 checkpoint.",
        discussion: """
        The defaults train the reference model: 784-256-128-10, ReLU, softmax cross-entropy, \
        SGD with momentum 0.9, learning rate 0.05, batch 256, 10 epochs, on all cores.
        """)

    @Option(help: "The HDF5 dataset (see `backprop import`).")
    var data = "datasets/fashion-mnist.h5"
    @Option(help: "Layer widths from input to output.")
    var layers = LayerSizes(argument: "784,256,128,10")!
    @Option(help: "Hidden activation: relu, leaky-relu, tanh, sigmoid, identity.")
    var activation: Activation = .relu
    @Option(help: "Output activation (default: softmax for cross-entropy, identity for sum-of-squares).")
    var outputActivation: Activation?
    @Option(help: "Loss: cross-entropy or sum-of-squares.")
    var loss: Loss = .crossEntropy
    @Option(help: "Optimizer: sgd, momentum, nesterov, adam, adamw.")
    var optimizer: OptimizerKind = .momentum
    @Option(help: "Learning rate η.")
    var learningRate = 0.05
    @Option(help: "Momentum μ (momentum, nesterov).")
    var momentum = 0.9
    @Option(help: "Weight decay λ (L2 for sgd/momentum/nesterov/adam, decoupled for adamw).")
    var weightDecay = 0.0
    @Option(help: "Samples per mini-batch.")
    var batchSize = 256
    @Option(help: "Epochs to train (0 writes the freshly initialised model).")
    var epochs = 10
    @Option(help: "Stop after this many optimizer steps.")
    var steps: Int?
    @Flag(help: "Visit the samples in file order instead of a seeded shuffle.")
    var noShuffle = false
    @Option(help: "Worker threads (default: the active cores).")
    var workers = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Samples per shard; fixes the summation order, so results do not depend on --workers.")
    var shardSize = 128
    @Option(help: "Seed for initialisation and shuffling.")
    var seed: UInt64 = 0
    @Option(name: .customLong("init"), help: "Initialisation: pytorch, he, xavier.")
    var initialization: Initialization = .pytorch
    @Option(help: "mean: step along the batch-mean gradient; sum: along the summed gradient.")
    var reduction: Reduction = .mean
    @Option(help: "Checkpoint file to write (default: runs/<timestamp>/model.h5).")
    var output: String?
    @Flag(help: "Print the BLAS in use and per-step details.")
    var verbose = false

    var trainingConfiguration: TrainingConfiguration {
        var c = TrainingConfiguration()
        c.sizes = layers.sizes
        c.hiddenActivation = activation
        c.outputActivation = outputActivation
        c.loss = loss
        c.initialization = initialization
        c.optimizer = OptimizerSettings(kind: optimizer, learningRate: learningRate,
                                        momentum: momentum, weightDecay: weightDecay)
        c.batchSize = batchSize
        c.epochs = epochs
        c.steps = steps
        c.shuffle = !noShuffle
        c.workers = workers
        c.seed = seed
        c.reduction = reduction
        c.shardSize = shardSize
        return c
    }

    /// Flag names for the settings TrainingConfiguration.validate() checks.
    static let flags = ["batch size": "--batch-size", "epochs": "--epochs", "steps": "--steps",
                        "workers": "--workers", "shard size": "--shard-size",
                        "learning rate": "--learning-rate", "momentum": "--momentum",
                        "weight decay": "--weight-decay"]

    func validate() throws {
        do {
            try trainingConfiguration.validate()
            _ = try trainingConfiguration.makeNetwork(Float.self)
        } catch .invalidSetting(let name, let value, let reason) {
            throw ValidationError("\(Train.flags[name] ?? name) \(value) is invalid: \(reason).")
        } catch {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        Backprop.setUp()
        let configuration = trainingConfiguration
        let outputPath = output ?? Train.defaultOutput()
        try checkWritable(outputPath)
        let (train, test) = try DatasetFile.load(data)
        let trainer = try Trainer(configuration: configuration, dataset: train)
        try test.validate(for: trainer.network)
        if verbose { printBLAS() }
        print("training \(configuration.sizes.map(String.init).joined(separator: "-")) on \(train.count) samples "
              + "(\(data)), \(trainer.epochs.batchesPerEpoch) batches of \(configuration.batchSize) per epoch, "
              + "\(configuration.workers) worker\(configuration.workers == 1 ? "" : "s")")

        var trainingSeconds = 0.0
        while !trainer.isFinished {
            let epoch = trainer.position.epoch
            var lossSum = 0.0, samples = 0
            let start = Date()
            repeat {
                let result = try trainer.step()
                lossSum += result.meanLoss * Double(result.sampleCount)
                samples += result.sampleCount
            } while trainer.position.epoch == epoch && !trainer.isFinished
            let seconds = Date().timeIntervalSince(start)
            trainingSeconds += seconds
            let evaluation = evaluate(trainer.network, on: test, workers: configuration.workers)
            print(String(format: "epoch %d/%d  train loss %.4f  test loss %.4f  test accuracy %.2f%%  %@ samples/s  %.2f s",
                         epoch + 1, configuration.epochs, lossSum / Double(max(samples, 1)),
                         evaluation.meanLoss, 100 * evaluation.accuracy,
                         grouped(Double(samples) / seconds), seconds))
            try save(trainer, to: outputPath)
        }
        if configuration.epochs == 0 || trainer.position.step == 0 { try save(trainer, to: outputPath) }
        print(String(format: "trained %d steps in %.2f s; model written to %@", trainer.position.step,
                     trainingSeconds, outputPath))
    }

    private func save(_ trainer: Trainer, to path: String) throws {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try FileSystem.createDirectory(directory)
        try Checkpoint(of: trainer).save(to: path)
        trainer.lastCheckpoint = path
    }

    /// Fails before training when the checkpoint could not be written later:
    /// the nearest existing directory above `path` must be writable.
    private func checkWritable(_ path: String) throws {
        var directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: directory.path) { directory.deleteLastPathComponent() }
        guard FileManager.default.isWritableFile(atPath: directory.path) else {
            throw StorageError.io(path: path, reason: "directory \(directory.path) is not writable")
        }
    }

    private func printBLAS() {
        print("BLAS: OpenBLAS, core \(BLAS.coreName) (\(BLAS.configuration)), 1 thread per worker")
        if BLAS.isGenericFallback {
            printError("warning: OpenBLAS chose the generic '\(BLAS.coreName)' kernel; set OPENBLAS_CORETYPE (e.g. Haswell, SkylakeX) for full speed.")
        }
    }

    static func defaultOutput() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return "runs/\(formatter.string(from: Date()))/model.h5"
    }
}
