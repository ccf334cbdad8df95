import ArgumentParser
import BackpropCore
import Foundation

/// `--kernel auto|avx512|avx2|portable`: the path of the matrix products.
/// Every path gives the same bits; `auto` takes BACKPROP_KERNEL when it is
/// set (tests run a whole suite on one path that way), else the fastest path
/// this CPU runs.
enum KernelChoice: String, CaseIterable, ExpressibleByArgument {
    case auto, avx512, avx2, portable

    /// The path to run.
    /// - Throws: `ValidationError` for a path this CPU cannot run, or a
    ///   BACKPROP_KERNEL that names none.
    func resolved() throws -> Kernel {
        let available = Kernel.allCases.filter(\.isAvailable).map(\.rawValue).joined(separator: ", ")
        guard self == .auto else {
            guard let kernel = Kernel(rawValue: rawValue), kernel.isAvailable else {
                throw ValidationError("--kernel \(rawValue) is not available: this CPU runs \(available).")
            }
            return kernel
        }
        let environment = ProcessInfo.processInfo.environment
        guard let kernel = Kernel.fromEnvironment(environment) else {
            throw ValidationError("BACKPROP_KERNEL=\(environment["BACKPROP_KERNEL"] ?? "") is not a kernel path this CPU runs "
                                  + "(it runs \(available); or auto).")
        }
        return kernel
    }
}

extension Kernel {
    /// "avx512 (8×32 register tiles)".
    var summary: String { "\(rawValue) (\(tile.rows)×\(tile.columns) register tiles)" }
}
