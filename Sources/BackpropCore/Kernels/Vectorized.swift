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
private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// z_nj = h(a_nj + b_j) for every row, with h = ReLU (max(·, 0), NaN → 0 as
/// in `a > 0 ? a : 0`) or the identity.
func addBiasVectorized(_ b: UnsafePointer<Float>, to output: UnsafeMutablePointer<Float>,
                       rows: Int, width: Int, relu: Bool) {
    for n in 0..<rows {
        let row = output + n * width
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

/// δ_i ← 0 where z_i ≤ 0 (ReLU's h'(a) = 1 for a > 0, written through z = h(a)).
func reluMaskVectorized(_ delta: UnsafeMutablePointer<Float>, z: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count {
        let d = load8(delta + i)
        store8(d.replacing(with: 0, where: .!(load8(z + i) .> 0)), delta + i)
        i += 8
    }
    while i < count {
        if !(z[i] > 0) { delta[i] = 0 }
        i += 1
    }
}

/// s_j = Σ_n δ_nj, summed over n in order (the bias gradient).
func columnSumsVectorized(_ delta: UnsafePointer<Float>, rows: Int, width: Int, into sums: UnsafeMutablePointer<Float>) {
    var j = 0
    while j + 8 <= width {
        var s = SIMD8<Float>(repeating: 0)
        for n in 0..<rows { s += load8(delta + n * width + j) }
        store8(s, sums + j)
        j += 8
    }
    while j < width {
        var s: Float = 0
        for n in 0..<rows { s += delta[n * width + j] }
        sums[j] = s
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

/// out_i ← scale · (slot₀_i + slot₁_i + … + slot_{count−1}_i) for i in `range`,
/// added in slot order (slot s starts at slots + s·stride). The Float path
/// adds eight lanes at a time: the same additions in the same order.
@_specialize(where T == Float)
func sumSlots<T: NetworkScalar>(
    _ slots: UnsafePointer<T>, count: Int, stride: Int, range: Range<Int>, scale: T, into out: UnsafeMutablePointer<T>
) {
    guard count > 0 else { return }
    out.advanced(by: range.lowerBound).update(from: slots + range.lowerBound, count: range.count)
    if let o = floatPointer(out), let first = floatPointer(slots) {
        let s = Float(scale)
        let vectorEnd = range.lowerBound + range.count / 8 * 8
        for slot in 1..<count {
            let p = first + slot * stride
            var i = range.lowerBound
            while i < vectorEnd {
                store8(load8(o + i) + load8(p + i), o + i)
                i += 8
            }
            while i < range.upperBound { o[i] += p[i]; i += 1 }
        }
        if s != 1 {
            var i = range.lowerBound
            while i < vectorEnd {
                store8(load8(o + i) * s, o + i)
                i += 8
            }
            while i < range.upperBound { o[i] *= s; i += 1 }
        }
        return
    }
    for slot in 1..<count {
        let p = slots + slot * stride
        for i in range { out[i] += p[i] }
    }
    if scale != 1 { for i in range { out[i] *= scale } }
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
