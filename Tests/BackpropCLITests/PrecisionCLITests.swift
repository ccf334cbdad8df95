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

    @Test("evaluate and predict run a model's products at bf16 when asked, say so, and stay near fp32's; fp32 is the default and the model's own")
    func inference() throws {
        let trained = try train(["--run-dir", "model"])
        try #require(trained.status == 0, "\(trained.standardError)")
        func evaluate(_ extra: [String]) throws -> [String: Any] {
            let result = try BackpropTestSupport.run(executable, ["evaluate", "--checkpoint", "model/model.h5", "--data", CLITests.sample, "--json"] + extra,
                                                     in: directory)
            try #require(result.status == 0, "\(result.standardError)")
            return try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        }
        let (fp32, bf16) = (try evaluate([]), try evaluate(["--precision", "bf16"]))
        #expect(fp32["precision"] as? String == "fp32" && bf16["precision"] as? String == "bf16")
        let (a, b) = (try #require(fp32["accuracy"] as? Double), try #require(bf16["accuracy"] as? Double))
        #expect(abs(a - b) < 0.03 && (fp32["loss"] as? Double) != (bf16["loss"] as? Double), "fp32 \(a), bf16 \(b)")
        let text = try BackpropTestSupport.run(executable, ["evaluate", "--checkpoint", "model/model.h5", "--data", CLITests.sample, "--precision", "bf16"],
                                               in: directory)
        #expect(text.status == 0 && text.standardOutput.contains("products: bf16"), "\(text.standardOutput)")
        for precision in ["fp32", "bf16"] {
            let predicted = try BackpropTestSupport.run(executable, ["predict", "--checkpoint", "model/model.h5", "--input", CLITests.sample,
                                                                     "--precision", precision, "--output", "\(precision).csv"], in: directory)
            #expect(predicted.status == 0 && predicted.standardOutput.contains("products: bf16") == (precision == "bf16"),
                    "\(predicted.standardOutput)\(predicted.standardError)")
        }
        let rows = try ["fp32", "bf16"].map { try String(contentsOfFile: "\(directory)/\($0).csv", encoding: .utf8).split(separator: "\n") }
        let classes = rows.map { $0.dropFirst().map { $0.split(separator: ",").first ?? "" } }
        let agree = zip(classes[0], classes[1]).filter { $0 == $1 }.count
        #expect(rows[0].count == rows[1].count && rows[0] != rows[1] && agree * 100 >= 95 * classes[0].count, "\(agree) of \(classes[0].count) classes agree")
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
