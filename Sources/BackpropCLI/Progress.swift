import Foundation

/// How much `backprop train` prints.
enum Verbosity: Int, Comparable {
    /// Nothing at all: the ranks of a job other than rank 0.
    case silent, quiet, normal, verbose
    static func < (a: Verbosity, b: Verbosity) -> Bool { a.rawValue < b.rawValue }
}

/// Training progress on standard output. On a terminal, a live bar per epoch
/// in the Keras/tqdm style, redrawn in place at most ten times a second:
///
///     epoch 3/10 [=========>          ] 120/235  00:03<00:04  95,112 samples/s  loss 0.3412
///
/// Piped or redirected, one plain line per `logEvery` steps (if set) instead.
/// Either way each epoch ends with its summary line.
final class ProgressReporter {
    /// Steps between plain log lines when --log-every is not given (0: per epoch only).
    static let defaultLogEvery = 0
    let verbosity: Verbosity
    let logEvery: Int
    let isTerminal: Bool
    private var lastDraw = 0.0
    private var drawn = false
    private var epochStart = Date()
    private var samples = 0
    private var lossSum = 0.0
    private var steps = 0

    init(verbosity: Verbosity, logEvery: Int, isTerminal: Bool = isatty(STDOUT_FILENO) == 1) {
        self.verbosity = verbosity
        self.logEvery = logEvery
        self.isTerminal = isTerminal
    }

    /// A line that is not progress (start, epoch summary, stop): clears the bar first.
    func line(_ text: String, minimum: Verbosity = .normal) {
        guard verbosity >= minimum else { return }
        clearBar()
        print(text)
        fflush(nil)
    }

    func startEpoch() {
        epochStart = Date()
        samples = 0
        lossSum = 0
        steps = 0
    }

    /// After each optimizer step.
    func step(epoch: Int, epochs: Int, batch: Int, batches: Int, step: Int, loss: Double, sampleCount: Int, learningRate: Double) {
        samples += sampleCount
        lossSum += loss
        steps += 1
        guard verbosity > .quiet else { return }
        let elapsed = Date().timeIntervalSince(epochStart)
        let rate = Double(samples) / max(elapsed, 1e-9)
        if isTerminal {
            guard elapsed - lastDraw >= 0.1 || batch == batches else { return }
            lastDraw = elapsed
            let width = 20, filled = batches > 0 ? width * batch / batches : 0
            let bar = String(repeating: "=", count: max(filled - 1, 0)) + (filled > 0 ? (filled == width ? "=" : ">") : "")
                + String(repeating: " ", count: width - filled)
            let remaining = batch > 0 ? elapsed / Double(batch) * Double(batches - batch) : 0
            let text = "epoch \(epoch + 1)/\(epochs) [\(bar)] \(batch)/\(batches)  \(clock(elapsed))<\(clock(remaining))  "
                + "\(grouped(rate)) samples/s  loss " + String(format: "%.4f", lossSum / Double(steps))
            FileHandle.standardOutput.write(Data(("\r" + text + "\u{1B}[K").utf8))
            drawn = true
        } else if logEvery > 0, step % logEvery == 0 {
            print(String(format: "step %ld  epoch %ld  batch %ld/%ld  loss %.4f  lr %.6g  %@ samples/s",
                         step, epoch + 1, batch, batches, loss, learningRate, grouped(rate)))
            fflush(nil)
        }
    }

    private func clearBar() {
        if drawn {
            FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8))
            drawn = false
        }
    }

    private func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60) : String(format: "%02ld:%02ld", s / 60, s % 60)
    }
}
