/// What a step does per sample besides summing its gradients (issue 15):
/// the norms ‖∂E^n/∂w‖ from δ and z, each gradient clipped to a bound, and
/// Gaussian noise added to the sum (DP-SGD, Abadi et al. 2016, algorithm 1).
public struct PerSampleOptions: Sendable, Equatable {
    /// Each ∂E^n/∂w is scaled by min(1, clip/‖∂E^n/∂w‖); ∞ measures only.
    public var clip: Double
    /// σ·C, the standard deviation of the noise added to each summed
    /// gradient element; 0: none. Keyed by (seed, step, parameter index).
    public var noiseStandardDeviation: Double
    public var noiseSeed: UInt64
    public var step: UInt64
    /// Whether the step also measures ‖Σ_n c_n ∂E^n/∂w‖² (`lastGradientSquaredNorm`).
    public var measuresGradientNorm: Bool

    public init(clip: Double = .infinity, noiseStandardDeviation: Double = 0, noiseSeed: UInt64 = 0, step: UInt64 = 0,
                measuresGradientNorm: Bool = true) {
        self.clip = clip
        self.noiseStandardDeviation = noiseStandardDeviation
        self.noiseSeed = noiseSeed
        self.step = step
        self.measuresGradientNorm = measuresGradientNorm
    }
}

// MARK: - The per-sample tasks

extension TrainingStep {
    /// For each sample n of rows `r`: ‖∂E^n/∂w‖² = Σ_l ‖δ_n^{l+1}‖² (‖z_n^l‖² + 1)
    /// (∂E^n/∂W_l = δ_n^{l+1} z_n^lᵀ is an outer product, whose norm is the
    /// product of the norms; the bias adds ‖δ_n^{l+1}‖²), its root kept, and
    /// its δ rows scaled by c_n = min(1, C/‖∂E^n/∂w‖): since every gradient is
    /// linear in δ, every later product then sums c_n ∂E^n/∂w.
    func clipSamples(rows r: Range<Int>, clip: T) {
        let z = buffers.z, delta = buffers.delta
        for n in r {
            var squared: T = 0
            for (l, layer) in layers.enumerated() {
                let δδ = squaredNorm(delta[l + 1] + n * layer.outputCount, count: layer.outputCount)
                let zz = squaredNorm(z[l] + n * layer.inputCount, count: layer.inputCount) + 1
                squared += δδ * zz
            }
            let norm = squared.squareRoot()
            buffers.sampleNorms[n] = norm
            guard norm > clip else { continue }
            let c = clip / norm
            for (l, layer) in layers.enumerated() {
                let d = delta[l + 1] + n * layer.outputCount
                for j in 0..<layer.outputCount { d[j] *= c }
            }
        }
    }

    /// DP-SGD's work on one summed gradient block of layer l (outputs `j`,
    /// inputs `i`, `g` [j.count, i.count] and, with the first columns, the
    /// biases `gb`), before it is scaled: its Σ g² kept for the norm of the
    /// clipped sum, then N(0, σ²C²) added to each element, keyed by the
    /// element's parameter index so any split of the blocks draws the same noise.
    func addPerSampleWork(_ perSample: PerSampleOptions, layer l: Int, outputs j: Range<Int>, inputs i: Range<Int>,
                          g: UnsafeMutablePointer<T>, gb: UnsafeMutablePointer<T>?, task: Int) {
        let layer = layers[l]
        if perSample.measuresGradientNorm {
            var squares = Double(squaredNorm(g, count: j.count * i.count))
            if let gb { squares += Double(squaredNorm(gb, count: j.count)) }
            buffers.blockSquares[buffers.blockSquareOffsets[l] + task] = squares
        }
        guard perSample.noiseStandardDeviation > 0 else { return }
        let σC = Float(perSample.noiseStandardDeviation)
        for (row, jj) in j.enumerated() {
            KeyedRandom.addNormalNoise(to: g + row * i.count, count: i.count,
                                       first: layer.weightOffset + jj * layer.inputCount + i.lowerBound,
                                       standardDeviation: σC, seed: perSample.noiseSeed, step: perSample.step)
        }
        if let gb {
            KeyedRandom.addNormalNoise(to: gb, count: j.count, first: layer.biasOffset + j.lowerBound,
                                       standardDeviation: σC, seed: perSample.noiseSeed, step: perSample.step)
        }
    }
}
