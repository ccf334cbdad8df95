/// A fully connected layer: a_j = Σ_i w_ji z_i + b_j, then z_j = h(a_j).
///
/// The layer is a description; its numbers live in the network's flat
/// parameter vector, so that gradients, optimizer state and shard buffers all
/// share one layout and can be summed, scaled and saved as plain arrays.
/// Within that vector the weights w come first, stored [out, in] (row j holds
/// w_j·), then the biases b [out]. The forward product reads w through its
/// transpose wᵀ [in, out], kept in panels by a `TransposedWeights`.
///
/// Every function here works on a block of rows (samples) and a range of the
/// output's columns, so that a step can split each product into blocks on
/// any number of workers; pointers point at the block's first row.
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

    /// Forward pass for a block of rows and output columns: a = z·wᵀ + b,
    /// then z' = h(a) unless `activate` is false (the output layer, whose h
    /// is applied by the loss).
    ///
    /// z: [rows, in], output: [rows, out], row-major; wᵀ: this layer's
    /// panels (`TransposedWeights.panels`); only `columns` of the output are
    /// written, and `columns` must start at a multiple of the panel width.
    func forward<T: NetworkScalar>(
        _ input: UnsafePointer<T>, rows: Int, columns: Range<Int>,
        parameters: UnsafePointer<T>, transposedWeights wT: TransposedPanels<T>,
        into output: UnsafeMutablePointer<T>,
        activate: Bool, products: Products
    ) {
        preActivationProduct(input, rows: rows, columns: columns, transposedWeights: wT, into: output, products: products)
        let b = parameters + biasOffset + columns.lowerBound
        let block = output + columns.lowerBound
        let width = columns.count
        // One pass adds b_j and applies h, while the rows are still in cache.
        let h = activate ? activation : .identity
        if h == .relu || h == .identity || h == .softmax, let b = floatPointer(b), let block = floatPointer(block) {
            addBiasVectorized(b, to: block, rows: rows, width: width, stride: outputCount, relu: h == .relu)
            return
        }
        for n in 0..<rows {
            let row = block + n * outputCount
            for j in 0..<width { row[j] = h.value(row[j] + b[j]) }
        }
    }

    // MARK: - The layer's three matrix products (also run alone by GemmCeiling)

    /// a_nj = Σ_i z_ni w_ji for the block's rows and `columns` (j):
    /// Z·Wᵀ, [rows, in]·[in, out], one chain over i per element.
    @inline(__always)
    func preActivationProduct<T: NetworkScalar>(
        _ input: UnsafePointer<T>, rows: Int, columns: Range<Int>, transposedWeights wT: TransposedPanels<T>,
        into output: UnsafeMutablePointer<T>, products: Products
    ) {
        precondition(columns.lowerBound % wT.panelWidth == 0, "columns \(columns) start inside a panel")
        MatrixProduct(m: rows, n: columns.count, k: inputCount, segment: max(inputCount, 1),
                      a: input, aRowStride: inputCount, aColumnStride: 1,
                      b: wT.base + columns.lowerBound / wT.panelWidth * wT.panelStride, ldb: wT.ldb,
                      c: output + columns.lowerBound, ldc: outputCount, accumulate: false,
                      bPanelWidth: wT.panelWidth, bPanelStride: wT.panelStride,
                      bPairs: wT.pairs.map { UnsafePointer($0 + columns.lowerBound / 16 * wT.pairsStride) }, bPairsStride: wT.pairsStride)
            .run(products)
    }

    /// Σ_n ∂E^n/∂w_ji = Σ_n δ_nj z_ni for w's rows `outputs` (j) and columns
    /// `inputs` (i): δᵀ·Z, [out, rows]·[rows, in], one chain per `segment`
    /// rows (a shard), the shards' chains added in order, into g (row stride
    /// `ldg`; g's first element is (outputs.lowerBound, inputs.lowerBound)).
    @inline(__always)
    func weightGradientProduct<T: NetworkScalar>(
        delta: UnsafePointer<T>, input: UnsafePointer<T>, rows: Int, segment: Int,
        outputs: Range<Int>, inputs: Range<Int>,
        into g: UnsafeMutablePointer<T>, ldg: Int, products: Products
    ) {
        MatrixProduct(m: outputs.count, n: inputs.count, k: rows, segment: max(segment, 1),
                      a: delta + outputs.lowerBound, aRowStride: 1, aColumnStride: outputCount,
                      b: input + inputs.lowerBound, ldb: inputCount,
                      c: g, ldc: ldg, accumulate: false)
            .run(products)
    }

    /// Σ_j w_ji δ_nj for the layer below, for the block's rows and its
    /// `columns` (i): δ·W, [rows, out]·[out, in]; `pairs`: at bf16, w paired
    /// (`TransposedWeights.weightPairs`), `columns` starting on a group of 16.
    @inline(__always)
    func backpropagatedProduct<T: NetworkScalar>(
        delta: UnsafePointer<T>, rows: Int, columns: Range<Int>, parameters: UnsafePointer<T>,
        into inputDelta: UnsafeMutablePointer<T>, products: Products, pairs: (base: UnsafePointer<UInt32>, stride: Int)? = nil
    ) {
        MatrixProduct(m: rows, n: columns.count, k: outputCount, segment: outputCount,
                      a: delta, aRowStride: outputCount, aColumnStride: 1,
                      b: parameters + weightOffset + columns.lowerBound, ldb: inputCount,
                      c: inputDelta + columns.lowerBound, ldc: inputCount, accumulate: false,
                      bPairs: pairs.map { $0.base + columns.lowerBound / 16 * $0.stride }, bPairsStride: pairs?.stride ?? 0)
            .run(products)
    }
}
