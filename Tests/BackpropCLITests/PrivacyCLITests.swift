import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// DP-SGD, the per-sample measurements and `backprop privacy` from the command line.
struct PrivacyCLITests {
    let directory = temporaryDirectory("privacy")
    let executable = backpropExecutable()

    func backprop(_ arguments: [String]) throws -> ProcessResult { try run(executable, arguments, in: directory) }

    @Test("privacy: ε for a noise and the noise for an ε, as the accountant computes them; bad values refused by flag")
    func privacyCommand() throws {
        let result = try backprop(["privacy", "--noise", "1.1", "--sample-rate", "0.0043", "--steps", "9375", "--delta", "1e-5"])
        let expected = PrivacyAccountant.epsilon(samplingRate: 0.0043, noise: 1.1, steps: 9375, delta: 1e-5)
        #expect(result.status == 0 && result.standardOutput.contains(String(format: "ε = %.4f", expected.epsilon))
                && result.standardOutput.contains("α = \(String(format: "%g", expected.order))"), "\(result.standardOutput)")
        let inverse = try backprop(["privacy", "--epsilon", "3", "--sample-rate", "0.0043", "--steps", "9375", "--delta", "1e-5"])
        #expect(inverse.status == 0 && inverse.standardOutput.contains("noise multiplier σ = 0.91"), "\(inverse.standardOutput)")
        let edge = try backprop(["privacy", "--noise", "0.3", "--sample-rate", "1", "--steps", "1", "--delta", "1e-5"])
        #expect(edge.status == 0)
        for (arguments, fragment) in [
            (["--noise", "1", "--sample-rate", "0", "--steps", "10", "--delta", "1e-5"], "--sample-rate"),
            (["--noise", "1", "--sample-rate", "1.5", "--steps", "10", "--delta", "1e-5"], "--sample-rate"),
            (["--noise", "-1", "--sample-rate", "0.1", "--steps", "10", "--delta", "1e-5"], "--noise"),
            (["--noise", "1", "--sample-rate", "0.1", "--steps", "0", "--delta", "1e-5"], "--steps"),
            (["--noise", "1", "--sample-rate", "0.1", "--steps", "10", "--delta", "0"], "--delta"),
            (["--noise", "1", "--epsilon", "2", "--sample-rate", "0.1", "--steps", "10", "--delta", "1e-5"], "one of --noise and --epsilon"),
            (["--sample-rate", "0.1", "--steps", "10", "--delta", "1e-5"], "one of --noise and --epsilon"),
        ] {
            let refused = try backprop(["privacy"] + arguments)
            #expect(refused.status == 64 && refused.standardError.contains(fragment), "\(arguments): \(refused.standardError)")
        }
    }

    @Test("train refuses bad DP-SGD flags by name, before anything is written", arguments: [
        (["--dp-clip", "0", "--dp-noise", "1"], "--dp-clip: 0.0 is not a finite number > 0."),
        (["--dp-clip=-1", "--dp-noise", "1"], "--dp-clip: -1.0 is not a finite number > 0."),
        (["--dp-clip", "1", "--dp-noise=-1"], "--dp-noise: -1.0 is not a finite number ≥ 0."),
        (["--dp-noise", "1"], "--dp-noise needs --dp-clip"),
        (["--dp-clip", "1"], "--dp-clip needs --dp-noise"),
        (["--dp-clip", "1", "--dp-epsilon", "0"], "--dp-epsilon: 0.0 is not a finite number > 0."),
        (["--dp-clip", "1", "--dp-noise", "1", "--dp-epsilon", "2"], "give one"),
        (["--dp-clip", "1", "--dp-noise", "1", "--dp-delta", "1"], "--dp-delta: 1.0 is not a number in (0, 1)."),
        (["--sampling", "sometimes"], "--sampling"),
    ])
    func refusedFlags(arguments: [String], fragment: String) throws {
        let result = try backprop(["train", "--data", CLITests.sample, "--layers", "784,8,10", "--epochs", "1", "--run-dir", "run"] + arguments)
        #expect(result.status == 64 && result.standardError.contains(fragment), "\(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/run"))
    }

    @Test("DP-SGD end to end: ε in the epoch line, metrics.csv and the checkpoint, continued on resume; norms and noise scale logged; the same bits without the logs")
    func endToEnd() throws {
        let common = ["train", "--data", CLITests.sample, "--layers", "784,16,10", "--batch-size", "50", "--dp-clip", "1",
                      "--dp-epsilon", "4", "--seed", "12345", "--quiet"]
        let logged = try backprop(common + ["--epochs", "2", "--run-dir", "logged", "--log-grad-norms", "--log-noise-scale"])
        try #require(logged.status == 0, "\(logged.standardError)")
        let plain = try backprop(common + ["--epochs", "2", "--run-dir", "plain"])
        try #require(plain.status == 0, "\(plain.standardError)")
        let fingerprint = { (text: String) in text.components(separatedBy: "parameters ").last?.prefix(16) }
        #expect(fingerprint(logged.standardOutput) == fingerprint(plain.standardOutput))
        let csv = try String(contentsOfFile: "\(directory)/logged/metrics.csv", encoding: .utf8)
        #expect(csv.hasPrefix("epoch,step,train_loss,validation_loss,validation_accuracy,test_loss,test_accuracy,learning_rate,samples_per_second,wall_time,"
                              + "epsilon,grad_norm_min,grad_norm_p10,grad_norm_p50,grad_norm_p90,grad_norm_max,noise_scale"), "\(csv)")
        // Resume for a third epoch: ε grows past the first two epochs' value, which the checkpoint kept.
        let resumed = try backprop(["train", "--resume", "plain", "--override", "--epochs", "3"])
        try #require(resumed.status == 0, "\(resumed.standardError)")
        let checkpoint = try Checkpoint.load(from: "\(directory)/plain/model.h5")
        let epsilons = checkpoint.history.epochs.compactMap { $0.extras["epsilon"] }
        #expect(epsilons.count == 3 && epsilons[0] < epsilons[1] && epsilons[1] < epsilons[2])
        #expect(abs(epsilons[1] - 4) < 0.01, "ε after the planned steps: \(epsilons)")
        #expect(resumed.standardOutput.contains(String(format: "ε %.3f", epsilons[2])))
        #expect(checkpoint.configuration.samplingMethod == .poisson)
    }
}
