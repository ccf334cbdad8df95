import BackpropHDF5
import BackpropIO
import Foundation

/// Reads an untrusted file in a forked child process first.
///
/// libhdf5 1.10.8 has memory-safety bugs on crafted files that no check by
/// the caller can avoid (heap overflows decoding attribute messages, found by
/// the fuzzer; README, Security). The child runs the same validating read;
/// if libhdf5 kills it, the file is refused with a clean error instead of
/// crashing `backprop`. If the child survives, the parent reads the same
/// bytes with the same code, so it survives too. The cost is one extra read
/// (tens of milliseconds for Fashion-MNIST).
func guardedRead<T>(_ path: String, _ read: () throws -> T) throws -> T {
    try probeInChild(path) { _ = try? read() }
    return try read()
}

/// Runs `probe` in a forked child; throws when the child dies by a signal.
func probeInChild(_ path: String, _ probe: () -> Void) throws {
    fflush(nil)
    let child = fork()
    if child == 0 {
        // Errors are the parent's to report, and a crash's backtrace is noise:
        // only survival matters here.
        if let null = try? systemCall("open", { open("/dev/null", O_WRONLY) }) {
            _ = try? systemCall("dup2") { dup2(null, STDERR_FILENO) }
            _ = try? systemCall("dup2") { dup2(null, STDOUT_FILENO) }
        }
        probe()
        _exit(0)
    }
    if child > 0 {
        var status: Int32 = 0
        guard (try? systemCall("waitpid", { waitpid(child, &status, 0) })) != nil else { return }
        let signal = status & 0x7F
        if signal != 0 && signal != 0x7F {
            throw StorageError.invalidContent(
                path: path, object: "file",
                reason: "kills the process that reads it (signal \(signal)): either \(MemoryLimit.hint), or the file is crafted "
                    + "to crash libhdf5 1.10.8 (a known libhdf5 bug); it is refused")
        }
    }
}
