import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// The third hardening round (issue 35): the doors streaming and the run's
/// new outputs opened, each case as it was reproduced.
extension HardeningTests {
    @Test("a learning-rate floor (--min-lr) above the base rate is refused by name, for plateau and cosine, fresh and on resume", arguments: [
        ["--lr-schedule", "plateau", "--validation-fraction", "0.2", "--min-lr", "1", "--learning-rate", "0.05"],
        ["--lr-schedule", "cosine", "--min-lr", "0.5", "--learning-rate", "0.1"],
    ])
    func floorAboveRate(_ flags: [String]) throws {
        try expectRefusal(["train"] + model + flags + ["--run-dir", "r"], mentions: ["--min-lr", "must not exceed the base learning rate"])
        // A resume that lowers η under the run's floor is the same mistake.
        let floor = flags[flags.firstIndex(of: "--min-lr")! + 1]
        let valid = flags.map { $0 == floor ? "0.001" : $0 }
        let first = try backprop(["train"] + model + valid + ["--epochs", "1", "--run-dir", "floor"])
        try #require(first.status == 0, "\(first.standardError)")
        try expectRefusal(["train", "--resume", "floor", "--learning-rate", "0.0001", "--override"],
                          mentions: ["--min-lr", "must not exceed the base learning rate"])
    }
}

extension HardeningTests {
    @Test("a run directory's tensorboard/ planted as a symbolic link is refused by name, and nothing is written where it points")
    func tensorboardThroughLink() throws {
        let target = path("elsewhere")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: path("linked"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: path("linked/tensorboard"), withDestinationPath: target)
        let result = try backprop(["train"] + model + ["--epochs", "1", "--run-dir", "linked"])
        #expect(result.status != 0 && result.standardError.split(separator: "\n").count == 1, "\(result.standardError)")
        #expect(result.standardError.contains("linked/tensorboard") && result.standardError.contains("symbolic link"), "\(result.standardError)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: target).isEmpty, "nothing written through the link")
        #expect(!FileManager.default.fileExists(atPath: path("linked/config.json")))
        // Without TensorBoard the run needs no such directory.
        let without = try backprop(["train"] + model + ["--epochs", "1", "--run-dir", "linked", "--no-tensorboard"])
        #expect(without.status == 0, "\(without.standardError)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: target).isEmpty)
    }
}

extension HardeningTests {
    @Test("a flag that cannot act is refused by name, saying what it needs: --monitor and --min-delta without a validation split, --shuffle-window without --shuffle-blocks",
          arguments: [
              (["--monitor", "validation-loss"], "--monitor", "a validation split"),
              (["--min-delta", "0.01"], "--min-delta", "a validation split"),
              (["--early-stopping", "3", "--min-delta", "0.01"], "--early-stopping", "validation split"),
              (["--shuffle-window", "4"], "--shuffle-window", "--shuffle-blocks"),
              (["--shuffle-blocks", "0", "--shuffle-window", "4"], "--shuffle-window", "--shuffle-blocks"),
          ])
    func flagsThatCannotAct(_ flags: [String], _ flag: String, _ needs: String) throws {
        try expectRefusal(["train"] + model + flags + ["--run-dir", "r"], mentions: [flag, needs])
    }

    @Test("the same flags act where what they need is there")
    func flagsThatAct() throws {
        for (index, flags) in [["--monitor", "validation-loss", "--min-delta", "0.01", "--validation-fraction", "0.2"],
                               ["--shuffle-blocks", "64", "--shuffle-window", "4"]].enumerated() {
            let result = try backprop(["train"] + model + flags + ["--epochs", "1", "--run-dir", "acts-\(index)"])
            #expect(result.status == 0, "\(flags): \(result.standardError)")
        }
    }
}
