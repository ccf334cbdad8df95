import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// `train --stream` and `--data-memory` from the command line: when a split
/// streams, what it refuses, and that the run is the one in memory.
struct StreamCLITests {
    let cli = CLITests()

    func train(_ runDir: String, _ extra: [String]) throws -> ProcessResult {
        try cli.backprop(["train", "--data", CLITests.sample, "--layers", "784,16,10", "--batch-size", "100", "--epochs", "2",
                          "--run-dir", runDir] + extra)
    }

    @Test("a split larger than --data-memory streams (the epoch line says how long it waited) and ends with the in-memory run's parameters")
    func budget() throws {
        let blocks = ["--shuffle-blocks", "128"]
        let memory = try train("memory", blocks)
        try #require(memory.status == 0, "\(memory.standardError)")
        #expect(!memory.standardOutput.contains("waited for data"))
        let streamed = try train("budget", blocks + ["--data-memory", "64K"])
        try #require(streamed.status == 0, "\(streamed.standardError)")
        #expect(streamed.standardOutput.contains("waited for data"), "\(streamed.standardOutput)")
        func parameters(_ output: String) -> String? {
            output.split(separator: "\n").last.flatMap { $0.split(separator: ";").first { $0.contains("parameters") } }.map(String.init)
        }
        #expect(parameters(memory.standardOutput) != nil && parameters(memory.standardOutput) == parameters(streamed.standardOutput))
        // Under budget: in memory.
        let roomy = try train("roomy", blocks + ["--data-memory", "1G"])
        #expect(roomy.status == 0 && !roomy.standardOutput.contains("waited for data"))
    }

    @Test("streaming refuses what would read at random, by flag, in one line, exit 64", arguments: [
        (["--stream"], "--shuffle-blocks"),
        (["--stream", "--shuffle-blocks", "64", "--sampling", "poisson"], "--shuffle-blocks"),
        (["--stream", "--shuffle-blocks", "64", "--validation-fraction", "0.1"], "--validation-fraction"),
        (["--data-memory", "abc"], "--data-memory"), (["--data-memory", "-1"], "--data-memory"),
        (["--data-memory", "nan"], "--data-memory"), (["--data-memory", "99999999T"], "--data-memory"),
        (["--shuffle-blocks", "64", "--no-shuffle"], "--shuffle-blocks"),
    ])
    func refusals(arguments: [String], flag: String) throws {
        let result = try train("refused", arguments)
        try cli.expectFailure(result, mentions: [flag])
        #expect(result.status == 64)
        #expect(!FileManager.default.fileExists(atPath: "\(cli.directory)/refused/model.h5"))
    }
}
