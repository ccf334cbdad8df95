import Foundation
import Glibc

/// The process's memory policy, in one place: a cap on the data segment and
/// the most one read may allocate under it.
///
/// A crafted HDF5 file can make libhdf5 1.10.8 allocate without bound
/// (Fuzz/regressions/libhdf5-unbounded-*.h5); under the cap malloc fails and
/// the read ends in a clean error instead of the machine running out of
/// memory. Training the reference model uses about 120 MiB.
public enum MemoryLimit {
    /// BACKPROP_MEMORY_LIMIT_MB in bytes, when it is set to a positive number.
    static var configured: UInt64? {
        ProcessInfo.processInfo.environment["BACKPROP_MEMORY_LIMIT_MB"].flatMap(UInt64.init).flatMap { $0 > 0 ? $0 << 20 : nil }
    }

    /// Caps RLIMIT_DATA at BACKPROP_MEMORY_LIMIT_MB, or 3/4 of physical
    /// memory (never above the hard limit, never raising the current one).
    public static func apply() {
        let bytes = configured ?? ProcessInfo.processInfo.physicalMemory / 4 * 3
        var limit = rlimit()
        guard (try? systemCall("getrlimit") { getrlimit(Int32(RLIMIT_DATA.rawValue), &limit) }) != nil else { return }
        limit.rlim_cur = min(limit.rlim_cur, min(limit.rlim_max, rlim_t(bytes)))
        _ = try? systemCall("setrlimit") { setrlimit(Int32(RLIMIT_DATA.rawValue), &limit) }
    }

    /// The most bytes one read may allocate: half of BACKPROP_MEMORY_LIMIT_MB
    /// if set, else half the data-segment limit (which `apply` sets).
    public static let perRead: Int = {
        if let configured { return Int(clamping: configured / 2) }
        var limit = rlimit()
        guard (try? systemCall("getrlimit") { getrlimit(Int32(RLIMIT_DATA.rawValue), &limit) }) != nil,
              limit.rlim_cur != rlim_t.max else { return Int.max }
        return Int(clamping: limit.rlim_cur / 2)
    }()
}
