// The task bodies of a training step, one function per kind of work in
// `StepPlan.Work`, and the job that hands each claimed task to its body.
// Shapes: z_l, δ_l [rows, n_l] row-major; w_l [n_{l+1}, n_l] at the layer's
// offset in the parameters.

extension TrainingStep {
    /// Gathers the rows `r` of the batch: z_0 (augmented, and with input
    /// dropout z̃_0), the targets (smoothed, with label smoothing) and, when
    /// distilling, the teacher's probabilities at temperature T.
    func gather(_ r: Range<Int>, data: Batch, batch: UnsafeMutablePointer<Int32>, key: StepKey) {
        let targets = buffers.targets + r.lowerBound * outputWidth
        let teacher = buffers.teacher.map { $0 + r.lowerBound * outputWidth }
        let width = layers[0].inputCount
        data.data.gather(UnsafeBufferPointer(start: batch + r.lowerBound, count: r.count),
                         firstRow: data.layout == .batchOrder ? r.lowerBound : nil,
                         inputs: buffers.z[0] + r.lowerBound * width, targets: targets, outputCount: outputWidth,
                         teacher: teacher, augmentation: augmentation, epoch: key.epoch)
        if labelSmoothing > 0 { Loss.smoothTargets(targets, rows: r.count, width: outputWidth, smoothing: labelSmoothing) }
        if let teacher, let distillation {
            Loss.temper(teacher, rows: r.count, width: outputWidth, temperature: T(distillation.temperature))
        }
        if let masks, masks.masks(0) {
            masks.apply(layer: 0, step: key.step, to: buffers.z[0] + r.lowerBound * width, rows: r, columns: 0..<width,
                        stride: width, samples: batch)
        }
    }

    var outputWidth: Int { layers[layers.count - 1].outputCount }

    /// a_j = Σ_i w_ji z_i + b_j, then z_j = h(a_j) (with dropout z̃_j =
    /// m_j z_j/(1 − p), Dropout.swift), for rows `r` and outputs `c` of layer l.
    func forward(_ l: Int, rows r: Range<Int>, columns c: Range<Int>, w: UnsafePointer<T>,
                 batch: UnsafeMutablePointer<Int32>, key: StepKey) {
        let layer = layers[l]
        let output = buffers.z[l + 1] + r.lowerBound * layer.outputCount
        layer.forward(buffers.z[l] + r.lowerBound * layer.inputCount, rows: r.count, columns: c,
                      parameters: w, transposedWeights: transposedWeights.panels(l, layer),
                      into: output, activate: l < layers.count - 1, products: products)
        if let masks, masks.masks(l + 1) {
            masks.apply(layer: l + 1, step: key.step, to: output, rows: r, columns: c, stride: layer.outputCount, samples: batch)
        }
    }

    /// δ_k = g'(a_k) ∂E^n/∂y_k and Σ_{n∈s} E^n for shard s (rows `r`).
    func outputErrors(shard s: Int, rows r: Range<Int>) {
        let L = layers.count, width = outputWidth
        if let distillation, let teacher = buffers.teacher {
            buffers.errorSums[s] = Loss.distillationErrors(
                buffers.z[L] + r.lowerBound * width, targets: buffers.targets + r.lowerBound * width,
                teacher: teacher + r.lowerBound * width, rows: r.count, width: width,
                weight: T(distillation.weight), temperature: T(distillation.temperature), delta: buffers.delta[L] + r.lowerBound * width)
            return
        }
        if let classWeights {
            buffers.errorSums[s] = Loss.classWeightedErrors(
                buffers.z[L] + r.lowerBound * width, targets: buffers.targets + r.lowerBound * width, weights: classWeights,
                rows: r.count, width: width, delta: buffers.delta[L] + r.lowerBound * width)
            return
        }
        buffers.errorSums[s] = loss.outputErrors(
            buffers.z[L] + r.lowerBound * width, targets: buffers.targets + r.lowerBound * width, rows: r.count,
            width: width, outputActivation: layers[L - 1].activation, delta: buffers.delta[L] + r.lowerBound * width)
    }

    /// δ_j = h'(a_j) Σ_k w_kj δ_k, i.e. δ_l = h'(a_l) ⊙ (δ_{l+1}·W_l), for rows `r` and columns `c` of δ_l
    /// (with dropout, × m_j/(1 − p) too: Dropout.swift).
    func propagate(_ l: Int, rows r: Range<Int>, columns c: Range<Int>, w: UnsafePointer<T>,
                   batch: UnsafeMutablePointer<Int32>, key: StepKey) {
        let layer = layers[l]
        let delta = buffers.delta[l] + r.lowerBound * layer.inputCount
        layer.propagate(delta: buffers.delta[l + 1] + r.lowerBound * layer.outputCount,
                        input: buffers.z[l] + r.lowerBound * layer.inputCount, rows: r.count, columns: c,
                        parameters: w, into: delta, inputActivation: layers[l - 1].activation, products: products,
                        pairs: transposedWeights.weightPairs(l))
        if let masks, masks.masks(l) {
            masks.apply(layer: l, step: key.step, to: delta, rows: r, columns: c, stride: layer.inputCount, samples: batch)
        }
    }

    /// ∂E/∂w_ji = Σ_s Σ_{n∈s} δ_j z_i (and ∂E/∂b_j = Σ_n δ_j) for layer l's w
    /// rows `j` and columns `i` (the biases with the first columns) over the
    /// whole batch, shard chains added in shard order; with `perSample`, its
    /// norm and noise; then handed with `scale` to the update tail (`apply`).
    /// Returns the nanosecond at which the product (and noise) ended.
    func update(_ l: Int, outputs j: Range<Int>, inputs i: Range<Int>, worker: Int,
                scale: T, rule: UpdateRule<T>, w: UnsafeMutablePointer<T>,
                perSample: PerSampleOptions?, task: Int) -> UInt64 {
        let layer = layers[l]
        let (g, gb) = buffers.gradientBlock(worker: worker)
        let withBiases = i.lowerBound == 0
        let delta = buffers.delta[l + 1], z = buffers.z[l]
        if rows > 0 {
            layer.weightGradientProduct(delta: delta, input: z, rows: rows, segment: shardSize,
                                        outputs: j, inputs: i, into: g, ldg: i.count, products: products)
            if withBiases {
                biasGradient(delta, rows: rows, width: layer.outputCount, segment: shardSize, columns: j, into: gb)
            }
        } else {
            // An empty (Poisson) batch: no gradient, only the noise below.
            g.update(repeating: 0, count: j.count * i.count)
            gb.update(repeating: 0, count: j.count)
        }
        if let perSample {
            addPerSampleWork(perSample, layer: l, outputs: j, inputs: i, g: g, gb: withBiases ? gb : nil, task: task)
        }
        let productEnd = monotonicNanoseconds()
        if recorded != nil {
            for (row, jj) in j.enumerated() {
                let first = layer.weightOffset + jj * layer.inputCount + i.lowerBound
                record(g + row * i.count, scaledBy: scale, at: first..<(first + i.count))
            }
            if withBiases { record(gb, scaledBy: scale, at: (layer.biasOffset + j.lowerBound)..<(layer.biasOffset + j.upperBound)) }
        }
        apply(rule, layer: l, outputs: j, inputs: i, along: g, ldg: i.count, biases: withBiases ? gb : nil, scaledBy: scale, to: w)
        return productEnd
    }

    /// The update of one block of layer l, the tail of every route to the
    /// parameters in one process: `rule` over w's rows `j`, columns `i` (g's
    /// row r at `g` + r·ldg) and, given `biases`, over b_j, along g · s; then
    /// wᵀ refreshed for the block while it is in cache. The rule scales each
    /// g_i as it reads it: no pass of its own over g.
    @_specialize(where T == Float)
    func apply(_ rule: UpdateRule<T>, layer l: Int, outputs j: Range<Int>, inputs i: Range<Int>,
               along g: UnsafePointer<T>, ldg: Int, biases: UnsafePointer<T>?, scaledBy s: T, to w: UnsafeMutablePointer<T>) {
        let layer = layers[l]
        for (row, jj) in j.enumerated() {
            let first = layer.weightOffset + jj * layer.inputCount + i.lowerBound
            rule.apply(w, along: g + row * ldg, scaledBy: s, range: first..<(first + i.count))
        }
        if let biases {
            let first = layer.biasOffset + j.lowerBound
            rule.apply(w, along: biases, scaledBy: s, range: first..<(first + j.count))
        }
        // The copying rule changes no w: wᵀ is current (the clip's tail refreshes it after its update).
        if rule.kind != .copy { transposedWeights.refresh(l, layer, from: w, outputs: j, inputs: i) }
    }

    /// recorded[range] ← g · s, as the rule reads g, when `recordsGradient` is set.
    private func record(_ g: UnsafePointer<T>, scaledBy s: T, at range: Range<Int>) {
        guard let recorded else { return }
        for (e, i) in range.enumerated() { recorded[i] = g[e] * s }
    }

    /// Each shard's own chain Σ_{n∈s} δ_j z_i for layer l's w rows `j` and
    /// columns `i` (and, with the first columns, Σ_{n∈s} δ_j), into shard s's
    /// gradient at `sink` + s·parameterCount.
    func shardChains(_ l: Int, outputs j: Range<Int>, inputs i: Range<Int>, sink: UnsafeMutablePointer<T>) {
        let layer = layers[l]
        for s in 0..<shardCount {
            let r = (s * shardSize)..<min((s + 1) * shardSize, rows)
            let g = sink + s * parameterCount
            let delta = buffers.delta[l + 1] + r.lowerBound * layer.outputCount
            layer.weightGradientProduct(delta: delta, input: buffers.z[l] + r.lowerBound * layer.inputCount,
                                        rows: r.count, segment: shardSize, outputs: j, inputs: i,
                                        into: g + layer.weightOffset + j.lowerBound * layer.inputCount + i.lowerBound,
                                        ldg: layer.inputCount, products: products)
            if i.lowerBound == 0 {
                biasGradient(delta, rows: r.count, width: layer.outputCount, segment: shardSize, columns: j,
                             into: g + layer.biasOffset + j.lowerBound)
            }
        }
    }
}

/// One step, as the workers see it: the plan, the batch, the parameters and
/// where the gradients go.
struct StepJob<T: NetworkScalar>: PhasedJob, @unchecked Sendable {
    // Sendable by the step's rules: tasks of one phase write disjoint blocks;
    // a phase reads only what earlier phases wrote; w and wᵀ of a layer are
    // written only in a phase after every task that reads them.

    /// Where the gradient blocks go (`StepPlan.Destination`, with what each needs).
    enum Destination {
        case optimizer(rule: UpdateRule<T>, scale: T)
        case shardChains(sink: SharedPointer<T>)

        var kind: StepPlan.Destination {
            switch self {
            case .optimizer: return .optimizer
            case .shardChains: return .shardChains
            }
        }
    }

    let step: TrainingStep<T>
    let plan: StepPlan
    /// The batch's rows.
    let data: Batch
    let batch: SharedPointer<Int32>
    let w: SharedPointer<T>
    let destination: Destination
    /// Per-sample norms, clipping and noise: every δ first, then a phase of norms.
    let perSample: PerSampleOptions?
    /// What dropout's masks and augmentation are keyed by.
    let key: StepKey

    func needs(phase: Int, task: Int) -> (rowBlocks: Range<Int>, tasksPerBlock: Int)? { plan.needs(phase: phase, task: task) }

    func marks(phase: Int, task: Int) -> Int? { plan.marks(phase: phase, task: task) }

    @_specialize(where T == Float)
    func run(worker: Int, phase: Int, task: Int) {
        // A diverged step changes nothing: every backward task sees the
        // whole loss (the first backward phase waits for all of it).
        if phase >= plan.firstBackwardPhase, !step.errorSum.isFinite { return }
        let (part, t) = plan.phases[phase].locate(task)
        let (rows, columns) = part.grid.block(t)
        let start = monotonicNanoseconds()
        let timer = step.timer
        switch part.work {
        case .gather:
            step.gather(rows, data: data, batch: batch.base, key: key)
            timer.add(worker: worker, .conversion, monotonicNanoseconds() &- start)
        case .forward(let l):
            step.forward(l, rows: rows, columns: columns, w: w.base, batch: batch.base, key: key)
            timer.add(worker: worker, .forward, monotonicNanoseconds() &- start)
        case .loss:
            step.outputErrors(shard: t, rows: rows)
            timer.add(worker: worker, .forward, monotonicNanoseconds() &- start)
        case .propagate(let l):
            step.propagate(l, rows: rows, columns: columns, w: w.base, batch: batch.base, key: key)
            timer.add(worker: worker, .backward, monotonicNanoseconds() &- start)
        case .norms:
            step.clipSamples(rows: rows, clip: T(perSample?.clip ?? .infinity))
            timer.add(worker: worker, .backward, monotonicNanoseconds() &- start)
        case .shardChains(let l):
            guard case .shardChains(let sink) = destination else { preconditionFailure("shard chains without a sink") }
            step.shardChains(l, outputs: rows, inputs: columns, sink: sink.base)
            timer.add(worker: worker, .backward, monotonicNanoseconds() &- start)
        case .update(let l):
            guard case .optimizer(let rule, let scale) = destination else { preconditionFailure("an update without a rule") }
            let productEnd = step.update(l, outputs: rows, inputs: columns, worker: worker,
                                         scale: scale, rule: rule, w: w.base, perSample: perSample, task: t)
            timer.add(worker: worker, .backward, productEnd &- start)
            timer.add(worker: worker, .update, monotonicNanoseconds() &- productEnd)
        }
    }
}
