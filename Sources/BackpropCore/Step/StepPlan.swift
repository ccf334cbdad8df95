/// What runs in one training step, in what order: a list of phases, each of
/// one or two parts that run side by side, each part a grid of fixed tasks.
/// Built from the shapes alone (layers, batch rows, shard size, mode), so
/// the tasks, and with them every bit, are the same on any worker count.
///
/// For L layers, a plain step (`phases(layerCount:perSample:)`):
///
///     gather                              rows of z_0 and t
///     forward 0 … forward L−1             a = z·wᵀ + b, then h
///     loss                                δ_L and Σ_{n∈s} E^n, per shard
///     propagate L−1                       δ_{L−1} = h'(a) ⊙ δ_L·W_{L−1}
///     update L−1 ∥ propagate L−2          ∂E/∂W_{L−1} = Σ_s δ_sᵀ·Z_s → rule, beside the next δ
///     …
///     update 1 ∥ update 0
///
/// A layer's gradient is taken in the phase after its δ is complete, and no
/// task of that phase reads its w. With per-sample work (DP-SGD's norms and
/// clipping), every δ comes first, then one phase of norms, then the
/// gradients two layers a phase. Under `mpirun` the gradient tasks write
/// each shard's chain out (`shardChains`) instead of updating.
struct StepPlan {
    /// What a part of a phase does; its tasks are the blocks of its grid.
    enum Work: Equatable {
        case gather, forward(Int), loss, propagate(Int), norms
        /// Layer l's gradient blocks, scaled and handed to the update rule.
        case update(Int)
        /// Layer l's gradient blocks, one chain per shard, written to the sink.
        case shardChains(Int)

        /// Tasks are blocks of `blockRows` batch rows (and of columns).
        var isRowBlocked: Bool {
            switch self {
            case .gather, .forward, .propagate, .norms: return true
            case .loss, .update, .shardChains: return false
            }
        }
    }

    /// Where a step's gradient blocks go.
    enum Destination {
        /// To the update rule, one block at a time (a process of its own).
        case optimizer
        /// To each shard's own chain, for the job's owner of each slice (`DistributedStep`).
        case shardChains
    }

    struct Part {
        let work: Work
        let grid: BlockGrid
    }

    /// One phase: one part, or two that run side by side. Its tasks are
    /// claimed in `claims` order when it has one (a phase that waits for all
    /// of the phase before: the longest tasks first, so that the phase ends
    /// on short ones and no worker waits long for the last), else `first`'s
    /// tasks first, each part's in grid order (row blocks in order, for the
    /// phases that start on rows as they come).
    struct Phase {
        let first: Part
        let second: Part?
        /// Claim t → (the task is `first`'s, its index in the part's grid).
        let claims: [(inFirst: Bool, task: Int)]?

        init(first: Part, second: Part?) {
            self.first = first
            self.second = second
            let parts = [first] + (second.map { [$0] } ?? [])
            guard parts.allSatisfy({ !$0.work.isRowBlocked && $0.work != .loss }) else {
                claims = nil
                return
            }
            // Longest first: a gradient task's products are rows × columns of w over the whole batch.
            let tasks = parts.enumerated().flatMap { p, part in
                (0..<part.grid.count).map { t in
                    let block = part.grid.block(t)
                    return (inFirst: p == 0, task: t, size: block.rows.count * block.columns.count)
                }
            }
            claims = tasks.enumerated().sorted { a, b in
                a.element.size != b.element.size ? a.element.size > b.element.size : a.offset < b.offset
            }.map { (inFirst: $0.element.inFirst, task: $0.element.task) }
        }

        var taskCount: Int { first.grid.count + (second?.grid.count ?? 0) }

        /// The part of the task claimed `t`-th, and the task's index in that part's grid.
        func locate(_ t: Int) -> (part: Part, task: Int) {
            if let claims {
                let claim = claims[t]
                return (claim.inFirst ? first : second!, claim.task)
            }
            return t < first.grid.count ? (first, t) : (second!, t - first.grid.count)
        }

        /// The part whose tasks are row blocks, if any.
        var rowPart: Part? {
            if first.work.isRowBlocked { return first }
            if let second, second.work.isRowBlocked { return second }
            return nil
        }
    }

    /// Rows of a forward, backward or gather task, and columns of a forward or backward task.
    static var blockRows: Int { 64 }
    static var blockColumns: Int { 64 }
    /// Rows (outputs j) and columns (inputs i) of w in one gradient task.
    static var gradientRows: Int { 32 }
    static var gradientColumns: Int { 256 }

    /// The phases of a step of `L` layers, as work alone (see the type's comment).
    static func phases(layerCount L: Int, perSample: Bool, destination: Destination) -> [[Work]] {
        func gradient(_ l: Int) -> Work { destination == .optimizer ? .update(l) : .shardChains(l) }
        var phases: [[Work]] = [[.gather]] + (0..<L).map { [.forward($0)] } + [[.loss]]
        if perSample {
            phases += (1..<max(L, 1)).reversed().map { [.propagate($0)] }
            phases.append([.norms])
            phases += stride(from: L - 1, through: 0, by: -2).map { top in
                top >= 1 ? [gradient(top), gradient(top - 1)] : [gradient(top)]
            }
        } else {
            if L >= 2 { phases.append([.propagate(L - 1)]) }
            // Layer l's gradient beside δ_{l−1}, for l = L−1 down to 2.
            phases += stride(from: L - 1, through: 2, by: -1).map { [gradient($0), .propagate($0 - 1)] }
            phases.append(L >= 2 ? [gradient(1), gradient(0)] : [gradient(0)])
        }
        return phases
    }

    /// The most phases a step of `L` layers has.
    static func maximumPhases(layerCount L: Int) -> Int { 3 * L + 3 }

    /// The grid of layer l's weight gradient blocks, w [outputs, inputs].
    static func gradientGrid(outputs: Int, inputs: Int) -> BlockGrid {
        BlockGrid(rows: outputs, columns: inputs, blockRows: gradientRows, blockColumns: gradientColumns)
    }

    let phases: [Phase]
    /// The first phase after the loss: from there on, tasks use the whole loss.
    let firstBackwardPhase: Int

    /// The plan of a step over `rows` samples of a network of `sizes` (n_0 … n_L).
    init(sizes: [Int], rows: Int, shardSize: Int, perSample: Bool, destination: Destination) {
        let rowBlocks = BlockGrid(rows: rows, columns: 1, blockRows: Self.blockRows, blockColumns: 1)
        func part(_ work: Work) -> Part {
            switch work {
            case .gather, .norms:
                return Part(work: work, grid: rowBlocks)
            case .forward(let l):
                return Part(work: work, grid: BlockGrid(rows: rows, columns: sizes[l + 1], blockRows: Self.blockRows,
                                                        blockColumns: Self.blockColumns))
            case .loss:
                return Part(work: work, grid: BlockGrid(rows: rows, columns: 1, blockRows: shardSize, blockColumns: 1))
            case .propagate(let l):
                return Part(work: work, grid: BlockGrid(rows: rows, columns: sizes[l], blockRows: Self.blockRows,
                                                        blockColumns: Self.blockColumns))
            case .update(let l), .shardChains(let l):
                return Part(work: work, grid: Self.gradientGrid(outputs: sizes[l + 1], inputs: sizes[l]))
            }
        }
        let work = Self.phases(layerCount: sizes.count - 1, perSample: perSample, destination: destination)
        phases = work.map { Phase(first: part($0[0]), second: $0.count > 1 ? part($0[1]) : nil) }
        firstBackwardPhase = work.firstIndex { $0 == [.loss] }! + 1
    }

    // Row-block dependencies (units of `blockRows` rows): a row-blocked task
    // needs only the same rows of the phase before (the inputs it gathers,
    // the layer below's z, the layer above's δ), each complete when all of
    // that phase's column blocks of those rows are done. The loss needs the
    // rows of its shard. The first backward phase needs the whole loss (its
    // tasks check that it is finite), and a gradient task all of the phase
    // before (every δ of the batch, and no task left that reads its w).

    /// What task `t` of phase p needs of phase p − 1: nil for all of it (`PhasedJob.needs`).
    func needs(phase p: Int, task t: Int) -> (rowBlocks: Range<Int>, tasksPerBlock: Int)? {
        let (part, task) = phases[p].locate(t)
        guard part.work.isRowBlocked || part.work == .loss, let previous = phases[p - 1].rowPart else { return nil }
        let rows = part.grid.block(task).rows
        return ((rows.lowerBound / Self.blockRows)..<((rows.upperBound + Self.blockRows - 1) / Self.blockRows),
                previous.grid.columnBlocks)
    }

    /// The row block task `t` of phase p completes, if it is row-blocked (`PhasedJob.marks`).
    func marks(phase p: Int, task t: Int) -> Int? {
        let (part, task) = phases[p].locate(t)
        return part.work.isRowBlocked ? part.grid.block(task).rows.lowerBound / Self.blockRows : nil
    }
}

/// A matrix of `rows` × `columns` cut into blocks of `blockRows` ×
/// `blockColumns` (the last ones shorter), numbered row-major.
struct BlockGrid {
    let rows: Int, columns: Int, blockRows: Int, blockColumns: Int

    var rowBlocks: Int { (rows + blockRows - 1) / blockRows }
    var columnBlocks: Int { (columns + blockColumns - 1) / blockColumns }
    var count: Int { rowBlocks * columnBlocks }

    /// The rows and columns of block t.
    func block(_ t: Int) -> (rows: Range<Int>, columns: Range<Int>) {
        let (r, c) = t.quotientAndRemainder(dividingBy: columnBlocks)
        return (r * blockRows..<min((r + 1) * blockRows, rows), c * blockColumns..<min((c + 1) * blockColumns, columns))
    }
}
