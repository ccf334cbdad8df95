import CPrefetch

// The element-wise loops of the hot path, eight lanes at a time.
//
// Training runs in Float; these kernels take Float pointers and use
// SIMD8<Float> (one AVX register), with a scalar tail. The generic callers
// use them when T is Float (`floatPointer`) and keep their plain loops for
// Double, which gradient checks use. Each kernel gives the same bits as the
// plain loop it replaces: the operations are element-wise, in the same order.

/// `p` as a Float pointer when T is Float, else nil.
@inline(__always)
func floatPointer<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Float>? {
    T.self == Float.self ? UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self) : nil
}

@inline(__always)
func floatPointer<T>(_ p: UnsafePointer<T>) -> UnsafePointer<Float>? {
    T.self == Float.self ? UnsafeRawPointer(p).assumingMemoryBound(to: Float.self) : nil
}

@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// z_nj = h(a_nj + b_j) for every row of a block `width` columns wide whose
/// rows lie `stride` apart, with h = ReLU (max(·, 0), NaN → 0 as in
/// `a > 0 ? a : 0`) or the identity.
func addBiasVectorized(_ b: UnsafePointer<Float>, to output: UnsafeMutablePointer<Float>,
                       rows: Int, width: Int, stride: Int, relu: Bool) {
    for n in 0..<rows {
        let row = output + n * stride
        var j = 0
        while j + 8 <= width {
            let a = load8(row + j) + load8(b + j)
            store8(relu ? a.replacing(with: 0, where: .!(a .> 0)) : a, row + j)
            j += 8
        }
        while j < width {
            let a = row[j] + b[j]
            row[j] = relu ? (a > 0 ? a : 0) : a
            j += 1
        }
    }
}

/// ∂E/∂b_j = Σ_n δ_nj for j in `columns` of δ [rows, width]: within each
/// `segment` of rows (a shard) a sum from 0 in row order, and the shards'
/// sums added in shard order (as the weight products add their chains).
/// Writes `columns.count` values at `sums`.
func biasGradient<T: NetworkScalar>(_ delta: UnsafePointer<T>, rows: Int, width: Int, segment: Int,
                                    columns: Range<Int>, into sums: UnsafeMutablePointer<T>) {
    var j = columns.lowerBound
    if let delta = floatPointer(delta), let sums = floatPointer(sums) {
        while j + 8 <= columns.upperBound {
            var total = SIMD8<Float>(repeating: 0)
            for start in Swift.stride(from: 0, to: rows, by: segment) {
                var s = SIMD8<Float>(repeating: 0)
                for n in start..<min(start + segment, rows) { s += load8(delta + n * width + j) }
                total = start == 0 ? s : total + s
            }
            store8(total, sums + (j - columns.lowerBound))
            j += 8
        }
    }
    while j < columns.upperBound {
        var total: T = 0
        for start in Swift.stride(from: 0, to: rows, by: segment) {
            var s: T = 0
            for n in start..<min(start + segment, rows) { s += delta[n * width + j] }
            total = start == 0 ? s : total + s
        }
        sums[j - columns.lowerBound] = total
        j += 1
    }
}

/// x_i = scale · byte_i: a sample's uint8 features to Float, as it is gathered.
func convertBytesVectorized(_ bytes: UnsafePointer<UInt8>, count: Int, scale: Float, into x: UnsafeMutablePointer<Float>) {
    var i = 0
    while i + 8 <= count {
        let b = UnsafeRawPointer(bytes + i).loadUnaligned(as: SIMD8<UInt8>.self)
        store8(SIMD8<Float>(b) * scale, x + i)
        i += 8
    }
    while i < count {
        x[i] = Float(bytes[i]) * scale
        i += 1
    }
}

/// Starts loading `count` bytes at `p` into the cache (one prefetch per
/// 64-byte line), so that a later read finds them there.
@inline(__always)
func prefetch(_ p: UnsafeRawPointer, count: Int) {
    var line = UInt(bitPattern: p) & ~63
    let end = UInt(bitPattern: p) + UInt(count)
    while line < end {
        backprop_prefetch(UnsafeRawPointer(bitPattern: line))
        line += 64
    }
}

/// Σ_k x_k² in a fixed order: eight lanes (k mod 8) added across, then the
/// tail one by one; the same bits on every worker and machine.
@inline(__always)
func squaredNorm<T: NetworkScalar>(_ x: UnsafeMutablePointer<T>, count: Int) -> T {
    var k = 0
    var total: T = 0
    if let x = floatPointer(x), count >= 8 {
        var lanes = SIMD8<Float>(repeating: 0)
        while k + 8 <= count {
            let v = load8(x + k)
            lanes += v * v  // (not addingProduct: without -mfma that is a libm call per lane)
            k += 8
        }
        total = T(lanes.sum())
    }
    while k < count {
        total += x[k] * x[k]
        k += 1
    }
    return total
}
