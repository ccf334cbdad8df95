import Foundation
import Glibc

/// The few file-system operations storage needs, with errors that name the path.
public enum FileSystem {
    /// The size of file `path` in bytes; nil when it cannot be stat'ed.
    public static func size(of path: String) -> Int? {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : nil
    }

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

    /// Creates `directory` if needed (its parents too) and opens it without
    /// following a link, so that what is created in it (`FileDescriptor(opening:in:_:)`)
    /// lands in this directory and never where a planted link points.
    /// - Throws: `StorageError.io` naming the directory: it is a symbolic
    ///   link, not a directory, or cannot be created or opened.
    public static func openDirectory(_ directory: String) throws(StorageError) -> FileDescriptor {
        try createDirectory(directory)
        do {
            return try FileDescriptor(opening: directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
        } catch {
            // A link fails with ELOOP or (with O_DIRECTORY) ENOTDIR: lstat tells which it is.
            var info = stat()
            let isLink = lstat(directory, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK
            let reason = isLink ? "is a symbolic link; Backprop writes no file through a link"
                : error.code == ENOTDIR ? "is not a directory" : "cannot be opened (\(error))"
            throw .io(path: directory, reason: reason)
        }
    }

    /// Writes `bytes` as the file at `path` so that a reader never sees it
    /// half-written: a temporary file in the same directory is written,
    /// fsynced, renamed over `path`, and the directory fsynced. On any
    /// failure the temporary file is removed and whatever was at `path` is
    /// left untouched. Every file Backprop writes goes through here.
    ///
    /// - Throws: `StorageError.io`, e.g. "No space left on device".
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(StorageError) {
        try writeAtomically(to: path) { (file) throws(StorageError) in try write(bytes, to: file, reporting: path) }
    }

    /// Writes the file at `path` as `writeAtomically(_:to:)` does, its bytes
    /// from `fill`, which may write them a piece at a time (a file larger
    /// than memory).
    /// - Parameters:
    ///   - path: the file to write.
    ///   - fill: writes the contents to the temporary file (`write(_:to:reporting:)`, naming `path`).
    /// - Throws: `StorageError.io`, or what `fill` throws; `path` is then left as it was.
    public static func writeAtomically(to path: String, _ fill: (FileDescriptor) throws(StorageError) -> Void) throws(StorageError) {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: directory) else {
            throw .io(path: path, reason: "directory \(directory) does not exist")
        }
        let temporary = temporaryPath(in: directory, for: "tmp")
        do throws(StorageError) {
            try fill(try createExclusive(temporary, reporting: path))
            try sync(temporary)
            do {
                try systemCall("rename") { rename(temporary, path) }
            } catch {
                throw StorageError.io(path: path, reason: "cannot rename \(temporary) into place (\(error))")
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
        do {
            try systemCall("link") { Glibc.link(target, temporary) }
        } catch {
            throw .io(path: link, reason: "cannot link to \(target) (\(error))")
        }
        do {
            try systemCall("rename") { rename(temporary, link) }
        } catch {
            unlink(temporary)
            throw .io(path: link, reason: "cannot rename the new link into place (\(error))")
        }
        try syncDirectory(directory, of: link)
    }

    /// Removes the file at `path`; one that is already gone is fine.
    /// - Throws: `StorageError.io` naming the file when it cannot be removed.
    public static func remove(_ path: String) throws(StorageError) {
        do {
            try systemCall("unlink") { unlink(path) }
        } catch {
            guard error.code != ENOENT else { return }
            throw .io(path: path, reason: "cannot remove it (\(error))")
        }
    }

    /// Creates `path`, a fresh name (never an existing file or a link), for
    /// writing, naming `reported` in errors: the file the user asked for,
    /// not a temporary one.
    /// - Throws: `StorageError.io`.
    public static func createExclusive(_ path: String, reporting reported: String) throws(StorageError) -> FileDescriptor {
        do {
            return try FileDescriptor(opening: path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW)
        } catch {
            throw .io(path: reported, reason: "cannot create \(path) (\(error))")
        }
    }

    /// Writes all of `bytes` to `file` (write(2) until done).
    /// - Parameters:
    ///   - bytes: what to write.
    ///   - file: an open descriptor.
    ///   - reported: the file to name in errors.
    /// - Throws: `StorageError.io` naming `reported`.
    public static func write(_ bytes: [UInt8], to file: FileDescriptor, reporting reported: String) throws(StorageError) {
        var written = 0
        while written < bytes.count {
            let count: Int
            do {
                count = try systemCall("write") {
                    bytes.withUnsafeBytes { Glibc.write(file.raw, $0.baseAddress! + written, bytes.count - written) }
                }
            } catch {
                throw .io(path: reported, reason: "cannot write (\(error))")
            }
            // No progress and no error: give up rather than spin.
            guard count > 0 else { throw .io(path: reported, reason: "cannot write (write(2) wrote nothing)") }
            written += count
        }
    }

    /// fsync(2) on the directory that now holds `path`, so that the rename
    /// survives a crash. A file system that cannot sync directories (EINVAL,
    /// ENOTSUP, EROFS) is passed over; any other failure is reported: the file
    /// is in place, but not yet durable.
    public static func syncDirectory(_ directory: String, of path: String) throws(StorageError) {
        do {
            try fsyncPath(directory)
        } catch {
            guard ![EINVAL, ENOTSUP, EROFS].contains(error.code) else { return }
            throw .io(path: path, reason: "written, but its directory \(directory) could not be synced (\(error))")
        }
    }

    /// fsync(2) on a file.
    /// - Throws: `StorageError.io`.
    public static func sync(_ path: String) throws(StorageError) {
        do {
            try fsyncPath(path)
        } catch {
            throw .io(path: path, reason: "cannot make it durable (\(error))")
        }
    }

    /// open(2) and fsync(2) on a file or directory.
    private static func fsyncPath(_ path: String) throws(SystemCallError) {
        let file = try FileDescriptor(opening: path, O_RDONLY)
        try systemCall("fsync") { fsync(file.raw) }
    }
}
