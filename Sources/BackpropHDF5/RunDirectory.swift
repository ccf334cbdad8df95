import BackpropCore
import Foundation

/// The directory of one training run and the checkpoints in it:
///
///     checkpoint-00000470.h5   one per save, named by step; the newest `keep` are kept
///     last.h5                  the newest checkpoint (a hard link to it)
///     best.h5                  the checkpoint with the best test accuracy (or RMSE) so far
///     model.h5                 the final model (unless --output says otherwise)
///     config.json              the resolved configuration of the run
///     metrics.csv              one row per finished epoch, rewritten from the
///                              checkpointed history, so it never disagrees with it
///
/// Every file appears atomically (written beside, fsynced, renamed), and old
/// files are removed only after the new one is in place.
public struct RunDirectory: Sendable {
    public let path: String

    public init(_ path: String) {
        self.path = path
    }

    public var lastPath: String { "\(path)/last.h5" }
    public var bestPath: String { "\(path)/best.h5" }
    public var modelPath: String { "\(path)/model.h5" }
    public var configurationPath: String { "\(path)/config.json" }
    public var metricsPath: String { "\(path)/metrics.csv" }

    /// Writes a text file of the run atomically.
    /// - Throws: `StorageError.io`.
    public func write(_ text: String, to file: String) throws(StorageError) {
        try FileSystem.writeAtomically(Array(text.utf8), to: file)
    }

    /// metrics.csv for `history`: a header and one row per finished epoch,
    /// with the task's test score (accuracy or RMSE).
    public static func metricsCSV(_ history: History, task: LearningTask) -> String {
        let columns = EpochRecord.columns(task)
        // Extra columns for what any epoch measured (empty where one did not).
        let extras = EpochRecord.extraNames.filter { name in history.epochs.contains { $0.extras[name] != nil } }
        var lines = [(columns.map(\.name) + extras).joined(separator: ",")]
        for r in history.epochs {
            lines.append((columns.map { $0.text(r) } + extras.map { r.extras[$0].map { "\($0)" } ?? "" }).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public func checkpointPath(step: Int) -> String {
        let digits = String(step)
        return "\(path)/checkpoint-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits + ".h5"
    }

    /// The step-named checkpoints present, newest first.
    public func checkpoints() -> [(step: Int, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("checkpoint-"), name.hasSuffix(".h5"),
                  let step = Int(name.dropFirst("checkpoint-".count).dropLast(3)) else { return nil }
            return (step, "\(path)/\(name)")
        }.sorted { $0.0 > $1.0 }
    }

    /// Saves `checkpoint` as the step's file, points last.h5 (and best.h5 when
    /// `isBest`) at it, then removes step files beyond the newest `keep`.
    /// - Returns: the step file's path.
    /// - Throws: `StorageError.io` (directory not writable, disk full); any
    ///   file present before the call is then left as it was.
    @discardableResult
    public func save(_ checkpoint: Checkpoint, isBest: Bool, keep: Int) throws(StorageError) -> String {
        try FileSystem.createDirectory(path)
        let file = checkpointPath(step: checkpoint.position.step)
        try checkpoint.save(to: file)
        try FileSystem.linkAtomically(file, to: lastPath)
        if isBest { try FileSystem.linkAtomically(file, to: bestPath) }
        for old in checkpoints().dropFirst(max(keep, 1)) { try FileSystem.remove(old.path) }
        return file
    }

    /// The newest checkpoint in the directory that loads and validates: the
    /// step files from newest to oldest, then last.h5 and best.h5 (links to
    /// step files, tried in case those were removed by hand). `warn` is told
    /// about each file skipped and why.
    /// - Throws: `StorageError.missingFile` when the directory does not exist,
    ///   `.invalidContent` when no checkpoint in it validates.
    public func newestValidCheckpoint(warn: (String) -> Void) throws(StorageError) -> (checkpoint: Checkpoint, path: String) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .missingFile(path: path)
        }
        let candidates = checkpoints().map(\.path) + [lastPath, bestPath].filter(FileSystem.exists)
        for candidate in candidates {
            do {
                return (try Checkpoint.load(from: candidate), candidate)
            } catch {
                warn("skipping \(candidate): \(error.description)")
            }
        }
        throw .invalidContent(path: path, object: "run directory", reason: "holds no valid checkpoint to resume from")
    }

    /// Makes the directory ready for a run and holds it for this process:
    /// creates it, checks that files can be created in it, takes its lock
    /// (see `RunLock`), refuses a directory that already holds a run (a
    /// checkpoint or a model) unless the run continues it, and removes
    /// temporary files a killed process left.
    /// - Parameter continuing: the run resumes from a checkpoint (the
    ///   directory may hold its files).
    /// - Throws: `StorageError.io` naming the directory: not writable, in use
    ///   by another process (its pid named), or holding another run.
    public func prepare(continuing: Bool) throws(StorageError) -> RunLock {
        try FileSystem.createDirectory(path)
        guard access(path, W_OK) == 0 else {
            throw .io(path: path, reason: "the run directory is not writable")
        }
        let lock = try RunLock(directory: path)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        // A run is there once it saved a checkpoint or a model (a run killed
        // before its first save leaves only config.json: nothing to mix with).
        if !continuing, let file = names.sorted().first(where: { !$0.hasPrefix(".") && $0.hasSuffix(".h5") }) {
            throw .refused(path: path, object: "", reason: "already holds a run (\(file))",
                           advice: .resumeOrAnotherRunDirectory(path))
        }
        // What a process killed mid-write left behind.
        for name in names where name.hasPrefix(FileSystem.temporaryPrefix) {
            try FileSystem.remove("\(path)/\(name)")
        }
        lock.recordHolder()
        return lock
    }

    /// A directory under `parent` named `name`, or `name-2`, `name-3`, … when
    /// that exists: created here (mkdir is atomic), so two runs started in the
    /// same second never share one.
    /// - Throws: `StorageError.io` when none can be created.
    public static func createUnique(in parent: String, named name: String) throws(StorageError) -> RunDirectory {
        try FileSystem.createDirectory(parent)
        for attempt in 1...1000 {
            let path = "\(parent)/\(name)" + (attempt == 1 ? "" : "-\(attempt)")
            do {
                try systemCall("mkdir") { mkdir(path, 0o755) }
                return RunDirectory(path)
            } catch where error.code == EEXIST {
                continue
            } catch {
                throw .io(path: path, reason: "cannot create a new run directory (\(error))")
            }
        }
        throw .io(path: "\(parent)/\(name)", reason: "cannot create a new run directory: the names up to \(name)-1000 are taken")
    }
}

/// One process's hold on a run directory: an exclusive advisory lock
/// (`flock`) on its `.lock` file, which holds the process id. The kernel
/// releases it when the process ends, however it ends (SIGKILL too), so a
/// stale lock never blocks a resume.
public final class RunLock: Sendable {
    /// The lock file, open while the lock is held.
    private let file: FileDescriptor

    /// Takes the lock of `directory`.
    /// - Throws: `StorageError.io` naming the directory and the holder's pid
    ///   when another process holds it.
    init(directory: String) throws(StorageError) {
        let file = "\(directory)/.lock"
        let lockFile: FileDescriptor
        do {
            lockFile = try FileDescriptor(opening: file, O_RDWR | O_CREAT)
        } catch {
            throw .io(path: file, reason: "cannot open the run's lock file (\(error))")
        }
        do {
            try systemCall("flock") { flock(lockFile.raw, LOCK_EX | LOCK_NB) }
        } catch where error.code == EWOULDBLOCK {
            var bytes = [UInt8](repeating: 0, count: 32)
            let count = (try? systemCall("pread") { pread(lockFile.raw, &bytes, bytes.count, 0) }) ?? 0
            let holder = count > 0 ? String(decoding: bytes[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
            throw .io(path: directory, reason: "is in use by another backprop train (pid \(holder)); "
                      + "wait for it or stop it (SIGINT writes a checkpoint), then resume")
        } catch {
            throw .io(path: file, reason: "cannot lock the run's lock file (\(error))")
        }
        self.file = lockFile
    }

    /// Writes this process's id into the lock file, for the message of a
    /// process that is refused (after the checks that may refuse this one,
    /// so that a refused run leaves the directory as it was).
    func recordHolder() {
        let pid = Array("\(getpid())\n".utf8)
        // Best effort: the pid only makes another process's refusal clearer.
        _ = try? systemCall("ftruncate") { ftruncate(file.raw, 0) }
        _ = try? systemCall("pwrite") { pwrite(file.raw, pid, pid.count, 0) }
    }
}
