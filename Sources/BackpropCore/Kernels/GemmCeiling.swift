/// The speed limit of a training step on this machine: the step's matrix
/// products alone — per shard, a_l = Z_{l−1}·W_lᵀ for every layer, then
/// δ_lᵀ·Z_{l−1} and, below the top, δ_l·W_l — with the same shapes, shards,
/// workers and per-worker buffers as `ShardedGradients`, and nothing else
/// (no conversion, bias, activation, loss, reduction or update). For
/// 784-256-128-10 these are the 8 training GEMMs. `backprop bench` reports
/// the step's throughput as a fraction of this one.
public final class GemmCeiling {
    let network: Network<Float>
    let batchSize: Int
    let shardSize: Int
    let workerCount: Int
    private let workspaces: [Workspace<Float>]
    /// One gradient buffer per shard, as in training.
    private let slots: UnsafeMutableBufferPointer<Float>

    public init(network: Network<Float>, batchSize: Int, shardSize: Int, workerCount: Int) {
        self.network = network
        self.batchSize = batchSize
        self.shardSize = min(shardSize, batchSize)
        let shardCount = (batchSize + self.shardSize - 1) / self.shardSize
        self.workerCount = max(1, min(workerCount, shardCount))
        workspaces = (0..<self.workerCount).map { _ in Workspace<Float>(sizes: network.sizes, capacity: min(shardSize, batchSize)) }
        for workspace in workspaces {
            // Plausible values (the products do not depend on them; zeros would do).
            workspace.activation(0).update(repeating: 0.5, count: workspace.capacity * network.inputCount)
        }
        slots = .allocate(capacity: shardCount * network.parameterCount)
        slots.initialize(repeating: 0)
    }

    deinit { slots.deallocate() }

    /// Runs the products of `steps` batches; returns samples per second.
    public func samplesPerSecond(steps: Int) -> Double {
        let shardCount = (batchSize + shardSize - 1) / shardSize
        let (network, workspaces, shardSize, batchSize) = (self.network, self.workspaces, self.shardSize, self.batchSize)
        let slots = SlotPointer(base: slots.baseAddress!)
        let start = monotonicNanoseconds()
        network.parameters.withUnsafeBufferPointer { parameters in
            let w = SlotPointer(base: UnsafeMutablePointer(mutating: parameters.baseAddress!))
            for _ in 0..<steps {
                forEachShard(shardCount, workers: workerCount) { worker, s in
                    let workspace = workspaces[worker]
                    let rows = min(shardSize, batchSize - s * shardSize)
                    let gradient = slots.base + s * network.parameterCount
                    let layers = network.layers
                    for (l, layer) in layers.enumerated() {
                        layer.preActivationProduct(workspace.activation(l), rows: rows, parameters: w.base,
                                                   into: workspace.activation(l + 1), kernel: .blas)
                    }
                    var delta = workspace.deltaA, below = workspace.deltaB
                    for l in stride(from: layers.count - 1, through: 0, by: -1) {
                        layers[l].weightGradientProduct(delta: delta, input: workspace.activation(l), rows: rows,
                                                        into: gradient, kernel: .blas)
                        if l > 0 {
                            layers[l].backpropagatedProduct(delta: delta, rows: rows, parameters: w.base,
                                                            into: below, kernel: .blas)
                        }
                        swap(&delta, &below)
                    }
                }
            }
        }
        let elapsed = seconds(from: start, to: monotonicNanoseconds())
        return Double(steps * batchSize) / elapsed
    }
}
