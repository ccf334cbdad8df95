import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// `backprop bench` and the kernel path of train and bench.
extension CLITests {
    @Test("bench reports throughput, phases and the GEMM ceiling per worker count, as text and JSON")
    func bench() throws {
        let text = try backprop("bench", "--data", Self.sample, "--layers", "784,16,10", "--batch-size", "64", "--shard-size", "16",
                                "--workers", "1,2", "--steps-per-repetition", "2", "--repetitions", "1", "--warmup", "0")
        #expect(text.status == 0, "\(text.standardError)")
        #expect(text.standardOutput.contains("yardstick OpenBLAS core") && text.standardOutput.contains("GEMM ceiling"))
        #expect(text.standardOutput.contains("kernel \(Kernel.automatic.rawValue) ("), "\(text.standardOutput)")
        #expect(text.standardOutput.contains("each product alone") && text.standardOutput.contains("δᵀ·Z 16×16 · 16×784"),
                "\(text.standardOutput)")
        #expect(text.standardOutput.contains(" 2 workers: step"), "\(text.standardOutput)")

        // A generic OpenBLAS kernel is named and warned about (through swift-log, on stderr).
        let generic = try run(executable, ["bench", "--data", Self.sample, "--layers", "784,16,10", "--workers", "1", "--steps-per-repetition", "1", "--repetitions", "1",
                                           "--warmup", "0"], in: directory, environment: ["OPENBLAS_CORETYPE": "Prescott"])
        #expect(generic.status == 0 && generic.standardOutput.contains("core Prescott"))
        #expect(generic.standardError.hasPrefix("warning: OpenBLAS chose the generic 'Prescott' kernel"), "\(generic.standardError)")

        let json = try backprop("bench", "--json", "--data", Self.sample, "--layers", "784,16,10", "--workers", "2,1",
                                "--steps-per-repetition", "2", "--repetitions", "4", "--warmup", "1")
        #expect(json.status == 0, "\(json.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        let rows = try #require(report["results"] as? [[String: Any]])
        #expect(rows.count == 2 && rows[0]["workers"] as? Int == 2 && rows[1]["workers"] as? Int == 1)
        // Ratios are taken per repetition (measured seconds apart), then their median.
        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        let two = try #require(rows[0]["repetitions"] as? [Double]), one = try #require(rows[1]["repetitions"] as? [Double])
        let ceilings = try #require(rows[0]["ceilings"] as? [Double])
        #expect(two.count == 4 && one.count == 4 && ceilings.count == 4)
        func close(_ field: Any?, _ value: Double) -> Bool { isClose(field as? Double ?? .nan, value, .textRoundTrip) }
        #expect(close(rows[0]["median"], median(two)))
        #expect(close(rows[0]["fractionOfCeiling"], median(zip(two, ceilings).map { $0 / $1 })))
        #expect(close(rows[0]["speedUp"], median(zip(two, one).map { $0 / $1 })) && close(rows[1]["speedUp"], 1))
        let median = try #require(rows[0]["median"] as? Double), ceiling = try #require(rows[0]["ceiling"] as? Double)
        #expect(median > 0 && ceiling > 0 && (report["peakResidentMiB"] as? Double ?? 0) > 0)
        #expect(report["flopsPerSample"] as? Int == 2 * (784 * 16 * 2 + 16 * 10 * 3))
        let phases = try #require(rows[0]["phaseMilliseconds"] as? [String: Double])
        #expect(Set(phases.keys) == ["conversion", "forward", "backward", "update"])
        #expect(phases.values.allSatisfy { $0 >= 0 } && phases["forward"]! > 0 && phases["backward"]! > 0)
        #expect(report["kernel"] as? String == Kernel.automatic.rawValue && (rows[0]["openBLASCeiling"] as? Double ?? 0) > 0)
        // Every product of 784-16-10 (z·wᵀ and δᵀ·Z of both layers, δ·W of the top one), on every fast path and OpenBLAS.
        let products = try #require(report["products"] as? [[String: Any]])
        #expect(products.count == 5)
        let engines = Set(Kernel.allCases.filter { $0.isAvailable && $0 != .portable }.map(\.rawValue) + ["openblas"])
        for product in products {
            let gflops = try #require(product["gflops"] as? [String: Double])
            #expect(Set(gflops.keys) == engines && gflops.values.allSatisfy { $0 > 0 }, "\(product)")
        }
    }

    @Test("--kernel picks the path of train and bench; a path the CPU cannot run, or a bad BACKPROP_KERNEL, is refused")
    func kernelChoice() throws {
        let portable = try backprop("bench", "--kernel", "portable", "--data", Self.sample, "--layers", "784,16,10",
                                    "--workers", "1", "--steps-per-repetition", "1", "--repetitions", "1", "--warmup", "0", "--no-products")
        #expect(portable.status == 0 && portable.standardOutput.contains("kernel portable (4×8 register tiles)"),
                "\(portable.standardError)")
        #expect(!portable.standardOutput.contains("each product alone"))
        for kernel in Kernel.allCases where !kernel.isAvailable {
            let refused = try backprop("bench", "--kernel", kernel.rawValue, "--data", Self.sample)
            #expect(refused.status == 64 && refused.standardError.contains("--kernel \(kernel.rawValue) is not available"))
        }
        let bogus = try run(executable, ["train", "--data", Self.sample, "--epochs", "1"], in: directory,
                            environment: ["BACKPROP_KERNEL": "sse9"])
        #expect(bogus.status == 64 && bogus.standardError.contains("BACKPROP_KERNEL=sse9 is not a kernel path"),
                "\(bogus.standardError)")
        let bad = try backprop("train", "--data", Self.sample, "--kernel", "fast")
        #expect(bad.status == 64 && bad.standardError.contains("fast"), "\(bad.standardError)")
    }
}
