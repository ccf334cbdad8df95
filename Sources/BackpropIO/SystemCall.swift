// The one place POSIX calls are checked: a call that fails with EINTR is
// made again, and errno is read right after the failing call, before
// anything else (a close, a log line) can overwrite it.
import Glibc

/// A failed system call: the function's name and the errno it left.
public struct SystemCallError: Error, Sendable, CustomStringConvertible {
    public let function: String
    public let code: Int32

    /// strerror(3) of the code, with the function: "No space left on device (write)".
    public var description: String { "\(String(cString: strerror(code))) (\(function))" }
}

/// Makes a POSIX call whose failure is -1 and errno, retrying it while it is
/// interrupted by a signal (EINTR).
/// - Returns: the call's result (never negative).
/// - Throws: `SystemCallError` with errno captured at once.
@discardableResult
public func systemCall<Result: BinaryInteger>(_ function: String, _ call: () -> Result) throws(SystemCallError) -> Result {
    while true {
        let result = call()
        if result >= 0 { return result }
        let code = errno
        if code != EINTR { throw SystemCallError(function: function, code: code) }
    }
}

/// A file descriptor closed exactly once, when its owner is done with it.
/// close(2) is never retried: on Linux the descriptor is gone even when
/// close reports EINTR, and a retry could close another thread's new one.
public final class FileDescriptor: Sendable {
    /// The descriptor, for the calls made on it.
    public let raw: Int32

    /// open(2) with the flags given (O_CLOEXEC is always added).
    /// - Throws: `SystemCallError`.
    /// - Parameters:
    ///   - path: the file to open.
    ///   - flags: open(2)'s flags.
    ///   - mode: the permissions of a file it creates.
    public init(opening path: String, _ flags: Int32, mode: mode_t = 0o644) throws(SystemCallError) {
        raw = try systemCall("open") { open(path, flags | O_CLOEXEC, mode) }
    }

    /// openat(2): `name` in the directory open as `directory` (O_CLOEXEC is always added).
    /// - Parameters:
    ///   - name: a file name in the directory (no slash).
    ///   - directory: an open directory.
    ///   - flags: open(2)'s flags.
    ///   - mode: the permissions of a file it creates.
    /// - Throws: `SystemCallError`.
    public init(opening name: String, in directory: FileDescriptor, _ flags: Int32, mode: mode_t = 0o644) throws(SystemCallError) {
        raw = try systemCall("openat") { openat(directory.raw, name, flags | O_CLOEXEC, mode) }
    }

    deinit { close(raw) }
}

/// pread(2) until `buffer` is full or the file ends, retried on EINTR.
/// - Parameters:
///   - descriptor: an open file.
///   - buffer: where the bytes go.
///   - offset: the file offset of the first byte.
/// - Returns: the bytes read: `buffer.count`, or fewer where the file ends.
/// - Throws: `SystemCallError` of pread.
public func preadFully(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(SystemCallError) -> Int {
    var done = 0
    while done < buffer.count {
        let got = try systemCall("pread") { pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done)) }
        if got == 0 { break }
        done += got
    }
    return done
}
