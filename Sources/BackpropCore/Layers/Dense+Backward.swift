// The backward pass of a dense layer, for a block of rows (one shard).
//
// Given this layer's errors δ_j (already multiplied by h'(a_j)), it computes
//   ∂E/∂w_ji = Σ_n δ_nj z_ni      (∂E^n/∂w_ji = δ_j z_i, summed over the block)
//   ∂E/∂b_j  = Σ_n δ_nj           (∂E^n/∂b_j = δ_j)
//   δ_ni     = h'(a_ni) Σ_j w_ji δ_nj   for the layer below, if there is one.
// The sums over the block's samples are matrix products: there is no
// per-sample loop.

extension Dense {
    /// Writes Σ_n ∂E^n/∂w and Σ_n ∂E^n/∂b of this block into `gradient` at
    /// this layer's offsets, which must hold zeros (`weightGradientProduct`),
    /// and the errors of the layer below into `inputDelta` when it is given.
    ///
    /// delta: [rows, out], input z: [rows, in], w: [out, in], inputDelta: [rows, in].
    /// - Parameter inputActivation: h of the layer below, whose output is `input`.
    /// (SPI for the Benchmarks package, as `forward`.)
    @_spi(Benchmarks) public func backward<T: NetworkScalar>(
        delta: UnsafePointer<T>, input: UnsafePointer<T>, rows: Int,
        parameters: UnsafePointer<T>,
        gradient: UnsafeMutablePointer<T>,
        inputDelta: UnsafeMutablePointer<T>?, inputActivation: Activation,
        kernel: Kernel
    ) {
        // ∂E/∂w = δᵀ·z: [out, rows]·[rows, in].
        weightGradientProduct(delta: delta, input: input, rows: rows, into: gradient, kernel: kernel)

        // ∂E/∂b_j = Σ_n δ_nj: column sums, accumulated row by row (contiguous reads).
        let db = gradient + biasOffset
        if let delta = floatPointer(delta), let db = floatPointer(db) {
            columnSumsVectorized(delta, rows: rows, width: outputCount, into: db)
        } else {
            db.update(repeating: 0, count: outputCount)
            for n in 0..<rows {
                let row = delta + n * outputCount
                for j in 0..<outputCount { db[j] += row[j] }
            }
        }

        guard let inputDelta else { return }
        // Σ_j w_ji δ_nj = (δ·w)_ni: [rows, out]·[out, in].
        backpropagatedProduct(delta: delta, rows: rows, parameters: parameters, into: inputDelta, kernel: kernel)
        // δ_ni ← h'(a_ni) · (δ·w)_ni, with h' written through z = h(a).
        let count = rows * inputCount
        switch inputActivation {
        case .relu:
            if let d = floatPointer(inputDelta), let z = floatPointer(input) {
                reluMaskVectorized(d, z: z, count: count)
            } else {
                for i in 0..<count where !(input[i] > 0) { inputDelta[i] = 0 }
            }
        case .identity, .softmax:
            break
        default:
            for i in 0..<count { inputDelta[i] *= inputActivation.derivative(output: input[i]) }
        }
    }
}
