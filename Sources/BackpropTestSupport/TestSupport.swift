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
