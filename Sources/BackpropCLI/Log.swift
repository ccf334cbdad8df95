import BackpropCore
import BackpropOpenBLAS
import Foundation
import Logging

/// Warnings and notices for people, through swift-log: one line on standard
/// error, "warning: …", so that they stay apart from the program's output.
struct TerminalLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let prefix = event.level >= .error ? "error: " : event.level >= .warning ? "warning: " : ""
        FileHandle.standardError.write(Data((prefix + event.message.description + "\n").utf8))
    }
}

/// The CLI's logger.
let log = Logger(label: "backprop") { _ in TerminalLogHandler() }

/// Warns when OpenBLAS runs a generic kernel (README: "Which BLAS kernel runs").
func warnIfGenericBLAS() {
    if BLAS.isGenericFallback {
        log.warning("OpenBLAS chose the generic '\(BLAS.coreName)' kernel; set OPENBLAS_CORETYPE (e.g. Haswell, SkylakeX) for full speed.")
    }
}
