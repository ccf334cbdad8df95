import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// `--class-weights`, the list-valued setting declared once: its flag, its record, a settings file, its refusals and its resume rule.
struct ClassWeightsCLITests {
    let directory = temporaryDirectory("class-weights")
    let executable = backpropExecutable()
    static let model = ["--data", CLITests.sample, "--layers", "784,16,10", "--batch-size", "100", "--workers", "2", "--epochs", "1"]
    static let weights = "1,1,1,1,1,1,2,1,1,1"

    @Test("trains with it, keeps it in the checkpoint and config.json (a list), which --config reads back to the same run; a resume cannot change it")
    func recordAndResume() throws {
        let trained = try BackpropTestSupport.run(executable, ["train"] + Self.model + ["--class-weights", Self.weights, "--run-dir", "weighted"],
                                                  in: directory)
        try #require(trained.status == 0, "\(trained.standardError)")
        let checkpoint = try Checkpoint.load(from: "\(directory)/weighted/model.h5")
        #expect(checkpoint.configuration.classWeights == [1, 1, 1, 1, 1, 1, 2, 1, 1, 1])
        let recorded = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(directory)/weighted/config.json"))) as? [String: Any]
        #expect((recorded?["class-weights"] as? [NSNumber])?.map(\.doubleValue) == [1, 1, 1, 1, 1, 1, 2, 1, 1, 1])
        let again = try BackpropTestSupport.run(executable, ["train", "--config", "weighted/config.json", "--run-dir", "again"], in: directory)
        try #require(again.status == 0, "\(again.standardError)")
        #expect(try Checkpoint.load(from: "\(directory)/again/model.h5").network.parameters == checkpoint.network.parameters)
        let resumed = try BackpropTestSupport.run(executable, ["train", "--resume", "weighted", "--class-weights", "1,1,1,1,1,1,3,1,1,1"],
                                                  in: directory)
        #expect(resumed.status != 0 && resumed.standardError.contains("--class-weights") && resumed.standardError.contains("cannot change"),
                "\(resumed.standardError)")
    }

    @Test("refused by flag, in one line with exit 64, before anything is written", arguments: [
        ("1,2", "one weight per class (10"), ("1,1,1,1,1,1,-2,1,1,1", "≥ 0"), ("0,0,0,0,0,0,0,0,0,0", "more than 0"), ("1,x", "--class-weights"),
    ])
    func refused(value: String, words: String) throws {
        let result = try BackpropTestSupport.run(executable, ["train"] + Self.model + ["--class-weights=\(value)", "--run-dir", "refused"],
                                                 in: directory)
        #expect(result.status == 64 && result.standardError.contains("--class-weights") && result.standardError.contains(words),
                "\(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/refused"))
    }
}
