import CGemm

/// Every layer's wᵀ [in, out], stored as the forward product's kernels read
/// B: in panels of `panelWidth` columns (outputs j), each panel [in][32]
/// contiguous, so no task has to pack it again. The forward product
/// a = z·wᵀ needs B with j contiguous, which w [out, in] does not give.
///
/// A training step keeps it current as the optimizer writes w (each update
/// task transposes the block it updated): w is packed once per step, for
/// all workers. Evaluation builds one for its pass.
final class TransposedWeights<T: NetworkScalar>: @unchecked Sendable {
    // Concurrency rule: tasks write disjoint blocks, and only in phases where
    // no task reads the layer (see TrainingStep).

    /// Columns per panel: a multiple of every kernel path's tile width.
    static var panelWidth: Int { 32 }
    private let storage: UnsafeMutableBufferPointer<T>
    /// Where layer l's panels start.
    private let offsets: [Int]

    init(_ network: Network<T>) {
        var offsets: [Int] = [], total = 0
        for layer in network.layers {
            offsets.append(total)
            total += layer.inputCount * Self.panelCount(layer) * Self.panelWidth
        }
        self.offsets = offsets
        storage = .allocate(capacity: total)
        storage.initialize(repeating: 0)
        network.parameters.withUnsafeBufferPointer { w in
            for (l, layer) in network.layers.enumerated() {
                refresh(l, layer, from: w.baseAddress!, outputs: 0..<layer.outputCount, inputs: 0..<layer.inputCount)
            }
        }
    }

    deinit { storage.deallocate() }

    private static func panelCount(_ layer: Dense) -> Int { (layer.outputCount + panelWidth - 1) / panelWidth }

    /// Layer l's panels.
    func panels(_ l: Int, _ layer: Dense) -> TransposedPanels<T> {
        TransposedPanels(base: storage.baseAddress! + offsets[l], ldb: Self.panelWidth, panelWidth: Self.panelWidth,
                         panelStride: layer.inputCount * Self.panelWidth)
    }

    /// wᵀ_ij ← w_ji for j in `outputs`, i in `inputs` of layer l.
    func refresh(_ l: Int, _ layer: Dense, from w: UnsafePointer<T>, outputs: Range<Int>, inputs: Range<Int>) {
        let source = w + layer.weightOffset, n = layer.inputCount
        let panels = panels(l, layer)
        // Panel by panel: within one, wᵀ is row-major [in][panelWidth].
        var j0 = outputs.lowerBound
        while j0 < outputs.upperBound {
            let (panel, column) = j0.quotientAndRemainder(dividingBy: panels.panelWidth)
            let j1 = min(outputs.upperBound, (panel + 1) * panels.panelWidth)
            let target = panels.base + panel * panels.panelStride + column + inputs.lowerBound * panels.ldb
            let rows = source + j0 * n + inputs.lowerBound
            if let rows = floatPointer(rows), let target = floatPointer(target) {
                backprop_transpose(rows, n, j1 - j0, inputs.count, target, panels.ldb)
            } else {
                for j in 0..<(j1 - j0) {
                    for i in 0..<inputs.count { target[i * panels.ldb + j] = rows[j * n + i] }
                }
            }
            j0 = j1
        }
    }
}

/// One layer's wᵀ as `TransposedWeights` stores it: wᵀ_ij at
/// base[(j / panelWidth)·panelStride + i·ldb + j % panelWidth].
struct TransposedPanels<T>: @unchecked Sendable {
    // Sendable: read-only while tasks read it (see TransposedWeights).
    let base: UnsafeMutablePointer<T>
    let ldb: Int, panelWidth: Int, panelStride: Int
}
