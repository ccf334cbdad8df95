import CGemm
import Foundation
import Testing

/// Issue 55, the first piece: the bf16 rule of VDPBF16PS and VCVTNEPS2BF16,
/// written out in C (CGemm/bf16.c), against hand-worked values and, on a CPU
/// with AVX512_BF16, against the instructions themselves, bit for bit.
struct BF16Tests {
    /// Bit patterns that reach every case of the rule: zeros, denormals, the
    /// smallest and largest normals, ones, infinities, quiet and signalling NaN.
    static let specials: [UInt16] = [0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080, 0x8080, 0x7F7F, 0xFF7F, 0x3F80, 0xBF80,
                                     0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x7F81, 0x0100, 0x1F80, 0x5F80, 0x2000]

    /// A bf16 pattern: a special one, a tiny or huge one (products that leave
    /// fp32's range or land among its denormals), or a moderate one.
    static func draw(_ g: inout SystemRandomNumberGenerator, _ r: UInt64) -> UInt16 {
        let sign: UInt16 = r & 1 == 0 ? 0 : 0x8000
        switch (r >> 1) % 8 {
        case 0: return specials[Int((r >> 8) % UInt64(specials.count))]
        case 1: return sign | UInt16((r >> 8) % 0x0C00)            // exponents 0…23: tiny products
        case 2: return sign | UInt16(0x7F7F - (r >> 8) % 0x0C00)    // huge
        default: return sign | UInt16(0x3800 + (r >> 8) % 0x1000)   // around 1
        }
    }

    @Test("fp32 → bf16 rounds to nearest even, flushes denormals to a zero of their sign, quiets NaN, overflows to ∞: hand-worked values")
    func rounding() {
        let cases: [(UInt32, UInt16)] = [
            (0x3F80_0000, 0x3F80), (0x3F80_8000, 0x3F80), (0x3F81_8000, 0x3F82), (0x3F80_8001, 0x3F81), (0x3F80_7FFF, 0x3F80),
            (0xBF80_8000, 0xBF80), (0x7F7F_FFFF, 0x7F80), (0x0000_0001, 0x0000), (0x8040_0000, 0x8000), (0x0080_0000, 0x0080),
            (0x7FA0_0000, 0x7FE0), (0xFFC1_2345, 0xFFC1), (0x7F80_0000, 0x7F80),
        ]
        for (input, expected) in cases {
            #expect(backprop_bf16_from_float(Float(bitPattern: input)) == expected, "\(String(input, radix: 16))")
        }
        #expect(backprop_bf16_to_float(0x3FC0) == 1.5)
    }

    @Test("VDPBF16PS's rule, hand-worked: the odd pair first, each step one rounding; DAZ on inputs, FTZ on the result")
    func dotRule() {
        func dot(_ acc: Float, _ a: [Float], _ b: [Float]) -> Float {
            var lanes = [Float](repeating: 0, count: 16), x = [UInt16](repeating: 0, count: 32), y = [UInt16](repeating: 0, count: 32)
            lanes[0] = acc
            (x[0], x[1], y[0], y[1]) = (backprop_bf16_from_float(a[0]), backprop_bf16_from_float(a[1]),
                                        backprop_bf16_from_float(b[0]), backprop_bf16_from_float(b[1]))
            backprop_dpbf16_emulated(&lanes, x, y)
            return lanes[0]
        }
        #expect(dot(1, [2, 3], [4, 5]) == 1 + 15 + 8)
        // 2^24 + 1 + 1: the odd pair (1·1) first is lost to rounding (ties to even), then the even pair's 1 is lost again.
        #expect(dot(16_777_216, [1, 1], [1, 1]) == 16_777_216)
        // A product among the denormals is written as 0, as is an input denormal.
        #expect(dot(0, [0x1p-70, 0], [0x1p-70, 0]) == 0)
        #expect(dot(0x1p-130, [0, 0], [0, 0]).bitPattern == 0)
        #expect(dot(1, [.infinity, 0], [1, 0]) == .infinity && dot(1, [.infinity, 0], [0, 0]).isNaN)
    }

    @Test("the C rule equals AVX512_BF16's VDPBF16PS and VCVTNEPS2BF16 bit for bit (where this CPU has them): 2,000,000 lanes of each, specials, denormals and overflows among them")
    func hardwareAgrees() throws {
        guard backprop_cpu_has_avx512_bf16() != 0 else {
            print("BF16Tests: this CPU has no AVX512_BF16; the emulation was checked against hand-worked values only")
            return
        }
        var g = SystemRandomNumberGenerator()
        var mismatches: [String] = []
        for _ in 0..<(2_000_000 / 16) {
            var acc = (0..<16).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: g.next() as UInt64)) }
            for i in 0..<16 where g.next() % 2 == 0 { acc[i] = backprop_bf16_to_float(Self.draw(&g, g.next())) }
            let a = (0..<32).map { _ in Self.draw(&g, g.next()) }, b = (0..<32).map { _ in Self.draw(&g, g.next()) }
            var hardware = acc, emulated = acc
            backprop_dpbf16_hardware(&hardware, a, b)
            backprop_dpbf16_emulated(&emulated, a, b)
            for i in 0..<16 where hardware[i].bitPattern != emulated[i].bitPattern && mismatches.count < 10 {
                mismatches.append("acc \(String(acc[i].bitPattern, radix: 16)) a \(String(a[2 * i + 1], radix: 16)),\(String(a[2 * i], radix: 16)) "
                                  + "b \(String(b[2 * i + 1], radix: 16)),\(String(b[2 * i], radix: 16)): hardware \(String(hardware[i].bitPattern, radix: 16)), "
                                  + "emulated \(String(emulated[i].bitPattern, radix: 16))")
            }
            var rounded = [UInt16](repeating: 0, count: 16)
            backprop_bf16_from_float_hardware(&rounded, acc)
            for i in 0..<16 where rounded[i] != backprop_bf16_from_float(acc[i]) && mismatches.count < 10 {
                mismatches.append("round \(String(acc[i].bitPattern, radix: 16)): hardware \(String(rounded[i], radix: 16)), emulated \(String(backprop_bf16_from_float(acc[i]), radix: 16))")
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
    }

    /// C (m × n, ldc n + 3) of `path` for A (m × k, stored transposed when `transposed`) and B (k × n, ldb n + 1),
    /// or B laid out in panels of 32 columns (wᵀ's layout, `TransposedWeights`) when `panels`; with `paired`, B also
    /// given rounded and paired (`backprop_bf16_pack_pairs`, as the step gives its weights).
    static func product(_ path: (UnsafePointer<backprop_gemm>) -> Void, m: Int, n: Int, k: Int, segment: Int, accumulate: Bool,
                        transposed: Bool, panels: Bool = false, paired: Bool = false, a: [Float], b: [Float], c: [Float]) -> [Float] {
        var c = c
        let groups = (n + 15) / 16 + 1, stride = 16 * ((k + 1) / 2)
        var pairs = [UInt32](repeating: 0, count: groups * stride + 16)
        if paired {
            for g in 0..<(groups - 1) {
                b.withUnsafeBufferPointer { b in
                    pairs.withUnsafeMutableBufferPointer { backprop_bf16_pack_pairs(b.baseAddress! + 16 * g, n + 1, k, min(16, n - 16 * g), $0.baseAddress! + g * stride) }
                }
            }
        }
        let width = 32, panelCount = (n + width - 1) / width
        let b = !panels ? b : (0..<(panelCount * k * width)).map { at -> Float in
            let (panel, rest) = at.quotientAndRemainder(dividingBy: k * width)
            let (row, column) = rest.quotientAndRemainder(dividingBy: width)
            let j = panel * width + column
            return j < n ? b[row * (n + 1) + j] : 0
        }
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    var g = backprop_gemm()
                    (g.m, g.n, g.k, g.segment) = (m, n, k, segment)
                    (g.a, g.a_row_stride, g.a_column_stride) = (a.baseAddress, transposed ? 1 : k, transposed ? m : 1)
                    (g.b, g.ldb, g.c, g.ldc, g.accumulate) = (b.baseAddress, panels ? width : n + 1, c.baseAddress, n + 3, accumulate ? 1 : 0)
                    if panels { (g.b_panel_width, g.b_panel_stride) = (width, k * width) }
                    pairs.withUnsafeBufferPointer { pairs in
                        if paired { (g.b_pairs, g.b_pairs_stride) = (pairs.baseAddress, stride) }
                        path(&g)
                    }
                }
            }
        }
        return c
    }

    /// The vector paths of the bf16 product this CPU runs, by name.
    static var vectorPaths: [(name: String, run: (UnsafePointer<backprop_gemm>) -> Void)] {
        var paths: [(String, (UnsafePointer<backprop_gemm>) -> Void)] = []
        #if arch(x86_64)
        if backprop_cpu_has_avx512_bf16() != 0 { paths.append(("VDPBF16PS", { backprop_gemm_bf16_avx512($0) })) }
        if backprop_cpu_has_avx512bw() != 0 { paths.append(("AVX-512 FMAs", { backprop_gemm_bf16_avx512_emulated($0) })) }
        if backprop_cpu_has_avx2_fma() != 0 { paths.append(("AVX2 FMAs", { backprop_gemm_bf16_avx2($0) })) }
        #endif
        return paths
    }

    @Test("the bf16 product of small whole numbers is their exact sum (bf16 holds them, fp32 their sums)")
    func exactProduct() {
        let (m, n, k) = (3, 5, 7)
        let a = (0..<(m * k)).map { Float($0 % 5) - 2 }, b = (0..<(k * (n + 1))).map { Float($0 % 7) - 3 }
        let c = Self.product(backprop_gemm_bf16_emulated, m: m, n: n, k: k, segment: k, accumulate: false, transposed: false,
                             a: a, b: b, c: [Float](repeating: .nan, count: m * (n + 3)))
        for i in 0..<m {
            for j in 0..<n {
                let exact = (0..<k).reduce(Float(0)) { $0 + a[i * k + $1] * b[$1 * (n + 1) + j] }
                #expect(c[i * (n + 3) + j] == exact, "(\(i), \(j))")
            }
        }
    }

    @Test("every bf16 product path this CPU runs (VDPBF16PS, its emulation on AVX-512 and on AVX2 FMAs) has the element-by-element product's bits: odd shapes, partial tiles, odd chains, segments, accumulation, A either way round, B in panels, specials among the values")
    func productPaths() throws {
        let paths = Self.vectorPaths
        print("BF16Tests: the bf16 paths compared with the element-by-element product here: \(paths.map(\.name).joined(separator: ", "))")
        var g = SystemRandomNumberGenerator()
        var compared = 0
        for (m, n, k) in [(1, 1, 1), (5, 17, 3), (12, 32, 256), (13, 33, 257), (25, 70, 600), (7, 15, 2), (26, 48, 130), (3, 5, 0)] {
            // Given pairs are used where the chains start at even k (a whole chain, segment 128), ignored at segment 3.
            for (segment, accumulate, transposed, panels, paired) in [(k, false, false, false, false), (k, true, true, true, false),
                                                                      (3, true, false, true, true), (128, false, true, false, false),
                                                                      (k, false, false, true, true), (128, true, true, false, true)] {
                // Without NaN too (the emulations on FMAs run element by element where A or B holds one), and
                // all tiny, so that whole chains run among the denormals (where FTZ and DAZ decide every step).
                for data in ["specials", "no NaN", "tiny"] {
                    func value() -> Float {
                        let r = g.next() as UInt64
                        let moderate = Float(Int(r >> 32) % 2001 - 1000) / 997
                        if data == "tiny" { return moderate * (r % 3 == 0 ? 0x1p-126 : 0x1p-60) }
                        let special = backprop_bf16_to_float(Self.draw(&g, g.next()))
                        return r % 64 == 0 && (data == "specials" || !special.isNaN) ? special : moderate
                    }
                    let a = (0..<(m * k)).map { _ in value() }, b = (0..<(k * (n + 1))).map { _ in value() }
                    let c = (0..<(m * (n + 3))).map { _ in value() }
                    func run(_ path: (UnsafePointer<backprop_gemm>) -> Void) -> [Float] {
                        Self.product(path, m: m, n: n, k: k, segment: max(segment, 1), accumulate: accumulate, transposed: transposed,
                                     panels: panels, paired: paired, a: a, b: b, c: c)
                    }
                    let reference = run(backprop_gemm_bf16_emulated)
                    for path in paths {
                        let differ = zip(reference, run(path.run)).filter { $0.bitPattern != $1.bitPattern }.count
                        #expect(differ == 0, "\(path.name): \(m)×\(n)×\(k), segment \(segment), accumulate \(accumulate), transposed \(transposed), panels \(panels), paired \(paired), \(data): \(differ) differ")
                        compared += m * n
                    }
                }
            }
        }
        print("BF16Tests: \(compared) products compared")
    }
}
