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
    /// (SPI for the Benchmarks package, which times one layer alone.)
    @_spi(Benchmarks) public func forward<T: NetworkScalar>(
        _ input: UnsafePointer<T>, rows: Int,
        parameters: UnsafePointer<T>,
        into output: UnsafeMutablePointer<T>,
        activate: Bool, kernel: Kernel
    ) {
        preActivationProduct(input, rows: rows, parameters: parameters, into: output, kernel: kernel)
        let b = parameters + biasOffset
        // One pass adds b_j and applies h, while the row is still in cache.
        let h = activate ? activation : .identity
        if h == .relu || h == .identity || h == .softmax, let b = floatPointer(b), let output = floatPointer(output) {
            addBiasVectorized(b, to: output, rows: rows, width: outputCount, relu: h == .relu)
            return
        }
        switch h {
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

    // MARK: - The layer's three matrix products (also run alone by GemmCeiling)

    /// a_nj = Σ_i z_ni w_ji for the whole block: Z·Wᵀ, [rows, in]·[in, out].
    @inline(__always)
    func preActivationProduct<T: NetworkScalar>(
        _ input: UnsafePointer<T>, rows: Int, parameters: UnsafePointer<T>,
        into output: UnsafeMutablePointer<T>, kernel: Kernel
    ) {
        gemm(.none, .transposed, m: rows, n: outputCount, k: inputCount,
             a: input, lda: inputCount, b: parameters + weightOffset, ldb: inputCount,
             beta: 0, c: output, ldc: outputCount, kernel: kernel)
    }

    /// Σ_n ∂E^n/∂w_ji = Σ_n δ_nj z_ni: δᵀ·Z, [out, rows]·[rows, in], added to
    /// `gradient`, which must hold zeros there. (With β = 0 OpenBLAS first
    /// zeroes C in a pass of its own; the reduction clears the shard slots
    /// while it reads them anyway, and the backward pass is ~10 % faster.)
    @inline(__always)
    func weightGradientProduct<T: NetworkScalar>(
        delta: UnsafePointer<T>, input: UnsafePointer<T>, rows: Int,
        into gradient: UnsafeMutablePointer<T>, kernel: Kernel
    ) {
        gemm(.transposed, .none, m: outputCount, n: inputCount, k: rows,
             a: delta, lda: outputCount, b: input, ldb: inputCount,
             beta: 1, c: gradient + weightOffset, ldc: inputCount, kernel: kernel)
    }

    /// Σ_j w_ji δ_nj for the layer below: δ·W, [rows, out]·[out, in].
    @inline(__always)
    func backpropagatedProduct<T: NetworkScalar>(
        delta: UnsafePointer<T>, rows: Int, parameters: UnsafePointer<T>,
        into inputDelta: UnsafeMutablePointer<T>, kernel: Kernel
    ) {
        gemm(.none, .none, m: rows, n: inputCount, k: outputCount,
             a: delta, lda: outputCount, b: parameters + weightOffset, ldb: inputCount,
             beta: 0, c: inputDelta, ldc: inputCount, kernel: kernel)
    }
}
