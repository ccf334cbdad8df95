@testable import BackpropCore
import BackpropTestSupport
import Testing

/// The BLAS path against the plain loop, and the elementwise kernels' invariants.
struct KernelTests {
    @Test("sgemm equals the naive loop for every transpose combination",
          arguments: [(Transpose.none, Transpose.none), (.none, .transposed), (.transposed, .none), (.transposed, .transposed)])
    func gemmMatchesNaive(transposes: (Transpose, Transpose)) {
        let (m, n, k) = (7, 5, 9)
        var generator = SeededGenerator(seed: 3)
        let a = (0..<(m * k)).map { _ in Float(generator.nextNormal()) }
        let b = (0..<(k * n)).map { _ in Float(generator.nextNormal()) }
        let c0 = (0..<(m * n)).map { _ in Float(generator.nextNormal()) }
        let (lda, ldb) = (transposes.0 == .none ? k : m, transposes.1 == .none ? n : k)
        for beta: Float in [0, 0.5] {
            var blas = c0, naive = c0
            gemm(transposes.0, transposes.1, m: m, n: n, k: k, alpha: 1.5, a: a, lda: lda, b: b, ldb: ldb,
                 beta: beta, c: &blas, ldc: n, kernel: .blas)
            gemm(transposes.0, transposes.1, m: m, n: n, k: k, alpha: 1.5, a: a, lda: lda, b: b, ldb: ldb,
                 beta: beta, c: &naive, ldc: n, kernel: .naive)
            for i in 0..<(m * n) { #expect(abs(blas[i] - naive[i]) <= 1e-5 * max(1, abs(naive[i])), "element \(i), β \(beta)") }
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
            #expect(abs(row.reduce(0, +) - 1) < 1e-5, "seed \(seed), row \(r)")
        }
    }

    @Test("the naive and BLAS kernels give the same training gradient")
    func networkGradientOnBothKernels() throws {
        let problem = try gradientCheckProblem(sizes: [6, 8, 3], activation: .relu, loss: .crossEntropy, rows: 5, seed: 4)
        let blas = problem.network.gradient(inputs: problem.inputs, targets: problem.targets, kernel: .blas)
        let naive = problem.network.gradient(inputs: problem.inputs, targets: problem.targets, kernel: .naive)
        #expect(abs(blas.error - naive.error) < 1e-12)
        for i in blas.gradient.indices { #expect(abs(blas.gradient[i] - naive.gradient[i]) < 1e-12) }
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
        let settings = OptimizerSettings(kind: kind, learningRate: 0.01, momentum: 0.9, weightDecay: 0.001)
        var whole = settings.makeOptimizer(parameterCount: n, scalar: Float.self)
        var chunked = settings.makeOptimizer(parameterCount: n, scalar: Float.self)
        var (w1, w2) = (start, start)
        for g in gradients {
            whole.update(&w1, along: g)
            w2.withUnsafeMutableBufferPointer { w in
                g.withUnsafeBufferPointer { g in
                    chunked.withStep { rule in
                        for range in [512..<1003, 0..<7, 7..<512] { rule.apply(w.baseAddress!, along: g.baseAddress! + range.lowerBound, range: range) }
                    }
                }
            }
        }
        #expect(w1.map(\.bitPattern) == w2.map(\.bitPattern) && whole.state == chunked.state)
        #expect(w1 != start)
    }

    @Test("the SIMD shard sum equals the plain loop in slot order and clears the slots, for ranges not a multiple of 8",
          arguments: [Float(0.25), 1])
    func shardSum(scale: Float) {
        let (slots, stride) = (3, 37)
        var generator = SeededGenerator(seed: 9)
        let values = (0..<(slots * stride)).map { _ in Float(generator.nextNormal()) }
        var drained = values
        var out = [Float](repeating: .nan, count: stride)
        drained.withUnsafeMutableBufferPointer { v in
            out.withUnsafeMutableBufferPointer { o in
                drainSlots(v.baseAddress!, count: slots, stride: stride, range: 3..<30, scale: scale, into: o.baseAddress!)
            }
        }
        for i in 0..<stride {
            let sum = (values[i] + values[stride + i]) + values[2 * stride + i]
            let expected: Float = (3..<30).contains(i) ? (scale == 1 ? sum : sum * scale) : .nan
            #expect(out[i].bitPattern == expected.bitPattern, "element \(i)")
            for s in 0..<slots {
                #expect(drained[s * stride + i] == ((3..<30).contains(i) ? 0 : values[s * stride + i]), "slot \(s) element \(i)")
            }
        }
    }

    @Test("onWorkers runs every worker index once and forEachShard every shard once, on its fixed worker",
          arguments: [1, 2, 3, 8, 16])
    func workerRegions(workers: Int) {
        let runs = UnsafeMutableBufferPointer<Int>.allocate(capacity: workers)
        runs.initialize(repeating: 0)
        defer { runs.deallocate() }
        struct Count: WorkerJob {
            let counts: SlotPointer<Int>
            func run(worker: Int) { counts.base[worker] += 1 }  // worker w owns counts[w]
        }
        onWorkers(workers, Count(counts: SlotPointer(base: runs.baseAddress!)))
        #expect(Array(runs) == Array(repeating: 1, count: workers))

        let shardCount = 13
        let owners = UnsafeMutableBufferPointer<Int>.allocate(capacity: shardCount)
        owners.initialize(repeating: -1)
        defer { owners.deallocate() }
        let owner = SlotPointer(base: owners.baseAddress!)
        forEachShard(shardCount, workers: workers) { worker, shard in owner.base[shard] = worker }
        let active = min(workers, shardCount)
        #expect(Array(owners) == (0..<shardCount).map { $0 % active })
    }
}
