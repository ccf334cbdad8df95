import BackpropCore
import Foundation

/// Relative error |a − n| / max(|a|, |n|, 1e-12): the measure gradient checks use.
public func relativeError(_ a: Double, _ n: Double) -> Double {
    abs(a - n) / max(abs(a), abs(n), 1e-12)
}

/// A fresh empty directory under the system's temporary directory.
public func temporaryDirectory(_ label: String = "backprop") -> String {
    let path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A random classification dataset (`Dataset.random`).
public func randomDataset(count: Int, featureCount: Int, classCount: Int, seed: UInt64) -> Dataset {
    Dataset.random(count: count, featureCount: featureCount, classCount: classCount, seed: seed)
}

/// Two interleaved spirals in the plane, quantised to bytes (x = byte/255):
/// the classic small problem a linear model cannot solve.
public func twoSpirals(pointsPerClass: Int) -> Dataset {
    var features: [UInt8] = [], labels: [UInt8] = []
    for n in 0..<pointsPerClass {
        let r = 0.1 + 0.8 * Double(n) / Double(pointsPerClass)
        let angle = 1.5 * Double.pi * Double(n) / Double(pointsPerClass)
        for label in 0..<2 {
            let sign = label == 0 ? 1.0 : -1.0
            let x = 0.5 + 0.5 * sign * r * cos(angle), y = 0.5 + 0.5 * sign * r * sin(angle)
            features += [UInt8((x * 255).rounded()), UInt8((y * 255).rounded())]
            labels.append(UInt8(label))
        }
    }
    return Dataset(name: "two-spirals", features: features, labels: labels, featureCount: 2, scale: 1 / 255)
}

/// A small regression problem with float features and two real targets:
/// x ~ U[−1, 1]³, t = (x₁ − 2x₂ + ½, x₁x₃): one linear target, one that needs
/// a hidden layer. Reproducible from `seed`.
public func regressionDataset(count: Int, seed: UInt64) -> Dataset {
    var generator = SeededGenerator(seed: seed, stream: 3)
    let x = (0..<(3 * count)).map { _ in Float.random(in: -1...1, using: &generator) }
    var t: [Float] = []
    for n in 0..<count {
        let (x1, x2, x3) = (x[3 * n], x[3 * n + 1], x[3 * n + 2])
        t += [x1 - 2 * x2 + 0.5, x1 * x3]
    }
    return Dataset(name: "regression-\(seed)", features: .floats(x), targets: .values(t, width: 2), featureCount: 3)
}

/// The path of the built `backprop` executable, beside the test bundle.
public func backpropExecutable() -> String {
    let candidates = [
        Bundle.main.bundleURL.appendingPathComponent("backprop").path,
        Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("backprop").path,
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("backprop").path,
    ]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
}

/// What a finished process printed and how it ended.
public struct ProcessResult: Sendable {
    public let status: Int32
    /// True when the process ended by a signal (a crash), not by exit().
    public let signalled: Bool
    public let standardOutput: String
    public let standardError: String
}

/// Runs `executable` with `arguments` in `directory` and waits for it.
public func run(_ executable: String, _ arguments: [String], in directory: String? = nil,
                environment: [String: String] = [:]) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let output = Pipe(), error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    // Read before waiting so that a full pipe cannot block the child.
    let outData = output.fileHandleForReading.readDataToEndOfFile()
    let errData = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus,
                         signalled: process.terminationReason == .uncaughtSignal,
                         standardOutput: String(decoding: outData, as: UTF8.self),
                         standardError: String(decoding: errData, as: UTF8.self))
}

/// Starts `executable` without waiting, its output discarded or sent to
/// `outputFile` (a file, so that a long run cannot fill a pipe).
public func start(_ executable: String, _ arguments: [String], in directory: String, outputFile: String? = nil,
                  environment: [String: String] = [:]) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    if let outputFile {
        precondition(FileManager.default.createFile(atPath: outputFile, contents: nil), "cannot create \(outputFile)")
        process.standardOutput = FileHandle(forWritingAtPath: outputFile)
    } else {
        process.standardOutput = FileHandle.nullDevice
    }
    process.standardError = FileHandle.nullDevice
    try process.run()
    return process
}

/// Every regular file under `directory` and its contents, to show that a
/// failed command changed nothing.
public func snapshot(_ directory: String) -> [String: Data] {
    var files: [String: Data] = [:]
    let enumerator = FileManager.default.enumerator(atPath: directory)
    while let name = enumerator?.nextObject() as? String {
        let path = "\(directory)/\(name)"
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            files[name] = FileManager.default.contents(atPath: path)
        }
    }
    return files
}

/// Runs `executable` to its end, sampling its peak resident set (VmHWM of
/// /proc/<pid>/status) every 2 ms: the peak in KiB as last read before it
/// exited, and its exit status. Its output goes to `outputFile`.
public func peakResidentKiB(_ executable: String, _ arguments: [String], in directory: String,
                            outputFile: String) throws -> (status: Int32, kib: Int) {
    let process = try start(executable, arguments, in: directory, outputFile: outputFile)
    var peak = 0
    while process.isRunning {
        if let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") {
            peak = max(peak, kib)
        }
        usleep(2000)
    }
    process.waitUntilExit()
    return (process.terminationStatus, peak)
}

/// One step of `step` over every sample of `dataset`, in order, at `network`'s
/// parameters with learning rate 0 (which leaves them as they are): the step's
/// Σ_n E^n and the gradient the optimizer received.
public func lossAndGradient(of step: TrainingStep<Float>, at network: Network<Float>, on dataset: Dataset) -> (loss: Float, gradient: [Float]) {
    step.recordsGradient = true
    var optimizer = OptimizerSettings(kind: .sgd).makeOptimizer(parameterCount: network.parameterCount, scalar: Float.self)
    var parameters = network.parameters
    let indices = (0..<dataset.count).map(Int32.init)
    let loss = indices.withUnsafeBufferPointer { batch in
        parameters.withUnsafeMutableBufferPointer { w in
            optimizer.withStep(learningRate: 0) { rule in
                step.step(data: Batch(dataset), indices: batch, scale: 1, rule: rule, parameters: w.baseAddress!)
            }
        }
    }
    return (loss, step.gradient)
}
