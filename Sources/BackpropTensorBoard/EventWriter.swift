import BackpropIO
import Foundation
import Glibc
import SwiftProtobuf

/// A TensorBoard event file (`events.out.tfevents.<time>.<host>`): TFRecords
/// of serialized `Event` messages, the first one carrying the file version
/// "brain.Event:2". Each record is
///
///     uint64 length (little-endian) · uint32 masked CRC32C of those 8 bytes ·
///     the event's bytes · uint32 masked CRC32C of them
///
/// (TensorFlow's record format, `tensorflow/core/lib/io/record_writer.cc`).
/// Each record goes out in one write(2), so what a killed process wrote is in
/// the file; `flush()` fsyncs it. The file is created fresh, never through a link.
public final class EventWriter {
    /// The file's path.
    public let path: String
    private let file: FileDescriptor

    /// Creates the event file in `directory` (made if needed) and writes its
    /// version; when `resumedAt` is given, a session start at that step too, so
    /// that TensorBoard drops what earlier files logged from that step on
    /// (steps a killed run logged after its last checkpoint, which run again).
    /// - Parameters:
    ///   - directory: where the file goes (created if needed).
    ///   - step: the step a resumed run starts at; nil for a fresh run.
    ///   - wallTime: seconds since 1970, for the name and the first events.
    /// - Throws: `StorageError.io` naming the file.
    public init(directory: String, resumedAt step: Int? = nil, wallTime: Double = Date().timeIntervalSince1970) throws {
        // The directory opened without following a link, and the file created in it, fresh (never through a link).
        let folder = try FileSystem.openDirectory(directory)
        var host = [CChar](repeating: 0, count: 256)
        let hostname = (try? systemCall("gethostname") { gethostname(&host, host.count) }) != nil ? String(cString: host) : "localhost"
        let base = "events.out.tfevents.\(Int(wallTime)).\(hostname)"
        // A second file in the same second (a quick resume) gets the process id too.
        var opened: (path: String, file: FileDescriptor)?
        for name in [base, "\(base).\(getpid())"] where opened == nil {
            do {
                opened = ("\(directory)/\(name)", try FileDescriptor(opening: name, in: folder, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW))
            } catch where error.code == EEXIST {
                continue
            } catch {
                throw StorageError.io(path: "\(directory)/\(name)", reason: "cannot create the TensorBoard event file (\(error))")
            }
        }
        guard let opened else { throw StorageError.io(path: "\(directory)/\(base)", reason: "cannot create the TensorBoard event file (it exists)") }
        (path, file) = opened
        var version = Tensorflow_Event()
        version.wallTime = wallTime
        version.fileVersion = "brain.Event:2"
        try write(version)
        if let step {
            var start = Tensorflow_Event()
            start.wallTime = wallTime
            start.step = Int64(step)
            start.sessionLog.status = .start
            try write(start)
        }
    }

    /// Writes scalar summaries at `step`, one event holding every (tag, value).
    /// - Parameters:
    ///   - values: the scalars, by tag ("epoch/train_loss").
    ///   - step: the optimizer step they belong to.
    ///   - wallTime: seconds since 1970.
    /// - Throws: `StorageError.io` when the write fails.
    public func scalars(_ values: [(tag: String, value: Double)], step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
        var event = Tensorflow_Event()
        event.wallTime = wallTime
        event.step = Int64(step)
        event.summary.value = values.map { tag, value in
            var entry = Tensorflow_Summary.Value()
            entry.tag = tag
            entry.simpleValue = Float(value)
            return entry
        }
        try write(event)
    }

    /// Makes everything written so far durable (fsync).
    /// - Throws: `StorageError.io` when fsync fails.
    public func flush() throws {
        do {
            try systemCall("fsync") { fsync(file.raw) }
        } catch {
            throw StorageError.io(path: path, reason: "cannot sync the TensorBoard events (\(error))")
        }
    }

    private func write(_ event: Tensorflow_Event) throws {
        try FileSystem.write(EventWriter.record(try event.serializedBytes() as [UInt8]), to: file, reporting: path)
    }

    // MARK: - TFRecord framing

    /// `data` framed as one TFRecord.
    static func record(_ data: [UInt8]) -> [UInt8] {
        var length = [UInt8](repeating: 0, count: 8)
        for i in 0..<8 { length[i] = UInt8(truncatingIfNeeded: UInt64(data.count) >> (8 * UInt64(i))) }
        return length + littleEndian(maskedCRC(length)) + data + littleEndian(maskedCRC(data))
    }

    private static func littleEndian(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

    /// TFRecord's mask of a CRC: rotate right by 15 bits, add 0xa282ead8.
    static func maskedCRC(_ data: [UInt8]) -> UInt32 {
        let crc = crc32c(data)
        return ((crc >> 15) | (crc << 17)) &+ 0xa282_ead8
    }

    /// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bytewise from a table.
    static func crc32c(_ data: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }
}
