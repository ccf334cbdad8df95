/// Global gradient-norm clipping (Keras' `clipnorm`, PyTorch's
/// `clip_grad_norm_`, Lightning's `gradient_clip_val`): before the update,
/// the step's gradient g — (1/B) Σ_n ∂E^n/∂w over every weight and bias, as
/// the optimizer would receive it — becomes
///
///     g ← g · min(1, C / ‖g‖),   ‖g‖ = (Σ_i g_i²)^½,
///
/// so that no step moves along a gradient longer than C; the direction is
/// kept. It is not the gradient of any E (unlike DP-SGD's per-sample clip,
/// which bounds each ∂E^n/∂w): a rescaling of the step, one factor for all
/// parameters.
///
/// The same bits on any worker or rank count: ‖g‖² is Σ_c s_c over fixed
/// chunks c of `chunkSize` parameters, s_c = Σ_{i∈c} g_i² summed in Double in
/// index order (each g_i² is exact in Double), the s_c added in chunk order.
/// Workers take whole chunks, and so do ranks (`ShardPlan.parameterSlice`).
/// The factor is rounded to Float once and g_i · factor is one rounding, so
/// a gradient shorter than C is left exactly as it was.
public struct GradientNormClip: Sendable, Equatable {
    /// C, the longest gradient a step follows.
    public let maximumNorm: Double

    /// The parameters whose squares are summed together, in index order.
    public static let chunkSize = 4096

    public init(maximumNorm: Double) {
        self.maximumNorm = maximumNorm
    }

    /// s_c = Σ_{i∈c} g_i² of each chunk of `range`, in chunk order, a group
    /// of chunks a task on the workers of `team` (`DistributedStep`'s slice).
    /// - Precondition: `range` starts on a chunk boundary.
    static func chunkSquares(_ g: UnsafePointer<Float>, range: Range<Int>, on team: Team) -> [Double] {
        precondition(range.lowerBound % chunkSize == 0, "\(range) does not start on a chunk of \(chunkSize)")
        let chunks = (range.count + chunkSize - 1) / chunkSize
        var squares = [Double](repeating: 0, count: chunks)
        let gradient = SharedPointer(base: UnsafeMutablePointer(mutating: g))
        squares.withUnsafeMutableBufferPointer { s in
            let sums = SharedPointer(base: s.baseAddress!)
            // Each group writes only its own chunks' slots.
            team.forEach((chunks + groupSize - 1) / groupSize) { group in
                sumSquares(gradient.base, range: range, group: group, into: sums.base)
            }
        }
        return squares
    }

    /// Chunks whose sums run side by side, one a lane.
    static let groupSize = 8

    /// s_c of the chunks of group `group` of `range` (chunks 8·group …), into
    /// `sums`[c]. Each s_c is its own chain in index order, one lane each:
    /// the same bits as a loop over the chunk, eight chains in flight at once
    /// (one chain alone waits on each add's latency).
    static func sumSquares(_ g: UnsafePointer<Float>, range: Range<Int>, group: Int, into sums: UnsafeMutablePointer<Double>) {
        typealias Lanes = SIMD8<Double>
        let chunks = (range.count + chunkSize - 1) / chunkSize
        let first = group * groupSize, last = min(first + groupSize, chunks)
        func length(_ c: Int) -> Int { min(chunkSize, range.count - c * chunkSize) }
        // The lanes' common length: only the range's last chunk may be short.
        let common = first < last ? length(last - 1) : 0
        let base = g + range.lowerBound + first * chunkSize
        var sum = Lanes.zero
        if last - first == groupSize {
            for i in 0..<common {
                var x = Lanes.zero
                for lane in 0..<groupSize { x[lane] = Double(base[lane * chunkSize + i]) }
                sum += x * x
            }
        } else {
            for lane in 0..<(last - first) {
                for i in 0..<common { sum[lane] += Double(base[lane * chunkSize + i]) * Double(base[lane * chunkSize + i]) }
            }
        }
        for c in first..<last {
            var s = sum[c - first]
            let chunk = base + (c - first) * chunkSize
            for i in common..<length(c) { s += Double(chunk[i]) * Double(chunk[i]) }
            sums[c] = s
        }
    }

    /// min(1, C/‖g‖) from every chunk's s_c, in chunk order; 1 for g = 0.
    func factor(chunkSquares: UnsafeBufferPointer<Double>) -> Float {
        let norm = chunkSquares.reduce(0, +).squareRoot()
        return norm > maximumNorm ? Float(maximumNorm / norm) : 1
    }

    /// min(1, C/‖g‖) from every chunk's s_c, in chunk order; 1 for g = 0.
    func factor(chunkSquares: [Double]) -> Float {
        chunkSquares.withUnsafeBufferPointer { factor(chunkSquares: $0) }
    }
}

extension TrainingStep where T == Float {
    /// The update of a clipped step (one process), as one run of the step's
    /// team: every chunk's s_c (groups of chunks), then `rule` along
    /// g · min(1, C/‖g‖) over the step's own gradient blocks, each refreshing
    /// its block of wᵀ while it is in cache (`apply(_:layer:…)`, the step's
    /// update tail). Each task takes the factor from all the s_c, in chunk
    /// order: the same value on every task. The rule is element-wise, so the
    /// same bits as one pass.
    /// - Returns: the factor min(1, C/‖g‖).
    func applyClipped(_ rule: UpdateRule<Float>, clip: GradientNormClip, to w: UnsafeMutablePointer<Float>,
                      along g: UnsafePointer<Float>) -> Float {
        let count = parameterCount, chunks = (count + GradientNormClip.chunkSize - 1) / GradientNormClip.chunkSize
        let squares = UnsafeMutableBufferPointer<Double>.allocate(capacity: chunks)
        defer { squares.deallocate() }
        squares.initialize(repeating: 0)
        let job = ClippedUpdate(step: self, rule: rule.on(kernel), clip: clip, w: SharedPointer(base: w),
                                g: SharedPointer(base: UnsafeMutablePointer(mutating: g)),
                                squares: SharedPointer(base: squares.baseAddress!), chunks: chunks)
        tailCounters.phaseEnds[0] = job.groups
        tailCounters.phaseEnds[1] = job.groups + job.blocks.count
        runPhases(2, team: team, counters: tailCounters, job)
        return clip.factor(chunkSquares: UnsafeBufferPointer(squares))
    }
}

/// A clipped step's update as phases of the step's team: the chunks' Σ g_i²,
/// then the update tail over each gradient block.
private struct ClippedUpdate: PhasedJob, @unchecked Sendable {
    // Sendable: each task writes only its own chunks' s_c, or its own block
    // of w, of the optimizer's state and of wᵀ; the second phase reads what
    // the first wrote.
    let step: TrainingStep<Float>
    let rule: UpdateRule<Float>
    let clip: GradientNormClip
    let w: SharedPointer<Float>, g: SharedPointer<Float>, squares: SharedPointer<Double>
    let chunks: Int
    /// The step's gradient blocks of every layer (`StepPlan.gradientGrid`).
    let blocks: [(layer: Int, outputs: Range<Int>, inputs: Range<Int>)]

    init(step: TrainingStep<Float>, rule: UpdateRule<Float>, clip: GradientNormClip, w: SharedPointer<Float>,
         g: SharedPointer<Float>, squares: SharedPointer<Double>, chunks: Int) {
        (self.step, self.rule, self.clip, self.w, self.g, self.squares, self.chunks) = (step, rule, clip, w, g, squares, chunks)
        blocks = step.layers.enumerated().flatMap { l, layer in
            let grid = StepPlan.gradientGrid(outputs: layer.outputCount, inputs: layer.inputCount)
            return (0..<grid.count).map { t in
                let block = grid.block(t)
                return (l, block.rows, block.columns)
            }
        }
    }

    /// Tasks of the first phase: groups of chunks.
    var groups: Int { (chunks + GradientNormClip.groupSize - 1) / GradientNormClip.groupSize }

    func run(worker: Int, phase: Int, task: Int) {
        if phase == 0 {
            GradientNormClip.sumSquares(g.base, range: 0..<step.parameterCount, group: task, into: squares.base)
            return
        }
        let factor = clip.factor(chunkSquares: UnsafeBufferPointer(start: squares.base, count: chunks))
        let (l, j, i) = blocks[task]
        let layer = step.layers[l]
        step.apply(rule, layer: l, outputs: j, inputs: i,
                   along: g.base + layer.weightOffset + j.lowerBound * layer.inputCount + i.lowerBound, ldg: layer.inputCount,
                   biases: i.lowerBound == 0 ? g.base + layer.biasOffset + j.lowerBound : nil, scaledBy: factor, to: w.base)
    }
}
