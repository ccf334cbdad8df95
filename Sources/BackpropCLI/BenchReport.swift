import Foundation
import BackpropCore

// What `backprop bench` reports: one row per worker count, the products
// alone, DP-SGD steps, and their text tables (the measurement itself is in
// Bench.swift).

/// One worker count's measurements.
struct BenchRow: Codable {
    var workers: Int
    /// The products' operands: "fp32" or "bf16" (`--precision`).
    var precision = "fp32"
    /// At bf16: the median over repetitions of samples/s ÷ the fp32 row's of the same
    /// workers and repetition (nil without such a row).
    var overFP32: Double?
    /// Samples per second over the repetitions.
    var median: Double
    var min: Double
    var max: Double
    var gflops: Double
    /// The GEMM-only ceiling's median samples per second, on the kernel path.
    var ceiling: Double
    /// The same products on OpenBLAS (δᵀ·Z per shard, as training did before its own kernel).
    var openBLASCeiling: Double
    /// The median over repetitions of samples/s ÷ the ceiling measured right after.
    var fractionOfCeiling: Double
    /// The median over repetitions of samples/s ÷ the 1-worker samples/s of the
    /// same repetition (1 when no 1-worker row was measured).
    var speedUp: Double
    /// Samples per second of each repetition, and of the ceiling right after it.
    var repetitions: [Double]
    var ceilings: [Double]
    var stepMilliseconds: Double
    /// Per step, each worker's µs outside its tasks' work (worker 0 first):
    /// waiting at phase boundaries and for the next step, claiming, not
    /// scheduled. Worker 0 includes what the trainer does between steps.
    var idleMicroseconds: [Double]
    /// Per step, worker time divided by the workers: conversion (gather),
    /// forward (and loss), backward (δ and the gradient products), update
    /// (the optimizer's rule with the gradient's scale folded in, wᵀ).
    var phaseMilliseconds: [String: Double]

    var phaseLine: String {
        let parts = ["conversion", "forward", "backward", "update"].map {
            String(format: "%@ %.3f", $0, phaseMilliseconds[$0] ?? 0)
        }
        let accounted = ["conversion", "forward", "backward", "update"].reduce(0) { $0 + (phaseMilliseconds[$1] ?? 0) }
        // Waiting for a stream is part of the step's time, spent outside the phases.
        let waited = phaseMilliseconds["data wait"].map { String(format: "; of the step, %.3f waiting for data", $0) } ?? ""
        return String(format: "%2d worker%@%@: step %.3f ms = ", workers, workers == 1 ? " " : "s",
                      precision == "fp32" ? "" : " " + precision, stepMilliseconds)
            + parts.joined(separator: ", ") + String(format: ", other %.3f (ms per step)", stepMilliseconds - accounted) + waited
            + "; idle µs per worker " + idleMicroseconds.map { String(format: "%.0f", $0) }.joined(separator: ", ")
    }
}

/// One worker count's DP-SGD steps: samples per second, and a step's time
/// over a plain step's (the median of per-repetition ratios).
struct PrivateRow: Codable {
    var workers: Int
    var samplesPerSecond: Double
    var stepTimeRatio: Double
}

/// Everything `backprop bench` measured, as printed or as JSON.
struct BenchReport: Codable {
    var cpu: String
    var kernel: String
    var blasCore: String
    var blas: String
    var layers: [Int]
    var batchSize: Int
    var shardSize: Int
    var optimizer: String
    var data: String
    var flopsPerSample: Int
    var results: [BenchRow]
    var products: [ProductRow]
    var peakResidentMiB: Double
    /// DP-SGD steps beside the plain ones (`--dp`).
    var privateSteps: [PrivateRow] = []
    /// The cost of starting and synchronising the workers, per worker count.
    var synchronization: [SynchronizationCost] = []

    var table: String {
        func pad(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        // A precision column where a bf16 row is measured (and its speed over fp32's where one is too).
        let precisions = results.contains { $0.precision != "fp32" }, ratios = results.contains { $0.overFP32 != nil }
        var lines = ["", "workers" + (precisions ? "  precision" : "") + "  samples/s  (min – max)           GFLOP/s  GEMM ceiling  of ceiling  speed-up  OpenBLAS ceiling"
                     + (ratios ? "  over fp32" : "")]
        for r in results {
            lines.append(pad("\(r.workers)", 7) + (precisions ? pad(r.precision, 11) : "") + pad(grouped(r.median), 11) + "  (" + pad(grouped(r.min), 9) + " – "
                         + pad(grouped(r.max), 9) + ")" + String(format: "%9.1f", r.gflops) + pad(grouped(r.ceiling), 14)
                         + String(format: "%11.1f%%%9.2f×", 100 * r.fractionOfCeiling, r.speedUp)
                         + pad(grouped(r.openBLASCeiling), 18) + (r.overFP32.map { String(format: "%10.2f×", $0) } ?? ""))
        }
        lines.append(String(format: "%.2f MFLOP per sample; peak resident memory %.0f MiB", Double(flopsPerSample) / 1e6, peakResidentMiB))
        return lines.joined(separator: "\n")
    }
}

/// One training product alone, one thread: median GFLOP/s per engine.
struct ProductRow: Codable {
    var name: String
    var gflops: [String: Double]
}

extension BenchReport {
    /// The products table: GFLOP/s per engine and each path's ratio to OpenBLAS.
    var productTable: String {
        guard let first = products.first else { return "" }
        let engines = first.gflops.keys.sorted { ($0 == "openblas" ? 1 : 0, $0) < ($1 == "openblas" ? 1 : 0, $1) }
        let width = products.map(\.name.count).max() ?? 0
        func pad(_ text: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - text.count)) + text }
        var lines = ["", "each product alone, 1 thread, GFLOP/s (ratio to OpenBLAS)"]
        lines.append(pad("product", width) + engines.map { pad($0, 18) }.joined())
        for row in products {
            let blas = row.gflops["openblas"] ?? .nan
            lines.append(pad(row.name, width) + engines.map { engine in
                let value = row.gflops[engine] ?? .nan
                return pad(engine == "openblas" ? String(format: "%.1f", value)
                                                : String(format: "%.1f (%.2f×)", value, value / blas), 18)
            }.joined())
        }
        return lines.joined(separator: "\n")
    }
}
