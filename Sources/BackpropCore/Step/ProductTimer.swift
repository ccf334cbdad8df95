/// Times the training products of a network alone, one thread, on each
/// kernel path and on a foreign sgemm (OpenBLAS), so that `backprop bench` and Benchmarks/
/// can put them side by side.
///
/// Per layer, at `rows` samples (a shard): a = z·wᵀ [rows, in]·[in, out],
/// δ·W [rows, out]·[out, in] (not for layer 0), and δᵀ·Z [out, rows]·[rows, in]
/// (one chain, β = 1, as training's shard sums).
public struct ProductTimer {
    /// One product: its name, shape m × n × k, and how A and B are read.
    public struct Product: Sendable {
        public let name: String
        public let m: Int, n: Int, k: Int
        /// A read [k, m] (δᵀ) rather than [m, k].
        let transposedA: Bool
        /// OpenBLAS's B operand is w [n, k] read transposed (a = z·wᵀ); ours reads wᵀ.
        let forward: Bool
        let accumulate: Bool

        /// 2·m·n·k.
        public var flops: Int { 2 * m * n * k }
    }

    public let products: [Product]
    /// Operands sized for the largest product, values in (−1, 1).
    private let a: [Float], b: [Float]
    private var c: [Float]

    public init(sizes: [Int], rows: Int) {
        var products: [Product] = []
        for l in 0..<(sizes.count - 1) {
            let (input, output) = (sizes[l], sizes[l + 1])
            products.append(Product(name: "z·wᵀ \(rows)×\(input) · \(input)×\(output)", m: rows, n: output, k: input,
                                    transposedA: false, forward: true, accumulate: false))
            if l > 0 {
                products.append(Product(name: "δ·W \(rows)×\(output) · \(output)×\(input)", m: rows, n: input, k: output,
                                        transposedA: false, forward: false, accumulate: false))
            }
            products.append(Product(name: "δᵀ·Z \(output)×\(rows) · \(rows)×\(input)", m: output, n: input, k: rows,
                                    transposedA: true, forward: false, accumulate: true))
        }
        self.products = products
        let largest = products.map { max($0.m * $0.k, $0.k * $0.n, $0.m * $0.n) }.max() ?? 1
        var generator = SeededGenerator(seed: 1)
        a = (0..<largest).map { _ in Float(generator.nextUnitDouble() * 2 - 1) }
        b = (0..<largest).map { _ in Float(generator.nextUnitDouble() * 2 - 1) }
        c = [Float](repeating: 0, count: largest)
    }

    /// Runs `product` once on `engine`.
    public mutating func run(_ product: Product, on engine: GemmCeiling.Engine) {
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    let p = MatrixProduct(
                        m: product.m, n: product.n, k: product.k, segment: max(product.k, 1),
                        a: a.baseAddress!, aRowStride: product.transposedA ? 1 : product.k,
                        aColumnStride: product.transposedA ? product.m : 1,
                        b: b.baseAddress!, ldb: engine.isForeign && product.forward ? product.k : product.n,
                        c: c.baseAddress!, ldc: product.n, accumulate: product.accumulate)
                    switch engine {
                    case .own(let kernel): p.run(Products(kernel: kernel))
                    case .foreign(let gemm): gemm.run(transposedB: product.forward, p)
                    }
                }
            }
        }
    }

    /// Median seconds of one call of `product` on `engine`, over `repetitions`
    /// timings of `calls` calls each.
    public mutating func seconds(_ product: Product, on engine: GemmCeiling.Engine,
                                 calls: Int, repetitions: Int) -> Double {
        var times: [Double] = []
        for _ in 0..<repetitions {
            let start = monotonicNanoseconds()
            for _ in 0..<calls { run(product, on: engine) }
            times.append(BackpropCore.seconds(from: start, to: monotonicNanoseconds()) / Double(calls))
        }
        return times.sorted()[times.count / 2]
    }
}
