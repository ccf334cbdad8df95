import BackpropCore
import BackpropTestSupport
import Testing

/// Regression as a task of its own: float features, real-valued targets,
/// sum-of-squares, RMSE.
struct RegressionTests {
    func configuration(workers: Int) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.sizes = [3, 16, 2]
        c.hiddenActivation = .tanh
        c.loss = .sumOfSquares
        c.batchSize = 32
        c.shardSize = 8
        c.workers = workers
        c.epochs = 40
        c.seed = 2
        c.optimizer = OptimizerSettings(kind: .momentum)
        return c
    }

    @Test("gather copies float features and target rows as stored")
    func gather() {
        let dataset = Dataset(name: "tiny", features: .floats([1, 2, 3, 4, 5, 6]), targets: .values([0.5, -1, 2, 7], width: 2),
                              featureCount: 3)
        let (x, t) = dataset.arrays(outputCount: 2, as: Double.self)
        #expect(x == [1, 2, 3, 4, 5, 6] && t == [0.5, -1, 2, 7])
        #expect(dataset.count == 2 && dataset.task == .regression && dataset.targetWidth == 2)
        let subset = dataset.subset([1])
        #expect(subset.features == .floats([4, 5, 6]) && subset.targets == .values([2, 7], width: 2))
    }

    @Test("targets must match the output width and go with sum-of-squares")
    func validation() throws {
        let dataset = regressionDataset(count: 10, seed: 1)
        #expect(throws: TrainingError.targetWidthMismatch(dataset: dataset.name, targets: 2, networkOutputs: 3)) {
            try dataset.validate(for: Network<Float>(sizes: [3, 3], loss: .sumOfSquares))
        }
        #expect(throws: TrainingError.regressionNeedsSumOfSquares(dataset: dataset.name)) {
            try dataset.validate(for: Network<Float>(sizes: [3, 2], loss: .crossEntropy))
        }
        try dataset.validate(for: Network<Float>(sizes: [3, 4, 2], outputActivation: .tanh, loss: .sumOfSquares))
    }

    @Test("evaluate: RMSE and mean loss equal the hand-computed values")
    func evaluation() throws {
        let dataset = regressionDataset(count: 300, seed: 3)
        var network = try Network<Float>(sizes: [3, 5, 2], loss: .sumOfSquares)
        var generator = SeededGenerator(seed: 4)
        network.initialize(.pytorch, generator: &generator)
        let (inputs, targets) = dataset.arrays(outputCount: 2, as: Float.self)
        let y = network.predict(inputs: inputs)
        let squares = zip(y, targets).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +)
        let result = try evaluate(network, on: dataset, workers: 3, shardSize: 64)
        #expect(result.task == .regression && isClose(result.score, (squares / 600).squareRoot(), .floatAgainstDouble))
        #expect(isClose(result.meanLoss, squares / 2 / 300, .floatAgainstDouble))
        #expect(result.confusion.isEmpty)
    }

    @Test("training lowers the RMSE well below predicting the mean, bit-identically for 1, 2 and 5 workers")
    func training() throws {
        let train = regressionDataset(count: 512, seed: 5), test = regressionDataset(count: 256, seed: 6)
        var parameters: [[UInt32]] = []
        var rmse: [Double] = []
        for workers in [1, 2, 5] {
            let trainer = try Trainer(configuration: configuration(workers: workers), dataset: train)
            while !trainer.isFinished { try trainer.step() }
            parameters.append(trainer.network.parameters.map(\.bitPattern))
            rmse.append(try evaluate(trainer.network, on: test, workers: workers).score)
        }
        #expect(parameters.dropFirst().allSatisfy { $0 == parameters[0] } && rmse.dropFirst().allSatisfy { $0 == rmse[0] })
        // Predicting each target's mean: RMSE √((Var t₁ + Var t₂)/2) ≈ √((5/3 + 1/9)/2) ≈ 0.94.
        #expect(rmse[0] < 0.1, "test RMSE \(rmse[0])")
    }

    @Test("the better of two scores: higher accuracy, lower RMSE; History.best skips NaN")
    func bestScore() {
        #expect(LearningTask.classification.improves(0.9, on: 0.8) && !LearningTask.classification.improves(0.8, on: 0.9))
        #expect(LearningTask.regression.improves(0.1, on: 0.2) && !LearningTask.regression.improves(0.2, on: 0.1))
        func best(_ scores: [Double], _ task: LearningTask) -> History.Best? {
            var history = History()
            for (epoch, score) in scores.enumerated() {
                var record = EpochRecord(epoch: epoch, step: 0, trainLoss: 0, testLoss: 0, testScore: 0, learningRate: 0,
                                         samplesPerSecond: 0, wallTime: 0)
                record.validationScore = score
                history.log(record, task: task)
            }
            return history.best
        }
        #expect(best([0.5, .nan, 0.2, 0.3], .regression) == History.Best(epoch: 2, score: 0.2))
        #expect(best([0.5, .nan, 0.2, 0.3], .classification) == History.Best(epoch: 0, score: 0.5))
        #expect(best([.nan], .classification) == nil && best([], .regression) == nil)
    }

    @Test("two splits fit one model when their tasks agree and, for regression, their target rows are as wide")
    func targetsAlike() {
        let classes = Dataset.random(count: 8, featureCount: 3, classCount: 4, seed: 1)
        let fewerClasses = Dataset.random(count: 8, featureCount: 3, classCount: 2, seed: 2)
        let values = regressionDataset(count: 8, seed: 1)
        let wider = Dataset(name: "wide", features: values.features, targets: .values(Array(repeating: 0, count: 24), width: 3), featureCount: 3)
        #expect(classes.hasTargets(like: fewerClasses) && values.hasTargets(like: regressionDataset(count: 4, seed: 2)))
        #expect(!classes.hasTargets(like: values) && !values.hasTargets(like: classes) && !values.hasTargets(like: wider))
    }

    @Test("a task names, formats and stores its score in one place")
    func taskNames() {
        #expect(LearningTask.classification.scoreName == "test accuracy" && LearningTask.regression.scoreName == "test RMSE")
        #expect(LearningTask.classification.format(0.85123) == "85.12%" && LearningTask.regression.format(0.123456) == "0.1235")
        // The values checkpoints of every version store in the "metric" attribute.
        #expect(LearningTask(metricName: "accuracy") == .classification && LearningTask(metricName: "rmse") == .regression && LearningTask(metricName: "loss") == nil)
    }

    @Test("fingerprints: byte data keeps its pre-regression value; float data differs in every part")
    func fingerprints() {
        #expect(Dataset.random(count: 4, featureCount: 3, classCount: 2, seed: 1).fingerprint == "4x3 scale 0.003921569 fnv1a64 287b9ae988d96b21",
                "the same as 0.2.0 wrote, so its checkpoints still resume")
        let a = regressionDataset(count: 8, seed: 1)
        let b = Dataset(name: a.name, features: a.features, targets: .values(Array(repeating: 0, count: 16), width: 2), featureCount: 3)
        #expect(a.fingerprint.hasPrefix("8x3 float32 fnv1a64 ") && a.fingerprint != b.fingerprint)
    }
}
