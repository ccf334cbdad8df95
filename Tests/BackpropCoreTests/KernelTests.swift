@testable import BackpropCore
import CGemm
import BackpropTestSupport
import Testing

/// The BLAS path against the plain loop, and the elementwise kernels' invariants.
struct KernelTests {
    /// Random operands for an m×n×k product; A stored [m, k], or [k, m] when `transposedA`.
    struct Operands {
        let m: Int, n: Int, k: Int, transposedA: Bool
        let a: [Float], b: [Float], c: [Float]

        init(m: Int, n: Int, k: Int, transposedA: Bool, seed: UInt64) {
            (self.m, self.n, self.k, self.transposedA) = (m, n, k, transposedA)
            var generator = SeededGenerator(seed: seed)
            a = (0..<(m * k)).map { _ in Float(generator.nextNormal()) }
            b = (0..<(k * n)).map { _ in Float(generator.nextNormal()) }
            c = (0..<(m * n)).map { _ in Float(generator.nextNormal()) }
        }

        /// B in panels of 32 columns, [k][32] each, as `TransposedWeights` stores wᵀ.
        var panelledB: [Float] {
            let panels = (n + 31) / 32
            var stored = [Float](repeating: .nan, count: max(panels * 32 * k, 1))
            for q in 0..<k { for j in 0..<n { stored[(j / 32) * 32 * k + q * 32 + j % 32] = b[q * n + j] } }
            return stored
        }

        /// C after the product of rows `rows` and columns `columns`, from
        /// `start`; B read from its panels when `panelled` (columns must then
        /// start at a multiple of 32).
        func run(_ kernel: Kernel?, segment: Int, accumulate: Bool, onto start: [Float]? = nil,
                 rows: Range<Int>? = nil, columns: Range<Int>? = nil, panelled: Bool = false) -> [Float] {
            var result = start ?? c
            let (rows, columns) = (rows ?? 0..<m, columns ?? 0..<n)
            let (rowStride, columnStride) = transposedA ? (1, m) : (k, 1)
            a.withUnsafeBufferPointer { a in
                (panelled ? panelledB : b).withUnsafeBufferPointer { b in
                    result.withUnsafeMutableBufferPointer { c in
                        var p = MatrixProduct(
                            m: rows.count, n: columns.count, k: k, segment: segment,
                            a: a.baseAddress! + rows.lowerBound * rowStride, aRowStride: rowStride, aColumnStride: columnStride,
                            b: b.baseAddress! + columns.lowerBound, ldb: n,
                            c: c.baseAddress! + rows.lowerBound * n + columns.lowerBound, ldc: n, accumulate: accumulate)
                        if panelled {
                            precondition(columns.lowerBound % 32 == 0)
                            (p.b, p.ldb, p.bPanelWidth, p.bPanelStride) = (b.baseAddress! + columns.lowerBound / 32 * 32 * k, 32, 32, 32 * k)
                        }
                        if let kernel { p.run(Products(kernel: kernel)) } else { referenceGemm(p) }
                    }
                }
            }
            return result
        }
    }

    static let available = Kernel.allCases.filter(\.isAvailable)

    @Test("every path equals the fma-chain reference bit for bit, on odd shapes, β = 0 and 1, with and without segments",
          arguments: [(1, 1, 1), (2, 3, 1), (5, 17, 7), (9, 33, 16), (13, 10, 130), (8, 48, 33), (31, 129, 3), (257, 785, 129)])
    func pathsMatchReference(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        for transposedA in [false, true] {
            let operands = Operands(m: m, n: n, k: k, transposedA: transposedA, seed: UInt64(m * 131 + n * 7 + k))
            for accumulate in [false, true] {
                for segment in Set([k, max(1, k / 3), 5]) {
                    let expected = operands.run(nil, segment: segment, accumulate: accumulate).map(\.bitPattern)
                    for kernel in Self.available {
                        for panelled in [false, true] {
                            let got = operands.run(kernel, segment: segment, accumulate: accumulate, panelled: panelled)
                            let wrong = zip(got.map(\.bitPattern), expected).filter { $0 != $1 }.count
                            #expect(wrong == 0, "\(kernel) \(m)×\(n)×\(k) Aᵀ \(transposedA) β \(accumulate ? 1 : 0) segment \(segment) B in panels \(panelled): \(wrong) elements differ")
                        }
                    }
                }
            }
        }
    }

    @Test("the reference is the ascending fma chain, and segments add their chains in order (hand-computed)")
    func referenceByHand() {
        // e = 1 + 2⁻¹²: e² = 1 + 2⁻¹¹ + 2⁻²⁴ needs 25 bits. Rounded on its own
        // it loses the 2⁻²⁴ (a tie, to even); inside an fma it survives.
        let e: Float = 1 + 0x1p-12
        func product(_ a: [Float], _ b: [Float], segment: Int, from c: Float?) -> Float {
            var out: [Float] = [c ?? .nan]
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    out.withUnsafeMutableBufferPointer { out in
                        referenceGemm(MatrixProduct(m: 1, n: 1, k: a.count, segment: segment, a: a.baseAddress!,
                                                    aRowStride: a.count, aColumnStride: 1, b: b.baseAddress!, ldb: 1,
                                                    c: out.baseAddress!, ldc: 1, accumulate: c != nil))
                    }
                }
            }
            return out[0]
        }
        // fma(1, −1, 0) = −1; fma(e, e, −1) = 2⁻¹¹ + 2⁻²⁴ (unfused: e·e − 1 = 2⁻¹¹).
        #expect(product([1, e], [-1, e], segment: 2, from: nil) == 0x1p-11 + 0x1p-24)
        #expect(e * e - 1 == 0x1p-11)
        // In the other order: fma(e, e, 0) = 1 + 2⁻¹¹, then − 1 → 2⁻¹¹.
        #expect(product([e, 1], [e, -1], segment: 2, from: nil) == 0x1p-11)
        // Segments of 1 from C = 3: the first chain 3 + 1·(−1) = 2, the second round(e²) = 1 + 2⁻¹¹, added: 3 + 2⁻¹¹.
        #expect(product([1, e], [-1, e], segment: 1, from: 3) == 3 + 0x1p-11)
        // One chain from C = −1: fma(1, −1, −1) = −2, fma(e, e, −2) = −1 + 2⁻¹¹ + 2⁻²⁴ exactly.
        #expect(product([1, e], [-1, e], segment: 2, from: -1) == -1 + 0x1p-11 + 0x1p-24)
        // Segments of 1 from C = −1: −2, then + round(e²): −1 + 2⁻¹¹. The segment length is part of the result.
        #expect(product([1, e], [-1, e], segment: 1, from: -1) == -1 + 0x1p-11)
    }

    @Test("splitting C into 1…16 row and column blocks never changes a bit, on every path")
    func blockSplits() {
        let operands = Operands(m: 37, n: 70, k: 50, transposedA: false, seed: 9)
        for kernel in Self.available {
            let whole = operands.run(kernel, segment: 16, accumulate: true).map(\.bitPattern)
            for split in 1...16 {
                var c = operands.c, panelled = operands.c
                for r in 0..<split {
                    for q in 0..<split {
                        let rows = (r * 37 / split)..<((r + 1) * 37 / split)
                        let columns = (q * 70 / split)..<((q + 1) * 70 / split)
                        c = operands.run(kernel, segment: 16, accumulate: true, onto: c, rows: rows, columns: columns)
                        // Column blocks at panel boundaries, with B in panels as the forward product reads wᵀ.
                        let panelColumns = min(70, q * 32)..<min(70, (q + 1) * 32)
                        if split <= 3, !panelColumns.isEmpty {
                            panelled = operands.run(kernel, segment: 16, accumulate: true, onto: panelled, rows: rows,
                                                    columns: panelColumns, panelled: true)
                        }
                    }
                }
                #expect(c.map(\.bitPattern) == whole, "\(kernel), \(split)×\(split) blocks")
                if split == 3 { #expect(panelled.map(\.bitPattern) == whole, "\(kernel), 3 row blocks × panels of B") }
            }
        }
    }

    @Test("softmax rows are positive and sum to 1", arguments: [0, 1, 2, 3] as [UInt64])
    func softmaxRows(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        let (rows, width) = (6, 10)
        // Large logits too: the max subtraction must keep exp finite.
        var a = (0..<(rows * width)).map { _ in Float(generator.nextNormal() * 50) }
        applySoftmax(&a, rows: rows, width: width)
        for r in 0..<rows {
            let row = a[(r * width)..<((r + 1) * width)]
            #expect(row.allSatisfy { $0 >= 0 && $0.isFinite }, "seed \(seed)")
            #expect(isClose(Double(row.reduce(0, +)), 1, .floatAgainstDouble), "seed \(seed), row \(r)")
        }
    }

    @Test("every path gives the same training gradient, bit for bit")
    func networkGradientOnEveryPath() throws {
        let problem = try gradientCheckProblem(sizes: [6, 8, 3], activation: .relu, loss: .crossEntropy, rows: 5, seed: 4)
        let network = problem.network.converted(to: Float.self)
        let inputs = problem.inputs.map { Float($0) }, targets = problem.targets.map { Float($0) }
        let expected = network.gradient(inputs: inputs, targets: targets, kernel: .portable)
        for kernel in Self.available {
            let got = network.gradient(inputs: inputs, targets: targets, kernel: kernel)
            #expect(got.error.bitPattern == expected.error.bitPattern, "\(kernel)")
            #expect(got.gradient.map(\.bitPattern) == expected.gradient.map(\.bitPattern), "\(kernel)")
        }
    }

    @Test("the generator's sequence is fixed by its seed and stream")
    func seededGenerator() {
        var a = SeededGenerator(seed: 42), b = SeededGenerator(seed: 42), c = SeededGenerator(seed: 42, stream: 1)
        let first = (0..<4).map { _ in a.next() }
        #expect(first == (0..<4).map { _ in b.next() })
        #expect(first != (0..<4).map { _ in c.next() })
        var restored = SeededGenerator(state: a.state)
        #expect(restored.next() == a.next())
    }

    @Test("an optimizer step applied in chunks, as the workers do, equals one pass bit for bit",
          arguments: OptimizerKind.allCases)
    func chunkedUpdate(kind: OptimizerKind) {
        let n = 1003
        var generator = SeededGenerator(seed: 8)
        let start = (0..<n).map { _ in Float(generator.nextNormal()) }
        let gradients = (0..<3).map { _ in (0..<n).map { _ in Float(generator.nextNormal()) } }
        let settings = OptimizerSettings(kind: kind, momentum: 0.9, weightDecay: 0.001)
        var whole = settings.makeOptimizer(parameterCount: n, scalar: Float.self)
        var chunked = settings.makeOptimizer(parameterCount: n, scalar: Float.self)
        var (w1, w2) = (start, start)
        for g in gradients {
            whole.update(&w1, along: g, learningRate: 0.01)
            w2.withUnsafeMutableBufferPointer { w in
                g.withUnsafeBufferPointer { g in
                    chunked.withStep(learningRate: 0.01) { rule in
                        for range in [512..<1003, 0..<7, 7..<512] { rule.apply(w.baseAddress!, along: g.baseAddress! + range.lowerBound, scaledBy: 1, range: range) }
                    }
                }
            }
        }
        #expect(w1.map(\.bitPattern) == w2.map(\.bitPattern) && whole.state == chunked.state)
        #expect(w1 != start)
    }

    @Test("the bias gradient sums each shard from 0 in row order and adds the shards in order, SIMD lanes and tail alike")
    func biasGradientOrder() {
        let (rows, width, segment) = (11, 21, 4)
        var generator = SeededGenerator(seed: 9)
        let delta = (0..<(rows * width)).map { _ in Float(generator.nextNormal()) }
        var sums = [Float](repeating: .nan, count: width)
        let columns = 2..<19
        delta.withUnsafeBufferPointer { d in
            sums.withUnsafeMutableBufferPointer { s in
                biasGradient(d.baseAddress!, rows: rows, width: width, segment: segment, columns: columns, into: s.baseAddress!)
            }
        }
        for (offset, j) in columns.enumerated() {
            func shard(_ r: Range<Int>) -> Float { r.reduce(Float(0)) { $0 + delta[$1 * width + j] } }
            let expected = (shard(0..<4) + shard(4..<8)) + shard(8..<11)
            #expect(sums[offset].bitPattern == expected.bitPattern, "column \(j)")
        }
        #expect(sums[columns.count...].allSatisfy { $0.isNaN }, "wrote beyond the columns")
    }

    /// Records, per task, the order in which tasks started and ended.
    final class PhaseLog: @unchecked Sendable {
        let clock = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        let started: UnsafeMutableBufferPointer<Int>, ended: UnsafeMutableBufferPointer<Int>
        init(tasks: Int) {
            clock.initialize(to: 0)
            started = .allocate(capacity: tasks)
            started.initialize(repeating: -1)
            ended = .allocate(capacity: tasks)
            ended.initialize(repeating: -1)
        }
        deinit { clock.deallocate(); started.deallocate(); ended.deallocate() }
    }

    struct LoggedPhases: PhasedJob {
        let log: PhaseLog
        let firstTask: [Int]
        func run(worker: Int, phase: Int, task: Int) {
            let t = firstTask[phase] + task
            log.started[t] = backprop_atomic_fetch_add(log.clock, 1)
            // Make tasks overlap on many workers.
            var x = 0.0
            for i in 0..<(200 * (t % 7 + 1)) { x += Double(i).squareRoot() }
            precondition(x >= 0)
            log.ended[t] = backprop_atomic_fetch_add(log.clock, 1)
        }
    }

    /// Phases of rows × columns tasks where a task needs only its row of the phase before.
    struct RowPhases: PhasedJob {
        let log: PhaseLog
        let rows: Int, columns: [Int]
        var firstTask: [Int] { columns.indices.map { p in columns[..<p].reduce(0, +) * rows } }
        func run(worker: Int, phase: Int, task: Int) { LoggedPhases(log: log, firstTask: firstTask).run(worker: worker, phase: phase, task: task) }
        func needs(phase: Int, task: Int) -> (rowBlocks: Range<Int>, tasksPerBlock: Int)? {
            let r = task / columns[phase]
            return (r..<(r + 1), columns[phase - 1])
        }
        func marks(phase: Int, task: Int) -> Int? { task / columns[phase] }
    }

    @Test("runPhases with row needs starts a task only after its row of the previous phase is done",
          arguments: [1, 2, 3, 16])
    func rowNeeds(workers: Int) {
        let (rows, columns) = (6, [1, 3, 2, 4])
        let counters = PhaseCounters(maximumPhases: columns.count, maximumRowBlocks: rows)
        var total = 0
        for (p, width) in columns.enumerated() {
            total += rows * width
            counters.phaseEnds[p] = total
        }
        let log = PhaseLog(tasks: total)
        let job = RowPhases(log: log, rows: rows, columns: columns)
        runPhases(columns.count, team: Team(workers: workers), counters: counters, job)
        #expect(log.clock.pointee == 2 * total, "a task ran twice or not at all")
        let first = job.firstTask
        for p in 1..<columns.count {
            for r in 0..<rows {
                let previousEnd = (0..<columns[p - 1]).map { log.ended[first[p - 1] + r * columns[p - 1] + $0] }.max()!
                let start = (0..<columns[p]).map { log.started[first[p] + r * columns[p] + $0] }.min()!
                #expect(start > previousEnd, "phase \(p) row \(r) started before its row of phase \(p - 1) ended")
            }
        }
    }

    @Test("runPhases runs every task once and starts no task before the previous phase has ended",
          arguments: [1, 2, 3, 8, 16])
    func phasesInOrder(workers: Int) {
        let sizes = [5, 1, 17, 3, 40]
        let counters = PhaseCounters(maximumPhases: sizes.count)
        var firstTask: [Int] = [], total = 0
        for (p, size) in sizes.enumerated() {
            firstTask.append(total)
            total += size
            counters.phaseEnds[p] = total
        }
        let log = PhaseLog(tasks: total)
        runPhases(sizes.count, team: Team(workers: workers), counters: counters, LoggedPhases(log: log, firstTask: firstTask))
        #expect(log.started.allSatisfy { $0 >= 0 } && log.ended.allSatisfy { $0 >= 0 })
        #expect(log.clock.pointee == 2 * total, "a task ran twice")
        for p in 1..<sizes.count {
            let previousEnd = (firstTask[p - 1]..<firstTask[p]).map { log.ended[$0] }.max()!
            let start = (firstTask[p]..<(firstTask[p] + sizes[p])).map { log.started[$0] }.min()!
            #expect(start > previousEnd, "phase \(p) started before phase \(p - 1) ended")
        }
    }

    @Test("onWorkers runs every worker index once and forEachShard every shard once, on its fixed worker",
          arguments: [1, 2, 3, 8, 16])
    func workerRegions(workers: Int) {
        let runs = UnsafeMutableBufferPointer<Int>.allocate(capacity: workers)
        runs.initialize(repeating: 0)
        defer { runs.deallocate() }
        struct Count: WorkerJob {
            let counts: SharedPointer<Int>
            func run(worker: Int) { counts.base[worker] += 1 }  // worker w owns counts[w]
        }
        onWorkers(workers, Count(counts: SharedPointer(base: runs.baseAddress!)))
        #expect(Array(runs) == Array(repeating: 1, count: workers))

        let shardCount = 13
        let owners = UnsafeMutableBufferPointer<Int>.allocate(capacity: shardCount)
        owners.initialize(repeating: -1)
        defer { owners.deallocate() }
        let owner = SharedPointer(base: owners.baseAddress!)
        forEachShard(shardCount, workers: workers) { worker, shard in owner.base[shard] = worker }
        let active = min(workers, shardCount)
        #expect(Array(owners) == (0..<shardCount).map { $0 % active })
    }
}
