/// A fully connected layer: a_j = Σ_i w_ji z_i + b_j, then z_j = h(a_j).
///
/// The layer is a description; its numbers live in the network's flat
/// parameter vector, so that gradients, optimizer state and shard buffers all
/// share one layout and can be summed, scaled and saved as plain arrays.
/// Within that vector the weights w come first, stored [out, in] (row j holds
/// w_j·), then the biases b [out].
public struct Dense: Sendable, Equatable, Codable {
    public let inputCount: Int
    public let outputCount: Int
    public let activation: Activation
    /// Where w starts in the flat parameter vector.
    public let weightOffset: Int

    public init(inputCount: Int, outputCount: Int, activation: Activation, weightOffset: Int) {
        precondition(inputCount > 0 && outputCount > 0,
                     "layer sizes must be positive, got \(inputCount)->\(outputCount)")
        self.inputCount = inputCount
        self.outputCount = outputCount
        self.activation = activation
        self.weightOffset = weightOffset
    }

    /// Where b starts in the flat parameter vector.
    public var biasOffset: Int { weightOffset + weightCount }
    public var weightCount: Int { outputCount * inputCount }
    public var parameterCount: Int { weightCount + outputCount }
    /// The index range of w in the parameter vector.
    public var weightRange: Range<Int> { weightOffset..<biasOffset }
    /// The index range of b in the parameter vector.
    public var biasRange: Range<Int> { biasOffset..<(biasOffset + outputCount) }

    /// Forward pass for a block of rows: a = z·wᵀ + b, then z' = h(a) unless
    /// `activate` is false (the output layer, whose h is applied by the loss).
    ///
    /// z: [rows, in], w: [out, in], output: [rows, out], all row-major.
    func forward<T: NetworkScalar>(
        _ input: UnsafePointer<T>, rows: Int,
        parameters: UnsafePointer<T>,
        into output: UnsafeMutablePointer<T>,
        activate: Bool, kernel: Kernel
    ) {
        // a_nj = Σ_i z_ni w_ji: one product for the whole block, A·Wᵀ.
        gemm(.none, .transposed, m: rows, n: outputCount, k: inputCount,
             a: input, lda: inputCount, b: parameters + weightOffset, ldb: inputCount,
             beta: 0, c: output, ldc: outputCount, kernel: kernel)
        let b = parameters + biasOffset
        // One pass adds b_j and applies h, while the row is still in cache.
        switch (activate ? activation : .identity) {
        case .relu: addBias(b, to: output, rows: rows) { $0 > 0 ? $0 : 0 }
        case .leakyRelu: addBias(b, to: output, rows: rows) { Activation.leakyRelu.value($0) }
        case .tanh: addBias(b, to: output, rows: rows) { T.tanh($0) }
        case .sigmoid: addBias(b, to: output, rows: rows) { Activation.sigmoid.value($0) }
        case .identity, .softmax: addBias(b, to: output, rows: rows) { $0 }
        }
    }

    /// output_nj ← h(output_nj + b_j); specialised per activation by the caller's closure.
    @inline(__always)
    private func addBias<T: NetworkScalar>(
        _ b: UnsafePointer<T>, to output: UnsafeMutablePointer<T>, rows: Int,
        _ h: (T) -> T
    ) {
        for n in 0..<rows {
            let row = output + n * outputCount
            for j in 0..<outputCount { row[j] = h(row[j] + b[j]) }
        }
    }
}
