import Foundation
import Synchronization

/// The first stop signal received (0: none). Written by the signal handler:
/// a lock-free atomic is async-signal-safe.
private let receivedSignal = Atomic<Int32>(0)

/// The handler for SIGINT, SIGTERM and SIGHUP. The first signal is recorded for the
/// training loop, which finishes its step, writes a checkpoint and exits; a
/// second one exits at once, with only async-signal-safe calls (atomic
/// writes leave the previous checkpoint intact).
private func stopHandler(_ signalNumber: Int32) {
    let (first, _) = receivedSignal.compareExchange(expected: 0, desired: signalNumber, ordering: .sequentiallyConsistent)
    if !first {
        let message: StaticString = "\nsecond signal: exiting now; the last checkpoint is intact.\n"
        _ = write(STDERR_FILENO, message.utf8Start, message.utf8CodeUnitCount)
        _exit(128 + signalNumber)
    }
}

/// The handler for SIGPIPE (standard output's reader went away, as in
/// `backprop train | head -1`): a request to stop like the others, but never
/// an exit, since every later write to the closed pipe raises it again.
private func pipeHandler(_ signalNumber: Int32) {
    _ = receivedSignal.compareExchange(expected: 0, desired: signalNumber, ordering: .sequentiallyConsistent)
}

/// SIGINT, SIGTERM, SIGHUP and SIGPIPE during training, turned into a
/// request to stop: the loop finishes its step, writes a checkpoint, and
/// exits with 128 + the signal's number.
struct StopSignals {
    /// Installs the handlers and unblocks the signals: a parent may have
    /// started us with them blocked (Foundation's Process does).
    init() {
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for signalNumber in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] {
            var action = sigaction()
            if signalNumber == SIGPIPE {
                action.__sigaction_handler.sa_handler = pipeHandler
            } else {
                action.__sigaction_handler.sa_handler = stopHandler
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(signalNumber, &action, nil)
            sigaddset(&unblock, signalNumber)
        }
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
    }

    /// Stops the run as SIGTERM would when the process that started it goes
    /// away (a sweep killed with SIGKILL leaves no trial training on behind it):
    /// asked for by `backprop sweep` through the environment variable `parentVariable`.
    static func watchParent() {
        guard ProcessInfo.processInfo.environment[parentVariable] != nil else { return }
        let parent = getppid()
        let thread = Thread {
            while getppid() == parent { sleep(1) }
            stopHandler(SIGTERM)
        }
        thread.name = "backprop-parent-watch"
        thread.start()
    }

    /// Set by `backprop sweep` for its trials.
    static let parentVariable = "BACKPROP_STOP_WITH_PARENT"

    /// "SIGINT", "SIGTERM", "SIGHUP" or "SIGPIPE".
    static func name(_ signalNumber: Int32) -> String {
        [SIGINT: "SIGINT", SIGTERM: "SIGTERM", SIGHUP: "SIGHUP", SIGPIPE: "SIGPIPE"][signalNumber] ?? "signal \(signalNumber)"
    }

    /// The signal that asked to stop, if any.
    var stopSignal: Int32? {
        let value = receivedSignal.load(ordering: .sequentiallyConsistent)
        return value == 0 ? nil : value
    }
}
