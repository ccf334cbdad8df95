import BackpropCore
import BackpropIO
import Foundation

/// The directory of one training run and the checkpoints in it:
///
///     checkpoint-00000470.h5   one per save, named by step; the newest `keep` are kept
///     last.h5                  the newest checkpoint (a hard link to it)
///     best.h5                  the checkpoint with the best validation score (or loss: the monitor) so far
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

    /// The name of the lock file every run directory holds while, and after, a run uses it.
    public static let lockName = ".lock"

    /// Whether `name` is one of the files `train` manages in a run directory:
    /// the lock, config.json, metrics.csv, curves.svg, last.h5, best.h5, the
    /// step checkpoints and the event files. No other command may write one.
    public static func manages(_ name: String) -> Bool {
        [lockName, "config.json", "metrics.csv", "curves.svg", "last.h5", "best.h5"].contains(name)
            || (name.hasPrefix("checkpoint-") && name.hasSuffix(".h5")) || name.hasPrefix("events.out.tfevents")
            || name.hasPrefix(FileSystem.temporaryPrefix)
    }

    /// Whether `path` names a file that `train` manages in a run directory
    /// (one that holds a lock file), or in `runDirectory` (that of the run about to start).
    public static func isManagedFile(_ path: String, runDirectory: String? = nil) -> Bool {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        var directory = url.deletingLastPathComponent()
        guard manages(url.lastPathComponent) else { return false }
        // The event files live one level down, in <run>/tensorboard.
        if url.lastPathComponent.hasPrefix("events.out.tfevents"), directory.lastPathComponent == "tensorboard" {
            directory = directory.deletingLastPathComponent()
        }
        if let runDirectory, URL(fileURLWithPath: runDirectory).standardizedFileURL.resolvingSymlinksInPath().path
            == directory.resolvingSymlinksInPath().path { return true }
        return FileSystem.exists(directory.appendingPathComponent(lockName).path)
    }

    public var lastPath: String { "\(path)/last.h5" }
    public var bestPath: String { "\(path)/best.h5" }
    public var modelPath: String { "\(path)/model.h5" }
    public var configurationPath: String { "\(path)/config.json" }
    public var metricsPath: String { "\(path)/metrics.csv" }
    /// Where the TensorBoard event files go (`tensorboard --logdir` takes it, or the run directory).
    public var eventsPath: String { "\(path)/tensorboard" }

    /// Writes a text file of the run atomically.
    /// - Throws: `StorageError.io`.
    public func write(_ text: String, to file: String) throws(StorageError) {
        try FileSystem.writeAtomically(Array(text.utf8), to: file)
    }

    /// metrics.csv's header line (no newline).
    public static func metricsHeader(_ task: LearningTask, extras: [String]) -> String {
        (EpochRecord.columns(task).map(\.name) + extras).joined(separator: ",")
    }

    /// One epoch's line of metrics.csv (no newline); a value that is not
    /// finite is written as Python writes it (nan, inf, -inf), which pandas and NumPy read.
    public static func metricsRow(_ record: EpochRecord, task: LearningTask, extras: [String]) -> String {
        func text(_ value: Double) -> String { value.isNaN ? "nan" : value.isInfinite ? (value > 0 ? "inf" : "-inf") : "\(value)" }
        return (EpochRecord.columns(task).map { column in
                    let value = column.value(record)
                    return column.isCount ? column.text(record) : column.isOptional && value.isNaN ? "" : text(value)
                }
                + extras.map { record.extras[$0].map(text) ?? "" }).joined(separator: ",")
    }

    /// What `rewriteMetrics` wrote: the extra columns of its header, and the
    /// epochs (1-based) before the new row that the file it read from lacked.
    public struct MetricsRewrite: Equatable, Sendable {
        public var extras: [String]
        public var missing: [Int]
    }

    /// Rewrites metrics.csv (a process's first epoch, or a new column): the
    /// rows of the epochs before `record` as `source` holds them, each cell
    /// moved under its column's name ("" where it had none), then `record`'s.
    /// A row `source` lacks (or holds cut short or damaged: reading stops
    /// there) comes from `kept` (the history's thinned rows) where it is
    /// kept, and is reported missing. Reading stops at `record`'s epoch, so a
    /// resumed run's later rows (from steps that run again) are dropped, and
    /// the cost is the log's, never more.
    /// - Parameters:
    ///   - source: the metrics.csv to read (this directory's, or the one a resume branches from).
    ///   - record: the epoch just logged, whose row ends the file.
    ///   - kept: the history's thinned rows, for rows `source` lacks.
    ///   - task: the run's task (its score columns).
    ///   - measured: the extras `record` measured; columns `source` holds stay.
    /// - Returns: the extra columns written and the epochs `source` lacked.
    /// - Throws: `StorageError.io` when the file cannot be written.
    public func rewriteMetrics(from source: String, through record: EpochRecord, kept: [EpochRecord],
                               task: LearningTask, measured: Set<String>) throws(StorageError) -> MetricsRewrite {
        let (header, rows) = Self.metricsRows(in: source, before: record.epoch)
        let extras = EpochRecord.extraNames.filter { measured.contains($0) || header.contains($0) }
        let names = EpochRecord.columns(task).map(\.name) + extras
        let column = Dictionary(header.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        var lines = [names.joined(separator: ",")]
        lines += rows.map { cells in names.map { column[$0].map { cells[$0] } ?? "" }.joined(separator: ",") }
        let keptRows = Dictionary(kept.map { ($0.epoch, $0) }, uniquingKeysWith: { first, _ in first })
        var missing: [Int] = []
        for epoch in rows.count..<record.epoch {
            missing.append(epoch + 1)
            if let row = keptRows[epoch] { lines.append(Self.metricsRow(row, task: task, extras: extras)) }
        }
        lines.append(Self.metricsRow(record, task: task, extras: extras))
        try write(lines.joined(separator: "\n") + "\n", to: metricsPath)
        return MetricsRewrite(extras: extras, missing: missing)
    }

    /// The header and the cells of the first rows of a metrics.csv, those of
    /// epochs 1…`count` in order: reading stops at the first row that is not
    /// the next epoch's, has another number of cells than the header, holds a
    /// cell that is not a number, or runs past `maximumLineLength`. A file
    /// that is absent, a link or not a plain file has no rows.
    static func metricsRows(in path: String, before count: Int) -> (header: [String], rows: [[String]]) {
        guard count > 0, let file = try? FileDescriptor(opening: path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK) else { return ([], []) }
        var status = stat()
        guard fstat(file.raw, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { return ([], []) }
        var header: [String]?
        var rows: [[String]] = []
        var line: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        // Takes one line; false when the read ends there (a damaged line, or the last row wanted).
        func accept(_ bytes: [UInt8]) -> Bool {
            let cells = String(decoding: bytes, as: UTF8.self).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard let names = header else {
                header = cells
                return cells.first == "epoch"
            }
            guard cells.count == names.count, cells[0] == "\(rows.count + 1)",
                  cells.allSatisfy({ $0.isEmpty || Double($0) != nil }) else { return false }
            rows.append(cells)
            return rows.count < count
        }
        reading: while true {
            let read = buffer.withUnsafeMutableBytes { Glibc.read(file.raw, $0.baseAddress!, $0.count) }
            guard read > 0 else { break }
            for byte in buffer[..<read] {
                guard byte != UInt8(ascii: "\n") else {
                    guard accept(line) else { break reading }
                    line.removeAll(keepingCapacity: true)
                    continue
                }
                line.append(byte)
                guard line.count <= maximumLineLength else { break reading }
            }
        }
        return (header ?? [], rows)
    }

    /// The longest line of metrics.csv read back (a row holds about 200 bytes).
    static let maximumLineLength = 1 << 16

    /// Appends `line` and a newline to the run's file `file`, never through a
    /// link, and fsyncs it: the cost of a log line, however long the file.
    /// A crash may leave the last line cut short; the next start rewrites the file whole.
    /// - Throws: `StorageError.io`.
    public func append(line: String, to file: String) throws(StorageError) {
        let descriptor: FileDescriptor
        do {
            descriptor = try FileDescriptor(opening: file, O_WRONLY | O_APPEND | O_NOFOLLOW)
        } catch {
            throw .io(path: file, reason: "cannot open it to append (\(error))")
        }
        try FileSystem.write(Array((line + "\n").utf8), to: descriptor, reporting: file)
        do {
            try systemCall("fsync") { fsync(descriptor.raw) }
        } catch {
            throw .io(path: file, reason: "cannot sync it (\(error))")
        }
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

    /// Takes the lock of `directory` (a run's, or a sweep's: `holder` names
    /// the kind of process that holds it, in the message of one refused).
    /// - Throws: `StorageError.io` naming the directory and the holder's pid
    ///   when another process holds it.
    public init(directory: String, holder: String = "backprop train") throws(StorageError) {
        let file = "\(directory)/\(RunDirectory.lockName)"
        let lockFile: FileDescriptor
        // Never through a link: a .lock planted as a symbolic link (ELOOP) or
        // a hard link to another file would make this process truncate it.
        do {
            lockFile = try FileDescriptor(opening: file, O_RDWR | O_CREAT | O_NOFOLLOW)
        } catch where error.code == ELOOP {
            throw .io(path: file, reason: "is a symbolic link; a run directory's files are never written through a link (remove it)")
        } catch {
            throw .io(path: file, reason: "cannot open the run's lock file (\(error))")
        }
        var status = stat()
        guard (try? systemCall("fstat") { fstat(lockFile.raw, &status) }) != nil,
              status.st_mode & S_IFMT == S_IFREG, status.st_nlink == 1 else {
            throw .io(path: file, reason: "is not a plain file of its own (a hard link or a special file); "
                      + "a run directory's files are never written through a link (remove it)")
        }
        do {
            try systemCall("flock") { flock(lockFile.raw, LOCK_EX | LOCK_NB) }
        } catch where error.code == EWOULDBLOCK {
            var bytes = [UInt8](repeating: 0, count: 32)
            let count = (try? systemCall("pread") { pread(lockFile.raw, &bytes, bytes.count, 0) }) ?? 0
            let pid = count > 0 ? String(decoding: bytes[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
            let then = holder == "backprop train" ? "wait for it or stop it (SIGINT writes a checkpoint), then resume"
                : "wait for it or stop it, then run it again"
            throw .io(path: directory, reason: "is in use by another \(holder) (pid \(pid)); " + then)
        } catch {
            throw .io(path: file, reason: "cannot lock the run's lock file (\(error))")
        }
        self.file = lockFile
    }

    /// Writes this process's id into the lock file, for the message of a
    /// process that is refused (after the checks that may refuse this one,
    /// so that a refused run leaves the directory as it was).
    public func recordHolder() {
        let pid = Array("\(getpid())\n".utf8)
        // Best effort: the pid only makes another process's refusal clearer.
        _ = try? systemCall("ftruncate") { ftruncate(file.raw, 0) }
        _ = try? systemCall("pwrite") { pwrite(file.raw, pid, pid.count, 0) }
    }
}
