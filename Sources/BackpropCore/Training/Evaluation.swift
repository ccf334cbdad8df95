/// How well a network does on a dataset.
public struct Evaluation: Sendable, Equatable {
    /// (1/N) Σ_n E^n.
    public let meanLoss: Double
    /// Fraction of samples whose largest output is the label.
    public let accuracy: Double
    /// confusion[label][predicted] counts.
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
/// and measures loss, accuracy and the confusion matrix, in shards of
/// `shardSize` on `workers` workers.
public func evaluate(
    _ network: Network<Float>, on dataset: Dataset, workers: Int, shardSize: Int = 256
) -> Evaluation {
    let shardCount = (dataset.count + shardSize - 1) / shardSize
    let workerCount = max(1, min(workers, shardCount))
    let workspaces = (0..<workerCount).map { _ in Workspace<Float>(sizes: network.sizes, capacity: shardSize) }
    let classes = network.outputCount
    var predictions = [Int32](repeating: 0, count: dataset.count)
    var errorSums = [Double](repeating: 0, count: shardCount)
    let order = (0..<Int32(dataset.count)).map { $0 }

    predictions.withUnsafeMutableBufferPointer { predicted in
        errorSums.withUnsafeMutableBufferPointer { sums in
            network.parameters.withUnsafeBufferPointer { parameters in
                order.withUnsafeBufferPointer { order in
                    let predicted = SlotPointer(base: predicted.baseAddress!)
                    let sums = SlotPointer(base: sums.baseAddress!)
                    let w = SlotPointer(base: UnsafeMutablePointer(mutating: parameters.baseAddress!))
                    let all = SlotPointer(base: UnsafeMutablePointer(mutating: order.baseAddress!))
                    forEachShard(shardCount, workers: workerCount) { worker, s in
                        let workspace = workspaces[worker]
                        let start = s * shardSize, rows = min(shardSize, dataset.count - start)
                        dataset.gather(UnsafeBufferPointer(start: all.base + start, count: rows),
                                       inputs: workspace.activation(0), targets: workspace.targets,
                                       outputCount: classes)
                        network.forward(rows: rows, workspace: workspace, parameters: w.base,
                                        applyOutputActivation: false, kernel: .blas)
                        let output = workspace.activation(network.layers.count)
                        // The class is the arg-max of a (= arg-max of y for softmax).
                        for n in 0..<rows {
                            let row = output + n * classes
                            var best = 0
                            for k in 1..<classes where row[k] > row[best] { best = k }
                            predicted.base[start + n] = Int32(best)
                        }
                        sums.base[s] = Double(network.loss.outputErrors(
                            output, targets: workspace.targets, rows: rows, width: classes,
                            outputActivation: network.layers[network.layers.count - 1].activation,
                            delta: workspace.deltaA))
                    }
                }
            }
        }
    }
    var confusion = Array(repeating: Array(repeating: 0, count: classes), count: classes)
    for (n, label) in dataset.labels.enumerated() { confusion[Int(label)][Int(predictions[n])] += 1 }
    let correct = (0..<classes).reduce(0) { $0 + confusion[$1][$1] }
    let count = max(dataset.count, 1)
    return Evaluation(meanLoss: errorSums.reduce(0, +) / Double(count),
                      accuracy: Double(correct) / Double(count),
                      confusion: confusion, sampleCount: dataset.count)
}
