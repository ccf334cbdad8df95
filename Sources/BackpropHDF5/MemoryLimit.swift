import BackpropIO
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
    /// The environment variable that sets the cap, in MiB.
    public static let variable = "BACKPROP_MEMORY_LIMIT_MB"
    /// The smallest cap a run can start under (the runtime, libhdf5 and the
    /// worker threads' stacks alone take tens of MiB).
    public static let minimumMiB: UInt64 = 64
    /// The largest (2⁴⁰ MiB: beyond any machine, and clear of overflow in bytes).
    static let maximumMiB: UInt64 = 1 << 40

    /// The variable's text, when it is set.
    public static var setting: String? { ProcessInfo.processInfo.environment[variable] }

    /// BACKPROP_MEMORY_LIMIT_MB in bytes, when it is set to a usable number.
    static var configured: UInt64? {
        setting.flatMap { UInt64($0) }.flatMap { (minimumMiB...maximumMiB).contains($0) ? $0 << 20 : nil }
    }

    /// Why BACKPROP_MEMORY_LIMIT_MB cannot be used, naming it; nil when it is unset or usable.
    public static var problem: String? {
        guard let setting else { return nil }
        guard let mib = UInt64(setting), mib <= maximumMiB else {
            return "\(variable)=\(setting) is invalid: give a whole number of MiB (at least \(minimumMiB)), or unset it for 3/4 of physical memory."
        }
        guard mib >= minimumMiB else {
            return "\(variable)=\(setting) is too small: a run needs at least \(minimumMiB) MiB; raise it, or unset it for 3/4 of physical memory."
        }
        return nil
    }

    /// A sentence for a failure that may be the cap's doing, naming it when the user set it.
    public static var hint: String {
        configured.map { "the memory limit \(variable)=\($0 >> 20) may be too small for this work: raise it" }
            ?? "the process may have run out of memory (its data segment is capped at 3/4 of physical memory)"
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
