/// Every layer's wᵀ [in, out], at the layer's own `weightOffset` in a buffer
/// as long as the parameter vector: the forward product a = z·wᵀ reads its B
/// operand with j contiguous, which w [out, in] does not give.
///
/// A training step keeps it current as the optimizer writes w (each update
/// task transposes the block it updated); evaluation builds one for its pass.
final class TransposedWeights<T: NetworkScalar>: @unchecked Sendable {
    // Concurrency rule: tasks write disjoint blocks, and only in phases where
    // no task reads the layer (see ShardedGradients).
    private let storage: UnsafeMutableBufferPointer<T>

    init(_ network: Network<T>) {
        storage = .allocate(capacity: network.parameterCount)
        storage.initialize(repeating: 0)
        network.parameters.withUnsafeBufferPointer { w in
            for layer in network.layers {
                refresh(layer, from: w.baseAddress!, outputs: 0..<layer.outputCount, inputs: 0..<layer.inputCount)
            }
        }
    }

    deinit { storage.deallocate() }

    var base: UnsafeMutablePointer<T> { storage.baseAddress! }

    /// wᵀ_ij ← w_ji for j in `outputs`, i in `inputs` of `layer`.
    func refresh(_ layer: Dense, from w: UnsafePointer<T>, outputs: Range<Int>, inputs: Range<Int>) {
        let source = w + layer.weightOffset, target = base + layer.weightOffset
        let (n, m) = (layer.inputCount, layer.outputCount)
        // Blocks of 8 × 8 so that reads and writes both stay within few lines.
        for j0 in stride(from: outputs.lowerBound, to: outputs.upperBound, by: 8) {
            for i0 in stride(from: inputs.lowerBound, to: inputs.upperBound, by: 8) {
                for j in j0..<min(j0 + 8, outputs.upperBound) {
                    for i in i0..<min(i0 + 8, inputs.upperBound) { target[i * m + j] = source[j * n + i] }
                }
            }
        }
    }
}
