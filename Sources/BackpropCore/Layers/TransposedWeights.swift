import CGemm

/// Every layer's wᵀ [in, out], stored as the forward product's kernels read
/// B: in panels of `panelWidth` columns (outputs j), each panel [in][32]
/// contiguous, so no task has to pack it again. The forward product
/// a = z·wᵀ needs B with j contiguous, which w [out, in] does not give.
///
/// A training step keeps it current as the optimizer writes w (each update
/// task transposes the block it updated): w is packed once per step, for
/// all workers. Evaluation builds one for its pass.
///
/// At bf16 it also holds every layer's w rounded and paired as the bf16
/// product reads B (`backprop_bf16_pack_pairs`), refreshed with wᵀ: wᵀ for
/// z·wᵀ (pairs down the inputs i, groups of 16 outputs j) and w for δ·W
/// (pairs down the outputs j, groups of 16 inputs i). They are the same
/// values as wᵀ and w rounded, so a path that reads w or wᵀ instead gets the
/// same bits; each product no longer rounds and packs the weights itself.
final class TransposedWeights<T: NetworkScalar>: @unchecked Sendable {
    // Concurrency rule: tasks write disjoint blocks, and only in phases where
    // no task reads the layer (see TrainingStep).

    /// Columns per panel: a multiple of every kernel path's tile width.
    static var panelWidth: Int { 32 }
    private let storage: UnsafeMutableBufferPointer<T>
    /// Where layer l's panels start.
    private let offsets: [Int]
    /// At bf16: every layer's paired wᵀ, then its paired w (`BF16Pairs`).
    private let pairs: (storage: UnsafeMutableBufferPointer<UInt32>, forward: [BF16Pairs], backward: [BF16Pairs])?

    init(_ network: Network<T>, pairs: Bool = false) {
        if pairs && T.self == Float.self {
            var total = 0
            func layout(columns: Int, rows: Int) -> BF16Pairs {
                // One group of zeros after the last: a 32-column tile reads two groups.
                let group = BF16Pairs(offset: total, stride: 16 * ((rows + 1) / 2))
                total += ((columns + 15) / 16 + 1) * group.stride
                return group
            }
            let forward = network.layers.map { layout(columns: $0.outputCount, rows: $0.inputCount) }
            // The first layer passes no δ down: no δ·W, no pairs of its w.
            let backward = network.layers.enumerated().map { l, layer in l == 0 ? BF16Pairs(offset: 0, stride: 0)
                                                                                : layout(columns: layer.inputCount, rows: layer.outputCount) }
            let storage = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: total)
            storage.initialize(repeating: 0)
            self.pairs = (storage, forward, backward)
        } else {
            self.pairs = nil
        }
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

    deinit {
        storage.deallocate()
        pairs?.storage.deallocate()
    }

    private static func panelCount(_ layer: Dense) -> Int { (layer.outputCount + panelWidth - 1) / panelWidth }

    /// Layer l's panels.
    func panels(_ l: Int, _ layer: Dense) -> TransposedPanels<T> {
        TransposedPanels(base: storage.baseAddress! + offsets[l], ldb: Self.panelWidth, panelWidth: Self.panelWidth,
                         panelStride: layer.inputCount * Self.panelWidth,
                         pairs: pairs.map { $0.storage.baseAddress! + $0.forward[l].offset }, pairsStride: pairs?.forward[l].stride ?? 0)
    }

    /// Layer l's w paired for δ·W (B = w, k = the outputs j), where the step is at bf16.
    func weightPairs(_ l: Int) -> (base: UnsafePointer<UInt32>, stride: Int)? {
        guard l > 0 else { return nil }
        return pairs.map { (UnsafePointer($0.storage.baseAddress! + $0.backward[l].offset), $0.backward[l].stride) }
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
        guard let pairs, let w = floatPointer(w + layer.weightOffset) else { return }
        // The block's pairs: j (and, for δ·W, i) start on a group of 16 and i (and j) on a pair,
        // as the update's blocks and whole layers do.
        precondition(outputs.lowerBound % 32 == 0 && inputs.lowerBound % 16 == 0, "block \(outputs) × \(inputs) cuts a pair group")
        let base = pairs.storage.baseAddress!, (forward, backward) = (pairs.forward[l], pairs.backward[l])
        for g in (outputs.lowerBound / 16)..<((outputs.upperBound + 15) / 16) {
            let (panel, column) = (16 * g).quotientAndRemainder(dividingBy: panels.panelWidth)
            let rows = panels.base + panel * panels.panelStride + inputs.lowerBound * panels.ldb + column
            let target = base + forward.offset + g * forward.stride + 16 * (inputs.lowerBound / 2)
            backprop_bf16_pack_pairs(floatPointer(rows)!, panels.ldb, inputs.count, min(16, layer.outputCount - 16 * g), target)
        }
        for g in (inputs.lowerBound / 16)..<((inputs.upperBound + 15) / 16) where l > 0 {
            let target = base + backward.offset + g * backward.stride + 16 * (outputs.lowerBound / 2)
            backprop_bf16_pack_pairs(w + outputs.lowerBound * n + 16 * g, n, outputs.count, min(16, n - 16 * g), target)
        }
    }
}

/// Where one layer's paired weights lie in `TransposedWeights`' pair storage:
/// group g of 16 columns at offset + g·stride, 16 words per pair of rows.
struct BF16Pairs: Sendable {
    let offset: Int, stride: Int
}

/// One layer's wᵀ as `TransposedWeights` stores it: wᵀ_ij at
/// base[(j / panelWidth)·panelStride + i·ldb + j % panelWidth].
struct TransposedPanels<T>: @unchecked Sendable {
    // Sendable: read-only while tasks read it (see TransposedWeights).
    let base: UnsafeMutablePointer<T>
    let ldb: Int, panelWidth: Int, panelStride: Int
    /// At bf16: wᵀ paired as the bf16 product reads B (`TransposedWeights`), group stride `pairsStride`.
    var pairs: UnsafeMutablePointer<UInt32>? = nil, pairsStride = 0
}
