// OpenBLAS, the bench's yardstick: `backprop bench` and Benchmarks/ time the
// training products on it beside Backprop's own kernel (`ForeignGemm`).
// Training never calls it, and BackpropCore does not link it; this module is
// the only one that imports CBLAS.
import BackpropCore
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

    /// OpenBLAS's cblas_sgemm, as the products' yardstick.
    public static let gemm = ForeignGemm(name: "openblas") { call in
        cblas_sgemm(CblasRowMajor, call.transposeA ? CblasTrans : CblasNoTrans, call.transposeB ? CblasTrans : CblasNoTrans,
                    Int32(call.m), Int32(call.n), Int32(call.k), 1,
                    call.a, Int32(call.lda), call.b, Int32(call.ldb), call.beta, call.c, Int32(call.ldc))
    }
}

extension GemmCeiling.Engine {
    /// The products on OpenBLAS.
    public static var openBLAS: Self { .foreign(BLAS.gemm) }

    /// The engines products are timed on: every own path this CPU runs but the portable one, then OpenBLAS.
    public static var timed: [Self] { timed(beside: BLAS.gemm) }
}
