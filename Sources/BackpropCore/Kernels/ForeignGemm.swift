/// A single-precision matrix product from outside Backprop (a BLAS's sgemm):
/// the yardstick that `GemmCeiling` and `ProductTimer` time beside the own
/// kernel, so that the speed claim stays honest. Training never runs it (its
/// bits depend on the library's kernel for the CPU and on how a product is
/// split; see Gemm.swift), and Core links none: the bench's module supplies
/// one (`BLAS.gemm` in BackpropOpenBLAS).
public struct ForeignGemm: Sendable {
    /// One call, row-major: C[m, n] = op(A)·op(B) + β·C, where op(A) is A
    /// [m, k] stored with row stride `lda`, or, with `transposeA`, A [k, m]
    /// read transposed; and likewise op(B) of B [k, n], or B [n, k] with `transposeB`.
    public struct Call {
        public let transposeA: Bool, transposeB: Bool
        public let m: Int, n: Int, k: Int
        public let a: UnsafePointer<Float>, lda: Int
        public let b: UnsafePointer<Float>, ldb: Int
        /// 0 or 1: the product is written over C, or added to it.
        public let beta: Float
        public let c: UnsafeMutablePointer<Float>, ldc: Int
    }

    /// Its name in reports ("openblas").
    public let name: String
    let sgemm: @Sendable (Call) -> Void

    /// - Parameters:
    ///   - name: its name in reports.
    ///   - sgemm: runs one call (on the calling thread).
    public init(name: String, sgemm: @escaping @Sendable (Call) -> Void) {
        self.name = name
        self.sgemm = sgemm
    }

    /// The product `p` describes (β = 0 or 1, no segments): A read as stored
    /// when its column stride is 1, transposed when its row stride is 1; B as
    /// `MatrixProduct` reads it, or, with `transposedB`, B(k, j) = b[j·ldb + k]
    /// (w itself for a = z·wᵀ, where our kernel reads wᵀ).
    func run(transposedB: Bool, _ p: MatrixProduct<Float>) {
        precondition(p.segment >= p.k, "a foreign sgemm has no segments")
        let transposeA = p.aColumnStride != 1
        sgemm(Call(transposeA: transposeA, transposeB: transposedB, m: p.m, n: p.n, k: p.k,
                   a: p.a, lda: transposeA ? p.aColumnStride : p.aRowStride, b: p.b, ldb: p.ldb,
                   beta: p.accumulate ? 1 : 0, c: p.c, ldc: p.ldc))
    }
}
