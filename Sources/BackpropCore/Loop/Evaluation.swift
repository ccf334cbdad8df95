/// How well a network does on a dataset.
public struct Evaluation: Sendable, Equatable {
    /// The dataset's task, which says what `score` is.
    public let task: LearningTask
    /// (1/N) Σ_n E^n.
    public let meanLoss: Double
    /// Classification: the accuracy, the fraction of samples whose largest
    /// output is the label. Regression: the RMSE √((1/NK) Σ_n Σ_k (y_k − t_k)²).
    public let score: Double
    /// confusion[label][predicted] counts (empty for regression targets).
    public let confusion: [[Int]]
    public let sampleCount: Int

    /// Accuracy within each true class (NaN for a class with no samples).
    public var perClassAccuracy: [Double] {
        confusion.enumerated().map { label, row in
            let total = row.reduce(0, +)
            return total == 0 ? .nan : Double(row[label]) / Double(total)
        }
    }
}

/// Runs `network` over every sample of `dataset` (never changing the model)
/// and measures the loss and, for class labels, accuracy and the confusion
/// matrix, for regression targets the RMSE, in shards of
/// `shardSize` on `workers` workers. The rows are read from the dataset's
/// source in blocks of whole shards, in file order, one block in memory at a
/// time (in memory: one block, the dataset itself): the same sums in the
/// same order, so the same bits wherever the rows come from.
/// - Throws: `TrainingError.dataUnreadable` when the rows cannot be read.
public func evaluate(
    _ network: Network<Float>, on dataset: some RowSource, workers: Int, shardSize: Int = 256, products: Products = Products()
) throws(TrainingError) -> Evaluation {
    let shardCount = (dataset.count + shardSize - 1) / shardSize
    var predictions = [Int32](repeating: 0, count: dataset.count)
    // Per shard: Σ_n E^n, then Σ_n Σ_k (y_k − t_k)².
    var shardSums = [Double](repeating: 0, count: 2 * shardCount)
    let evaluator = ShardEvaluator(network: network, shardSize: shardSize, workers: workers, products: products)
    let blockRows = dataset.blockRows(count: dataset.count, shardSize: shardSize)
    for start in stride(from: 0, to: dataset.count, by: blockRows) {
        let block = try dataset.rows(start..<min(start + blockRows, dataset.count))
        evaluator.run(block, firstShard: start / shardSize, sums: &shardSums, predictions: &predictions, offset: start)
    }
    let classes = network.outputCount
    let count = max(dataset.count, 1)
    var errorSum = 0.0, squaresSum = 0.0
    for s in 0..<shardCount {
        errorSum += shardSums[2 * s]
        squaresSum += shardSums[2 * s + 1]
    }
    let meanLoss = errorSum / Double(count)
    guard let labels = dataset.labels else {
        let rmse = (squaresSum / Double(count * classes)).squareRoot()
        return Evaluation(task: .regression, meanLoss: meanLoss, score: rmse, confusion: [], sampleCount: dataset.count)
    }
    var confusion = Array(repeating: Array(repeating: 0, count: classes), count: classes)
    for (n, label) in labels.enumerated() { confusion[Int(label)][Int(predictions[n])] += 1 }
    let correct = (0..<classes).reduce(0) { $0 + confusion[$1][$1] }
    return Evaluation(task: .classification, meanLoss: meanLoss, score: Double(correct) / Double(count),
                      confusion: confusion, sampleCount: dataset.count)
}

/// The forward passes of evaluation, shard by shard on the workers: each
/// shard's sums and each sample's predicted class.
private struct ShardEvaluator {
    let network: Network<Float>
    let shardSize: Int
    let workers: Int
    let products: Products
    let workspaces: [Workspace<Float>]
    let wT: TransposedWeights<Float>

    init(network: Network<Float>, shardSize: Int, workers: Int, products: Products) {
        self.network = network
        self.shardSize = shardSize
        self.workers = max(1, workers)
        self.products = products
        workspaces = (0..<max(1, workers)).map { _ in Workspace<Float>(sizes: network.sizes, capacity: shardSize) }
        wT = TransposedWeights(network)
    }

    /// Every shard of in-memory `dataset`: its sums at shard `firstShard` + s of
    /// `sums`, its samples' classes at `offset` + n of `predictions`.
    func run(_ dataset: Dataset, firstShard: Int, sums allSums: inout [Double], predictions allPredictions: inout [Int32], offset: Int) {
        let shardCount = (dataset.count + shardSize - 1) / shardSize
        let workerCount = max(1, min(workers, shardCount))
        let classes = network.outputCount
        let order = (0..<Int32(dataset.count)).map { $0 }
        let (network, shardSize, products, workspaces, wT) = (self.network, self.shardSize, self.products, self.workspaces, self.wT)
        allPredictions.withUnsafeMutableBufferPointer { predicted in
            allSums.withUnsafeMutableBufferPointer { sums in
                network.parameters.withUnsafeBufferPointer { parameters in
                    order.withUnsafeBufferPointer { order in
                        let predicted = SharedPointer(base: predicted.baseAddress! + offset)
                        let sums = SharedPointer(base: sums.baseAddress! + 2 * firstShard)
                        let w = SharedPointer(base: UnsafeMutablePointer(mutating: parameters.baseAddress!))
                        let all = SharedPointer(base: UnsafeMutablePointer(mutating: order.baseAddress!))
                        forEachShard(shardCount, workers: workerCount) { worker, s in
                            let workspace = workspaces[worker]
                            let start = s * shardSize, rows = min(shardSize, dataset.count - start)
                            dataset.gather(UnsafeBufferPointer(start: all.base + start, count: rows),
                                           inputs: workspace.activation(0), targets: workspace.targets,
                                           outputCount: classes)
                            network.forward(rows: rows, workspace: workspace, parameters: w.base,
                                            transposedWeights: wT, applyOutputActivation: false, products: products)
                            let output = workspace.activation(network.layers.count)
                            // The class is the arg-max of a (= arg-max of y for softmax).
                            for n in 0..<rows {
                                let row = output + n * classes
                                var best = 0
                                for k in 1..<classes where row[k] > row[best] { best = k }
                                predicted.base[start + n] = Int32(best)
                            }
                            sums.base[2 * s] = Double(network.loss.outputErrors(
                                output, targets: workspace.targets, rows: rows, width: classes,
                                outputActivation: network.layers[network.layers.count - 1].activation,
                                delta: workspace.deltaA))
                            // outputErrors left y = g(a) in place: Σ (y_k − t_k)² of the shard.
                            var squares = 0.0
                            for i in 0..<(rows * classes) {
                                let difference = Double(output[i] - workspace.targets[i])
                                squares += difference * difference
                            }
                            sums.base[2 * s + 1] = squares
                        }
                    }
                }
            }
        }
    }
}
