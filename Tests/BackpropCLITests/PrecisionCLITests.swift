import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// `--precision`: its record, its resume rule, what a run says of it, the
/// same bits on every worker count and kernel path, and bench's side-by-side rows.
struct PrecisionCLITests {
    let directory = temporaryDirectory("precision")
    let executable = backpropExecutable()
    static let model = ["--data", CLITests.sample, "--layers", "784,40,10", "--batch-size", "50", "--shard-size", "25", "--epochs", "1"]

    func train(_ arguments: [String]) throws -> (status: Int32, standardOutput: String, standardError: String) {
        let result = try BackpropTestSupport.run(executable, ["train"] + Self.model + arguments, in: directory)
        return (result.status, result.standardOutput, result.standardError)
    }

    /// The parameters' fingerprint a run printed.
    static func fingerprint(_ output: String) -> String? {
        output.firstMatch(of: /parameters ([0-9a-f]{16})/).map { String($0.1) }
    }

    @Test("bf16 is recorded in the checkpoint and config.json, named by --verbose with what computes it; a resume cannot change it (nothing written), and one that keeps it ends with the bits of a run that never stopped")
    func recordAndResume() throws {
        let run = try train(["--precision", "bf16", "--verbose", "--run-dir", "bf16"])
        try #require(run.status == 0, "\(run.standardError)")
        #expect(try Checkpoint.load(from: "\(directory)/bf16/model.h5").configuration.precision == .bf16)
        let recorded = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(directory)/bf16/config.json"))) as? [String: Any]
        #expect(recorded?["precision"] as? String == "bf16")
        let named = Products(kernel: .automatic, precision: .bf16).summary
        #expect(run.standardOutput.contains("precision: \(named)"), "\(run.standardOutput)")
        let last = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/bf16/last.h5"))
        let resumed = try train(["--resume", "bf16", "--precision", "fp32", "--epochs", "2", "--override"])
        #expect(resumed.status == 64 && resumed.standardError.contains("--precision") && resumed.standardError.contains("cannot change"),
                "\(resumed.standardError)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(directory)/bf16/last.h5")) == last)
        // Resumed at bf16 (the checkpoint's), it goes on, to the bits of a run that never stopped.
        let goesOn = try train(["--resume", "bf16", "--epochs", "2", "--override"])
        #expect(goesOn.status == 0, "\(goesOn.standardError)")
        let straight = try train(["--precision", "bf16", "--epochs", "2", "--run-dir", "straight"])
        #expect(Self.fingerprint(goesOn.standardOutput) == Self.fingerprint(straight.standardOutput) && Self.fingerprint(straight.standardOutput) != nil,
                "\(goesOn.standardOutput)\n\(straight.standardOutput)")
    }

    @Test("a bf16 run prints the same parameters on 1 and 2 workers and every kernel path; fp32's differ; the emulation is said once")
    func sameBits() throws {
        var fingerprints: [String: String] = [:]
        for kernel in Kernel.allCases where kernel.isAvailable {
            for workers in ["1", "2"] {
                let run = try train(["--precision", "bf16", "--kernel", kernel.rawValue, "--workers", workers, "--run-dir", "\(kernel)-\(workers)"])
                try #require(run.status == 0, "\(run.standardError)")
                fingerprints["\(kernel) \(workers)"] = Self.fingerprint(run.standardOutput)
                let notes = run.standardOutput.components(separatedBy: "without AVX512_BF16").count - 1
                #expect(notes == (Products(kernel: kernel, precision: .bf16).emulatesBF16 ? 1 : 0), "\(kernel): \(run.standardOutput)")
            }
        }
        #expect(Set(fingerprints.values).count == 1 && fingerprints.values.first != nil, "\(fingerprints)")
        let fp32 = try train(["--run-dir", "fp32"])
        #expect(Self.fingerprint(fp32.standardOutput) != fingerprints.values.first, "\(fp32.standardOutput)")
    }

    @Test("an unknown precision is refused by name, by train and by bench, nothing written")
    func refused() throws {
        let run = try train(["--precision", "fp16", "--run-dir", "refused"])
        #expect(run.status == 64 && run.standardError.contains("--precision") && run.standardError.contains("fp16"), "\(run.standardError)")
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/refused"))
        let bench = try BackpropTestSupport.run(executable, ["bench", "--precision", "fp32,bf17"], in: directory)
        #expect(bench.status == 64 && bench.standardError.contains("--precision") && bench.standardError.contains("bf17"), "\(bench.standardError)")
    }

    @Test("bench --precision fp32,bf16 measures both side by side: a row each per worker count, bf16's with its speed over fp32's, in the text and --json")
    func bench() throws {
        let arguments = ["bench", "--precision", "fp32,bf16", "--workers", "1,2", "--layers", "784,32,10", "--repetitions", "1",
                         "--steps-per-repetition", "2", "--warmup", "1", "--no-products"]
        let json = try BackpropTestSupport.run(executable, arguments + ["--json"], in: directory)
        try #require(json.status == 0, "\(json.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        let rows = try #require(report["results"] as? [[String: Any]])
        #expect(rows.map { "\($0["precision"] ?? "") \($0["workers"] ?? "")" } == ["fp32 1", "fp32 2", "bf16 1", "bf16 2"])
        #expect(rows.allSatisfy { ($0["overFP32"] as? Double).map { $0 > 0 } ?? ($0["precision"] as? String == "fp32") })
        let text = try BackpropTestSupport.run(executable, arguments, in: directory)
        #expect(text.status == 0 && text.standardOutput.contains("over fp32") && text.standardOutput.contains(" 1 worker  bf16: step"),
                "\(text.standardOutput)")
    }
}
