// OpenBLAS, the yardstick: `backprop bench` and Benchmarks/ time the training
// products on it beside Backprop's own kernel, so the speed claim stays
// honest. Training never calls it (its bits depend on the CPU's kernel and on
// how a product is split; see Gemm.swift). This file is the only one that
// imports CBLAS.
import CBLAS

/// The BLAS library used as the yardstick, and its threading.
public enum BLAS {
    /// Sets OpenBLAS to one thread per call: each benchmark worker owns a core.
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

    /// The product `p` describes, on sgemm (β = 0 or 1, no segments): A read
    /// as stored when its column stride is 1, transposed when its row stride
    /// is 1; B as `MatrixProduct` reads it, or, with `transposedB`,
    /// B(k, j) = b[j·ldb + k] (w itself for a = z·wᵀ, where our kernel reads wᵀ).
    static func run(transposedB: Bool, _ p: MatrixProduct<Float>) {
        precondition(p.segment >= p.k, "sgemm has no segments")
        let transposeA = p.aColumnStride == 1 ? CblasNoTrans : CblasTrans
        let lda = p.aColumnStride == 1 ? p.aRowStride : p.aColumnStride
        cblas_sgemm(CblasRowMajor, transposeA, transposedB ? CblasTrans : CblasNoTrans,
                    Int32(p.m), Int32(p.n), Int32(p.k), 1,
                    p.a, Int32(lda), p.b, Int32(p.ldb), p.accumulate ? 1 : 0, p.c, Int32(p.ldc))
    }
}
