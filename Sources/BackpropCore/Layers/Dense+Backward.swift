// The backward pass of a dense layer.
//
// Given this layer's errors δ_j (already multiplied by h'(a_j)), it computes
//   ∂E/∂w_ji = Σ_n δ_nj z_ni      (∂E^n/∂w_ji = δ_j z_i, summed over the rows)
//   ∂E/∂b_j  = Σ_n δ_nj           (∂E^n/∂b_j = δ_j)
//   δ_ni     = h'(a_ni) Σ_j w_ji δ_nj   for the layer below, if there is one.
// The sums over samples are matrix products: there is no per-sample loop.
// Sums over rows run shard by shard (`segment` rows), the shards' sums added
// in shard order, so one block of the batch or the whole batch at once give
// the same bits.

extension Dense {
    /// Writes Σ_n ∂E^n/∂w and Σ_n ∂E^n/∂b over the rows into `gradient` at
    /// this layer's offsets, and the errors of the layer below into
    /// `inputDelta` when it is given.
    ///
    /// delta: [rows, out], input z: [rows, in], w: [out, in], inputDelta: [rows, in].
    /// - Parameter inputActivation: h of the layer below, whose output is `input`.
    func backward<T: NetworkScalar>(
        delta: UnsafePointer<T>, input: UnsafePointer<T>, rows: Int, segment: Int,
        parameters: UnsafePointer<T>,
        gradient: UnsafeMutablePointer<T>,
        inputDelta: UnsafeMutablePointer<T>?, inputActivation: Activation,
        products: Products
    ) {
        weightGradientProduct(delta: delta, input: input, rows: rows, segment: segment,
                              outputs: 0..<outputCount, inputs: 0..<inputCount,
                              into: gradient + weightOffset, ldg: inputCount, products: products)
        biasGradient(delta, rows: rows, width: outputCount, segment: segment, columns: 0..<outputCount,
                     into: gradient + biasOffset)
        guard let inputDelta else { return }
        propagate(delta: delta, input: input, rows: rows, columns: 0..<inputCount, parameters: parameters,
                  into: inputDelta, inputActivation: inputActivation, products: products)
    }

    /// δ_ni = h'(a_ni) Σ_j w_ji δ_nj for the rows and the layer below's
    /// `columns` (i): δ·W, then h' written through z = h(a) (`input`).
    func propagate<T: NetworkScalar>(
        delta: UnsafePointer<T>, input: UnsafePointer<T>, rows: Int, columns: Range<Int>,
        parameters: UnsafePointer<T>, into inputDelta: UnsafeMutablePointer<T>,
        inputActivation: Activation, products: Products, pairs: (base: UnsafePointer<UInt32>, stride: Int)? = nil
    ) {
        backpropagatedProduct(delta: delta, rows: rows, columns: columns, parameters: parameters,
                              into: inputDelta, products: products, pairs: pairs)
        applyDerivative(inputActivation, to: inputDelta + columns.lowerBound, z: input + columns.lowerBound,
                        rows: rows, width: columns.count, stride: inputCount)
    }
}
