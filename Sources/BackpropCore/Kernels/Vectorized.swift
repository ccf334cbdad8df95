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

/// out_i ← scale · (slot₀_i + slot₁_i + … + slot_{count−1}_i), added in slot
/// order, then slot_s_i ← 0 for every slot, for i in `range` (slot s starts
/// at slots + s·stride). One pass: each lane is read, summed, scaled and
/// cleared while in registers. The Float path takes eight lanes at a time:
/// the same operations in the same order as the plain loop.
@_specialize(where T == Float)
func drainSlots<T: NetworkScalar>(
    _ slots: UnsafeMutablePointer<T>, count: Int, stride: Int, range: Range<Int>, scale: T,
    into out: UnsafeMutablePointer<T>
) {
    guard count > 0 else { return }
    var i = range.lowerBound
    if let o = floatPointer(out), let first = floatPointer(slots) {
        let s = Float(scale), zero = SIMD8<Float>(repeating: 0)
        while i + 8 <= range.upperBound {
            var sum = load8(first + i)
            store8(zero, first + i)
            for slot in 1..<count {
                let p = first + slot * stride + i
                sum += load8(p)
                store8(zero, p)
            }
            store8(s == 1 ? sum : sum * s, o + i)
            i += 8
        }
    }
    while i < range.upperBound {
        var sum = slots[i]
        slots[i] = 0
        for slot in 1..<count {
            sum += slots[slot * stride + i]
            slots[slot * stride + i] = 0
        }
        out[i] = scale == 1 ? sum : sum * scale
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
