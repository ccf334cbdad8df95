import Foundation
import Glibc

/// The few file-system operations storage needs, with errors that name the path.
public enum FileSystem {
    public static func exists(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path)
    }

    /// Creates `directory` and its parents if needed.
    /// - Throws: `StorageError.io`.
    public static func createDirectory(_ directory: String) throws(StorageError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .io(path: directory, reason: "cannot create the directory (\(error.localizedDescription))")
        }
    }

    /// Writes a file so that a reader never sees it half-written: `write` fills
    /// a temporary file in the same directory, which is then fsynced, renamed
    /// over `path`, and the directory fsynced. On any failure the temporary
    /// file is removed and whatever was at `path` is left untouched.
    ///
    /// - Throws: what `write` throws, or `StorageError.io`.
    public static func writeAtomically(
        _ path: String, _ write: (_ temporaryPath: String) throws(StorageError) -> Void
    ) throws(StorageError) {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: directory) else {
            throw .io(path: path, reason: "directory \(directory) does not exist")
        }
        let temporary = temporaryPath(in: directory, for: "tmp")
        do throws(StorageError) {
            try write(temporary)
            try sync(temporary)
            guard rename(temporary, path) == 0 else {
                throw StorageError.io(path: path, reason: "cannot rename \(temporary) into place (\(errorText()))")
            }
        } catch {
            unlink(temporary)
            throw error
        }
        try syncDirectory(directory, of: path)
    }

    /// The prefix of every temporary file Backprop makes; a run directory's
    /// leftovers (from a process killed mid-write) are found by it.
    public static let temporaryPrefix = ".backprop-"

    /// A fresh name in `directory` for a file that is written and then
    /// renamed into place: short and fixed in length (not the final name
    /// with a suffix, which could pass the file system's name limit when the
    /// final name does not), unique to this process and call.
    public static func temporaryPath(in directory: String, for purpose: String) -> String {
        "\(directory)/\(temporaryPrefix)\(purpose)-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
    }

    /// Makes `link` a hard link to `target`, replacing any previous `link`
    /// atomically (a temporary link renamed over it), then fsyncs the directory.
    /// - Throws: `StorageError.io`.
    public static func linkAtomically(_ target: String, to link: String) throws(StorageError) {
        let url = URL(fileURLWithPath: link)
        let directory = url.deletingLastPathComponent().path
        let temporary = temporaryPath(in: directory, for: "link")
        guard Glibc.link(target, temporary) == 0 else {
            throw .io(path: link, reason: "cannot link to \(target) (\(errorText()))")
        }
        guard rename(temporary, link) == 0 else {
            unlink(temporary)
            throw .io(path: link, reason: "cannot rename the new link into place (\(errorText()))")
        }
        try syncDirectory(directory, of: link)
    }

    /// Writes `bytes` as the file at `path`, atomically (`writeAtomically`).
    /// - Throws: `StorageError.io`.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(StorageError) {
        try writeAtomically(path) { (temporary) throws(StorageError) in
            try write(bytes, to: temporary, reporting: path)
        }
    }

    /// Creates `path` and writes `bytes` to it (write(2) until done), naming
    /// `reported` in errors: the file the user asked for, not a temporary one.
    /// - Throws: `StorageError.io`, e.g. "No space left on device".
    static func write(_ bytes: [UInt8], to path: String, reporting reported: String) throws(StorageError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .io(path: reported, reason: "cannot create \(path) (\(errorText()))") }
        defer { close(descriptor) }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, bytes.count - written) }
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else { throw .io(path: reported, reason: "cannot write (\(errorText()))") }
            written += result
        }
    }

    /// fsync(2) on the directory that now holds `path`, so that the rename
    /// survives a crash. A file system that cannot sync directories (EINVAL,
    /// ENOTSUP, EROFS) is passed over; any other failure is reported: the file
    /// is in place, but not yet durable.
    static func syncDirectory(_ directory: String, of path: String) throws(StorageError) {
        do throws(StorageError) {
            try sync(directory)
        } catch {
            guard ![EINVAL, ENOTSUP, EROFS].contains(errno) else { return }
            throw .io(path: path, reason: "written, but its directory \(directory) could not be synced (\(errorText()))")
        }
    }

    /// fsync(2) on a file or directory.
    static func sync(_ path: String) throws(StorageError) {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw .io(path: path, reason: "cannot open for fsync (\(errorText()))") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw .io(path: path, reason: "fsync failed (\(errorText()))") }
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}
