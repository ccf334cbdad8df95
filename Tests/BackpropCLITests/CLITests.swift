import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// The `backprop` executable end to end: import, train, evaluate, and the
/// errors a user can cause, checked by exit status and output.
struct CLITests {
    let directory = temporaryDirectory("cli")
    let executable = backpropExecutable()

    /// The committed sample of Fashion-MNIST, found from this file's path.
    static let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("datasets/fashion-mnist-sample.h5").path

    func backprop(_ arguments: String...) throws -> ProcessResult {
        try backprop(arguments)
    }

    func backprop(_ arguments: [String]) throws -> ProcessResult {
        try run(executable, arguments, in: directory)
    }

    /// Asserts a clean failure: non-zero exit (not a signal), one line on
    /// stderr that contains every `fragment`, and nothing written.
    func expectFailure(_ result: ProcessResult, mentions fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(result.status != 0 && !result.signalled, sourceLocation: sourceLocation)
        let lines = result.standardError.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(result.standardError)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(result.standardError.contains(fragment), "stderr: \(result.standardError)", sourceLocation: sourceLocation)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty,
                "files were left behind", sourceLocation: sourceLocation)
    }

    @Test("import IDX, train, evaluate on the committed sample")
    func importTrainEvaluate() throws {
        // Turn the committed sample back into IDX files, as Debian ships them.
        let (train, test) = try DatasetFile.load(Self.sample)
        let idx = temporaryDirectory("cli-idx")
        func writeIDX(_ stem: String, _ dims: [Int], _ bytes: [UInt8]) throws {
            var data: [UInt8] = [0, 0, 8, UInt8(dims.count)]
            for d in dims { data += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
            try Data(data + bytes).write(to: URL(fileURLWithPath: "\(idx)/\(stem)"))
        }
        for (split, images, labels) in [(train, IDXImport.stems.trainImages, IDXImport.stems.trainLabels),
                                        (test, IDXImport.stems.testImages, IDXImport.stems.testLabels)] {
            guard case .bytes(let bytes, _) = split.features, let classes = split.labels else {
                Issue.record("the sample stores byte images and class labels"); return
            }
            try writeIDX(images, [split.count, 28, 28], bytes)
            try writeIDX(labels, [split.count], classes)
        }

        let imported = try backprop("import", "fashion-mnist", "--from", idx, "--output", "data.h5")
        #expect(imported.status == 0, "\(imported.standardError)")
        let trained = try backprop("train", "--data", "data.h5", "--layers", "784,32,10", "--epochs", "3",
                                   "--batch-size", "64", "--workers", "2", "--output", "run/model.h5")
        #expect(trained.status == 0, "\(trained.standardError)")
        #expect(trained.standardOutput.contains("epoch 3/3"))
        #expect(trained.standardOutput.contains("model written to run/model.h5"))

        let evaluated = try backprop("evaluate", "--checkpoint", "run/model.h5", "--data", "data.h5")
        #expect(evaluated.status == 0, "\(evaluated.standardError)")
        let accuracy = try #require(evaluated.standardOutput.firstMatch(of: /accuracy ([0-9.]+)%/).map { Double($0.1) ?? 0 })
        #expect(accuracy > 50, "a 3-epoch model should beat chance (10 %) by far: \(accuracy)")
        #expect(evaluated.standardOutput.contains("confusion matrix"))
        // import fashion-mnist names the classes; the checkpoint keeps them, evaluate and predict show them.
        #expect(try DatasetFile.classNames(of: HDF5File.open("\(directory)/data.h5")) == ClassNames.fashionMNIST)
        #expect(try Checkpoint.load(from: "\(directory)/run/model.h5").classNames == ClassNames.fashionMNIST)
        #expect(evaluated.standardOutput.contains("class  0 T-shirt/top") && evaluated.standardOutput.contains(" 9 Ankle boot"),
                "\(evaluated.standardOutput)")
        let predicted = try backprop("predict", "--checkpoint", "run/model.h5", "--input", "data.h5", "--output", "p.csv")
        #expect(predicted.status == 0, "\(predicted.standardError)")
        let lines = try String(contentsOfFile: "\(directory)/p.csv", encoding: .utf8).split(separator: "\n")
        #expect(lines.first?.hasPrefix("index,class,class_name,y0") == true)
        let fields = try #require(lines.dropFirst().first?.split(separator: ","))
        #expect(Int(fields[1]).map { "\"\(ClassNames.fashionMNIST[$0])\"" } == String(fields[2]), "\(fields)")
    }

    @Test("--epochs 0 writes the initialised model; --steps stops early")
    func epochsZeroAndSteps() throws {
        let zero = try backprop("train", "--data", Self.sample, "--epochs", "0", "--output", "init.h5")
        #expect(zero.status == 0, "\(zero.standardError)")
        let model = try Checkpoint.load(from: "\(directory)/init.h5")
        #expect(model.position.step == 0 && model.network.sizes == [784, 256, 128, 10])
        let steps = try backprop("train", "--data", Self.sample, "--steps", "3", "--output", "steps.h5")
        #expect(steps.status == 0, "\(steps.standardError)")
        #expect(try Checkpoint.load(from: "\(directory)/steps.h5").position.step == 3)
    }

    @Test("progress: a live bar on a terminal, plain lines in a pipe, only the last line with --quiet")
    func progress() throws {
        let flags = ["train", "--data", Self.sample, "--layers", "784,16,10", "--batch-size", "8", "--epochs", "2"]
        // A pseudo-terminal through script(1).
        let command = ([executable] + flags + ["--run-dir", "tty"]).map { "'\($0)'" }.joined(separator: " ")
        let terminal = try run("/usr/bin/script", ["-qec", command, "/dev/null"], in: directory)
        #expect(terminal.status == 0, "\(terminal.standardOutput)")
        #expect(terminal.standardOutput.contains("\repoch 1/2 [") && terminal.standardOutput.contains("] 125/125"),
                "\(terminal.standardOutput.prefix(600))")
        #expect(terminal.standardOutput.contains("samples/s  loss ") && terminal.standardOutput.contains("\u{1B}[K"))
        #expect(terminal.standardOutput.contains("epoch 2/2  train loss"))

        let piped = try run(executable, flags + ["--run-dir", "pipe", "--log-every", "50"], in: directory)
        #expect(piped.status == 0 && !piped.standardOutput.contains("\r"))
        let lines = piped.standardOutput.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("step ") }.map { String($0.split(separator: " ")[1]) } == ["50", "100", "150", "200", "250"])
        #expect(lines.filter { $0.hasPrefix("epoch ") }.count == 2)

        let quiet = try run(executable, flags + ["--run-dir", "quiet", "--quiet"], in: directory)
        #expect(quiet.status == 0 && quiet.standardOutput.split(separator: "\n").count == 1, "\(quiet.standardOutput)")
        #expect(quiet.standardOutput.hasPrefix("trained to step 250"))
    }

    @Test("gradcheck passes, label smoothing and dropout with fixed masks among its checks")
    func gradcheck() throws {
        let result = try backprop("gradcheck")
        #expect(result.status == 0, "\(result.standardOutput)")
        #expect(!result.standardOutput.contains("FAIL"))
        for check in ["step: label smoothing 0.1", "step: dropout 0.3 (fixed masks)", "step: input dropout 0.25 (fixed masks)"] {
            #expect(result.standardOutput.contains("ok   \(check)"), "\(check): \(result.standardOutput)")
        }
    }

    // MARK: - Bad input: one line naming the file or flag, non-zero exit, nothing written

    @Test("a missing dataset")
    func missingDataset() throws {
        try expectFailure(try backprop("train", "--data", "missing.h5", "--output", "m.h5"), mentions: ["missing.h5", "no such file"])
    }

    @Test("a dataset that is not HDF5")
    func notHDF5() throws {
        let text = temporaryDirectory("cli-text") + "/data.h5"
        try "not hdf5".write(toFile: text, atomically: true, encoding: .utf8)
        try expectFailure(try backprop("train", "--data", text, "--output", "m.h5"), mentions: [text, "not an HDF5 file"])
    }

    @Test("a layer list that does not match the data")
    func layersDoNotMatch() throws {
        try expectFailure(try backprop("train", "--data", Self.sample, "--layers", "100,10", "--output", "m.h5"),
                          mentions: [Self.sample, "784 features", "takes 100"])
    }

    @Test("a label at or above the output width")
    func labelOutOfRange() throws {
        try expectFailure(try backprop("train", "--data", Self.sample, "--layers", "784,16,5", "--output", "m.h5"),
                          mentions: [Self.sample, "label", "only 5 outputs"])
    }

    @Test("invalid flags", arguments: [
        (["--batch-size", "0"], "--batch-size"), (["--workers", "0"], "--workers"),
        (["--learning-rate", "nan"], "--learning-rate"), (["--learning-rate", "-1"], "--learning-rate"),
        (["--layers", "784"], "--layers"), (["--loss", "hinge"], "--loss"),
        (["--layers", "784,0,10"], "--layers"), (["--activation", "swish"], "--activation"),
        (["--momentum", "1.5"], "--momentum"), (["--shard-size", "0"], "--shard-size"),
        (["--weight-decay", "inf"], "--weight-decay"), (["--keep", "0"], "--keep"),
        (["--checkpoint-interval", "5x"], "--checkpoint-interval"), (["--lr-gamma", "0.5"], "--lr-gamma"),
        (["--checkpoint-interval", "-5"], "--checkpoint-interval: -5 is not a duration > 0"),
        (["--checkpoint-interval", "0m"], "--checkpoint-interval: 0m is not a duration > 0"),
        (["--lr-schedule", "step", "--lr-gamma", "0"], "--lr-gamma"), (["--lr-schedule", "cosine", "--min-lr", "nan"], "--min-lr"),
        (["--optimizer", "adam", "--momentum", "0.5"], "--momentum"), (["--epochs", "0", "--steps", "5"], "--steps"),
        (["--override"], "--override"), (["--output-activation", "softmax", "--loss", "sum-of-squares"], "softmax"),
        (["--layers", "784,100000000000,10"], "more than 268435456 parameters"),
        (["--layers", "784,9223372036854775807,10"], "more than 268435456 parameters"),
    ])
    func invalidFlags(arguments: [String], flag: String) throws {
        let result = try run(executable, ["train", "--data", Self.sample, "--output", "m.h5"] + arguments, in: directory)
        try expectFailure(result, mentions: [flag])
        #expect(result.status == 64)
    }

    @Test("every numeric flag of train with 0, −1, NaN, ∞, 2⁶³−1 and a non-number: it runs or is refused by name, never a trap or a hang",
          arguments: ["--batch-size", "--epochs", "--steps", "--workers", "--shard-size", "--seed", "--learning-rate", "--momentum",
                      "--weight-decay", "--lr-step-size", "--lr-gamma", "--warmup-steps", "--min-lr", "--checkpoint-every",
                      "--keep", "--log-every", "--dp-clip", "--dp-noise", "--dp-epsilon", "--dp-delta", "--label-smoothing",
                      "--validation-fraction", "--min-delta", "--early-stopping", "--plateau-factor", "--plateau-patience",
                      "--dropout", "--input-dropout", "--shuffle-blocks", "--shuffle-window"])
    func numericFlags(flag: String) throws {
        let schedule = ["--lr-step-size": ["--lr-schedule", "step"], "--lr-gamma": ["--lr-schedule", "step"],
                        "--warmup-steps": ["--lr-schedule", "cosine"], "--min-lr": ["--lr-schedule", "cosine"],
                        "--dp-noise": ["--dp-clip", "1"], "--dp-epsilon": ["--dp-clip", "1"],
                        "--dp-delta": ["--dp-clip", "1", "--dp-noise", "1"], "--dp-clip": ["--dp-noise", "1"],
                        "--early-stopping": ["--validation-fraction", "0.2"],
                        "--plateau-factor": ["--lr-schedule", "plateau", "--validation-fraction", "0.2"],
                        "--plateau-patience": ["--lr-schedule", "plateau", "--validation-fraction", "0.2"]][flag] ?? []
        // Bounded runs: one epoch and two steps, unless the flag under test is one of those.
        let bounds = (flag == "--epochs" ? [] : ["--epochs", "1"]) + (flag == "--steps" ? [] : ["--steps", "2"])
        for (index, value) in ["0", "-1", "nan", "inf", "9223372036854775807", "abc"].enumerated() {
            let arguments = ["train", "--data", Self.sample, "--layers", "784,8,10", "--quiet", "--run-dir", "run-\(index)"]
                + bounds + schedule + ["\(flag)=\(value)"]
            let start = Date()
            let result = try run(executable, arguments, in: directory)
            // A huge learning rate is a legal setting that diverges (exit 1, naming the step).
            let diverged = result.status == 1 && result.standardError.contains("training diverged at step")
            #expect(!result.signalled && ([0, 64].contains(result.status) || diverged),
                    "\(flag)=\(value): status \(result.status) \(result.standardError)")
            if result.status != 0 {
                // A warm-up longer than the run is refused as the schedule's length, which names it.
                let named = result.standardError.contains(flag) || diverged
                    || (flag == "--warmup-steps" && result.standardError.contains("warm-up steps"))
                #expect(result.standardError.split(separator: "\n").count == 1 && named, "\(flag)=\(value): \(result.standardError)")
            }
            #expect(Date().timeIntervalSince(start) < 60, "\(flag)=\(value) took \(Date().timeIntervalSince(start)) s")
        }
    }

    @Test("evaluate with a dataset given as checkpoint")
    func evaluateWrongFile() throws {
        try expectFailure(try backprop("evaluate", "--checkpoint", Self.sample, "--data", Self.sample),
                          mentions: [Self.sample, "backprop-checkpoint"])
    }
}
