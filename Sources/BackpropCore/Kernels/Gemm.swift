// Matrix products: Backprop's own kernel, on three paths, and the loop it must equal.
//
// The rule (also in CGemm.h): every output element is one chain of fp32
// fused multiply-adds over k in ascending order, c = fma(a_ik, b_kj, c),
// starting from 0, or from C when `accumulate` is set; with a `segment`
// shorter than k the chain restarts every `segment` values of k and the
// segments' chains are added to the element in order (shard sums in shard
// order). No path ever splits or reorders k, so every path, tile and block
// split gives the bits of `referenceGemm`, on any CPU.
//
// Paths: AVX-512 and AVX2+FMA in C (CGemm), and a portable one in Swift SIMD
// whose `addingProduct` is the fused operation on every architecture (on
// x86-64 without FMA in the build target it is a libm call per lane: correct,
// slow). `Double`, used only by gradient checks, always runs the reference.
import CGemm
import Foundation

/// Which implementation runs the Float matrix products. All three give the
/// same bits; they differ in speed and in the CPUs that can run them.
public enum Kernel: String, Sendable, CaseIterable, Codable {
    case avx512
    case avx2
    case portable

    /// The fastest path this CPU runs.
    public static let best: Kernel = Kernel.allCases.first(where: \.isAvailable) ?? .portable

    /// The default of every API that takes a kernel: `fromEnvironment` of
    /// this process (BACKPROP_KERNEL), or `best` when that names no path
    /// this CPU runs (the CLI refuses such a value; see KernelChoice).
    public static let automatic: Kernel =
        fromEnvironment(ProcessInfo.processInfo.environment) ?? best

    /// The path named by `BACKPROP_KERNEL` (tests run a whole suite on one
    /// path that way), else `best`. Nil when the variable names no path or
    /// one this CPU cannot run.
    public static func fromEnvironment(_ environment: [String: String]) -> Kernel? {
        guard let name = environment["BACKPROP_KERNEL"], name != "auto" else { return best }
        guard let kernel = Kernel(rawValue: name), kernel.isAvailable else { return nil }
        return kernel
    }

    /// Whether this CPU can run the path.
    public var isAvailable: Bool {
        #if arch(x86_64)
        switch self {
        case .avx512: return backprop_cpu_has_avx512() != 0
        case .avx2: return backprop_cpu_has_avx2_fma() != 0
        case .portable: return true
        }
        #else
        return self == .portable
        #endif
    }

    /// Register tile (rows × columns) of the path, for the description.
    public var tile: (rows: Int, columns: Int) {
        switch self {
        case .avx512: return (12, 32)
        case .avx2: return (6, 16)
        case .portable: return (4, 8)
        }
    }
}

/// The operands of the matrix products of a step (`--precision`).
///
/// - fp32: the rule above; the bits of every run before issue 55.
/// - bf16: A and B rounded to bf16 as they are packed (nearest even, a
///   denormal as zero), the products accumulated in fp32 as VDPBF16PS
///   does: per output, one chain over pairs of k from each segment's start,
///   the pair's k+1 first, every step one fma with DAZ and FTZ (CGemm's
///   gemm_bf16.c). Every kernel path computes exactly that: the instruction
///   where the CPU has AVX512_BF16, fp32 FMAs under DAZ and FTZ where it has
///   not, element by element on the portable path. `Double` (gradient
///   checks) always runs the fp64 reference.
public enum Precision: String, Sendable, CaseIterable, Codable {
    case fp32
    case bf16

    /// Whether this CPU runs bf16 products by VDPBF16PS (else they are emulated, at fp32's multiply rate).
    public static var hasBF16Hardware: Bool {
        #if arch(x86_64)
        return backprop_cpu_has_avx512_bf16() != 0
        #else
        return false
        #endif
    }
}

/// How the products run: the kernel path (speed only) and the operands'
/// precision (which bits).
public struct Products: Sendable, Equatable {
    public var kernel: Kernel
    public var precision: Precision

    public init(kernel: Kernel = .automatic, precision: Precision = .fp32) {
        self.kernel = kernel
        self.precision = precision
    }

    /// The precision and, at bf16, what computes it, for `train --verbose`
    /// and bench: "fp32", "bf16 by VDPBF16PS", "bf16 emulated on avx2's fp32 FMAs".
    public var summary: String {
        guard precision == .bf16 else { return precision.rawValue }
        switch kernel {
        case .avx512 where Precision.hasBF16Hardware: return "bf16 by VDPBF16PS"
        case .avx512, .avx2: return "bf16 emulated on \(kernel.rawValue)'s fp32 FMAs"
        case .portable: return "bf16 emulated element by element"
        }
    }

    /// Whether bf16 runs without the instruction here (the run says so once).
    public var emulatesBF16: Bool { precision == .bf16 && !(kernel == .avx512 && Precision.hasBF16Hardware) }
}

/// C[i, j] (+)= Σ_k A(i, k)·B(k, j) under the rule above, with
/// A(i, k) = a[i·aRowStride + k·aColumnStride] (so A may be read transposed),
/// C row-major with row stride ldc, and B(k, j) = b[k·ldb + j], or, for B
/// stored in panels of `bPanelWidth` columns (wᵀ: see `TransposedWeights`),
/// b[(j / w)·bPanelStride + k·ldb + j % w].
struct MatrixProduct<T: NetworkScalar> {
    var m: Int, n: Int, k: Int
    /// k values per chain (a shard); k or more for one chain.
    var segment: Int
    var a: UnsafePointer<T>, aRowStride: Int, aColumnStride: Int
    var b: UnsafePointer<T>, ldb: Int
    var c: UnsafeMutablePointer<T>, ldc: Int
    /// The first chain starts from C (β = 1) rather than from 0 (β = 0).
    var accumulate: Bool
    /// 0 (B row-major), or the columns per stored panel (a multiple of 32).
    var bPanelWidth = 0
    var bPanelStride = 0
    /// At bf16, B already rounded and paired (`backprop_gemm.b_pairs`); nil: every path reads `b`.
    var bPairs: UnsafePointer<UInt32>? = nil
    var bPairsStride = 0

    /// Where B(k, j) lies; the columns after j up to the end of its panel follow it.
    @inline(__always)
    func b(_ k: Int, _ j: Int) -> UnsafePointer<T> {
        guard bPanelWidth > 0 else { return b + k * ldb + j }
        let (panel, column) = j.quotientAndRemainder(dividingBy: bPanelWidth)
        return b + panel * bPanelStride + k * ldb + column
    }

    /// Runs the product at `products`' precision on its kernel path (Float), or the fp64 reference (Double).
    @inline(__always)
    func run(_ products: Products) {
        precondition(m >= 0 && n >= 0 && k >= 0 && segment > 0, "bad product \(m)×\(n)×\(k), segment \(segment)")
        guard T.self == Float.self else { return referenceGemm(self) }
        let p = unsafeBitCast(self, to: MatrixProduct<Float>.self)  // T is Float
        if products.precision == .bf16 { return p.runBF16(on: products.kernel) }
        switch products.kernel {
        case .portable: portableGemm(p)
        #if arch(x86_64)
        case .avx512: p.withC { backprop_gemm_avx512($0) }
        case .avx2: p.withC { backprop_gemm_avx2($0) }
        #else
        case .avx512, .avx2: preconditionFailure("\(kernel) does not run on this architecture")
        #endif
        }
    }
}

extension MatrixProduct where T == Float {
    /// The bf16 product: VDPBF16PS where the CPU has it, else the same rule on the path's FMAs.
    fileprivate func runBF16(on kernel: Kernel) {
        #if arch(x86_64)
        switch kernel {
        case .avx512 where Precision.hasBF16Hardware: withC { backprop_gemm_bf16_avx512($0) }
        case .avx512 where backprop_cpu_has_avx512bw() != 0: withC { backprop_gemm_bf16_avx512_emulated($0) }
        case .avx512, .avx2: withC { backprop_gemm_bf16_avx2($0) }
        case .portable: withC { backprop_gemm_bf16_emulated($0) }
        }
        #else
        withC { backprop_gemm_bf16_emulated($0) }
        #endif
    }

    fileprivate func withC(_ body: (UnsafePointer<backprop_gemm>) -> Void) {
        var g = backprop_gemm(
            m: m, n: n, k: k, segment: segment, a: a, a_row_stride: aRowStride, a_column_stride: aColumnStride,
            b: b, ldb: ldb, b_panel_width: bPanelWidth, b_panel_stride: bPanelStride,
            c: c, ldc: ldc, accumulate: accumulate ? 1 : 0, b_pairs: bPairs, b_pairs_stride: bPairsStride)
        body(&g)
    }
}

/// The rule as a plain loop: the reference every path must equal bit for bit.
func referenceGemm<T: NetworkScalar>(_ p: MatrixProduct<T>) {
    for i in 0..<p.m {
        for j in 0..<p.n {
            let c = p.c + i * p.ldc + j
            var value: T = p.accumulate ? c.pointee : 0
            for start in stride(from: 0, to: p.k, by: p.segment) {
                var chain: T = start == 0 ? value : 0
                for q in start..<min(start + p.segment, p.k) {
                    chain = chain.addingProduct(p.a[i * p.aRowStride + q * p.aColumnStride], p.b(q, j).pointee)
                }
                value = start == 0 ? chain : value + chain
            }
            c.pointee = value
        }
    }
}

/// The portable path: tiles of 4 rows × 8 columns in SIMD8, lanes across j,
/// columns beyond the last full vector one by one.
private func portableGemm(_ p: MatrixProduct<Float>) {
    typealias V = SIMD8<Float>
    let (rowsPerTile, lanes) = (4, V.scalarCount)
    var j0 = 0
    while j0 + lanes <= p.n {
        var i0 = 0
        while i0 < p.m {
            let rows = min(rowsPerTile, p.m - i0)
            var start = 0
            repeat {
                let end = min(start + p.segment, p.k)
                var acc = (V(), V(), V(), V())
                if start == 0 && p.accumulate {
                    acc.0 = load8(p.c + i0 * p.ldc + j0)
                    if rows > 1 { acc.1 = load8(p.c + (i0 + 1) * p.ldc + j0) }
                    if rows > 2 { acc.2 = load8(p.c + (i0 + 2) * p.ldc + j0) }
                    if rows > 3 { acc.3 = load8(p.c + (i0 + 3) * p.ldc + j0) }
                }
                let a = p.a + i0 * p.aRowStride
                for q in start..<end {
                    let b = load8(p.b(q, j0))
                    let aq = a + q * p.aColumnStride
                    acc.0 = acc.0.addingProduct(V(repeating: aq[0]), b)
                    if rows > 1 { acc.1 = acc.1.addingProduct(V(repeating: aq[p.aRowStride]), b) }
                    if rows > 2 { acc.2 = acc.2.addingProduct(V(repeating: aq[2 * p.aRowStride]), b) }
                    if rows > 3 { acc.3 = acc.3.addingProduct(V(repeating: aq[3 * p.aRowStride]), b) }
                }
                let c = p.c + i0 * p.ldc + j0, first = start == 0
                finish(acc.0, c, first)
                if rows > 1 { finish(acc.1, c + p.ldc, first) }
                if rows > 2 { finish(acc.2, c + 2 * p.ldc, first) }
                if rows > 3 { finish(acc.3, c + 3 * p.ldc, first) }
                start = end
            } while start < p.k
            i0 += rowsPerTile
        }
        j0 += lanes
    }
    if j0 < p.n {
        // The last columns (fewer than 8, in one panel), by the reference loop on the sub-matrix.
        var rest = p
        rest.n = p.n - j0
        rest.b = p.b(0, j0)
        rest.bPanelWidth = 0
        rest.c = p.c + j0
        referenceGemm(rest)
    }
}

/// C ← chain for the first segment, C ← C + chain for the others.
@inline(__always)
private func finish(_ chain: SIMD8<Float>, _ c: UnsafeMutablePointer<Float>, _ first: Bool) {
    store8(first ? chain : load8(c) + chain, c)
}
