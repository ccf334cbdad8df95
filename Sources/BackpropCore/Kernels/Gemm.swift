// Matrix products: the BLAS path used in training and the plain loop it must match.
//
// Every matrix product of the package goes through `gemm`, which calls
// OpenBLAS's cblas_sgemm / cblas_dgemm (row-major). `naiveGemm` is the
// reference loop the tests compare against; `Kernel.naive` selects it at run
// time so that the slow path always builds and stays tested. This file is the
// only one that imports CBLAS. BLAS's own threading is switched off by
// `BLAS.useSingleThread()`: our workers own the cores.
import CBLAS

/// Which implementation a matrix product runs on.
public enum Kernel: Sendable {
    /// OpenBLAS (the default).
    case blas
    /// The plain triple loop, for tests and as the reference.
    case naive
}

/// C ← α·op(A)·op(B) + β·C, row-major; op(A): [m, k], op(B): [k, n], C: [m, n].
@inline(__always)
func gemm<T: NetworkScalar>(
    _ transposeA: Transpose, _ transposeB: Transpose,
    m: Int, n: Int, k: Int,
    alpha: T = 1, a: UnsafePointer<T>, lda: Int,
    b: UnsafePointer<T>, ldb: Int,
    beta: T, c: UnsafeMutablePointer<T>, ldc: Int,
    kernel: Kernel = .blas
) {
    switch kernel {
    case .blas:
        T.blasGemm(transposeA, transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                   b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    case .naive:
        naiveGemm(transposeA, transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                  b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }
}

/// The reference for `gemm`: C_ij ← α Σ_p op(A)_ip op(B)_pj + β C_ij, summed in p order.
public func naiveGemm<T: NetworkScalar>(
    _ transposeA: Transpose, _ transposeB: Transpose,
    m: Int, n: Int, k: Int,
    alpha: T, a: UnsafePointer<T>, lda: Int,
    b: UnsafePointer<T>, ldb: Int,
    beta: T, c: UnsafeMutablePointer<T>, ldc: Int
) {
    for i in 0..<m {
        for j in 0..<n {
            var sum: T = 0
            for p in 0..<k {
                let aip = transposeA == .none ? a[i * lda + p] : a[p * lda + i]
                let bpj = transposeB == .none ? b[p * ldb + j] : b[j * ldb + p]
                sum += aip * bpj
            }
            // BLAS does not read C when β = 0 (it may hold NaN garbage).
            c[i * ldc + j] = alpha * sum + (beta == 0 ? 0 : beta * c[i * ldc + j])
        }
    }
}

extension Transpose {
    fileprivate var cblas: CBLAS_TRANSPOSE {
        self == .none ? CblasNoTrans : CblasTrans
    }
}

extension Float {
    public static func blasGemm(
        _ transposeA: Transpose, _ transposeB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(CblasRowMajor, transposeA.cblas, transposeB.cblas,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(ldc))
    }
}

extension Double {
    public static func blasGemm(
        _ transposeA: Transpose, _ transposeB: Transpose, m: Int, n: Int, k: Int,
        alpha: Double, a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        cblas_dgemm(CblasRowMajor, transposeA.cblas, transposeB.cblas,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(ldc))
    }
}

/// The BLAS library in use, and its threading.
public enum BLAS {
    /// Sets OpenBLAS to one thread per call: the data-parallel workers own the
    /// cores, and two levels of threads would fight over them. Call at start-up.
    public static func useSingleThread() {
        openblas_set_num_threads(1)
    }

    /// OpenBLAS's name for the kernel it selected for this CPU (e.g. "Haswell",
    /// "SkylakeX", "Cooperlake"); "Prescott" is the slow generic fallback.
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// OpenBLAS's build configuration string (version, threading model).
    public static var configuration: String {
        guard let config = openblas_get_config() else { return "unknown" }
        return String(cString: config)
    }

    /// True when OpenBLAS fell back to a generic kernel much slower than this
    /// CPU allows; `OPENBLAS_CORETYPE` (e.g. `SkylakeX`, `Haswell`) overrides it.
    public static var isGenericFallback: Bool {
        ["prescott", "generic", "core2", "atom", "nehalem", "katmai", "coppermine"]
            .contains(coreName.lowercased())
    }
}
