import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// `backprop predict` and `backprop export`, and outputs that never overwrite inputs.
extension CLITests {
    @Test("predict writes classes and probabilities as CSV and HDF5, and refuses inputs of the wrong width")
    func predict() throws {
        let trained = try backprop("train", "--data", Self.sample, "--layers", "784,16,10", "--epochs", "1", "--run-dir", "run")
        try #require(trained.status == 0, "\(trained.standardError)")
        let csv = try backprop("predict", "--checkpoint", "run/model.h5", "--input", Self.sample, "--output", "p.csv")
        #expect(csv.status == 0, "\(csv.standardError)")
        let rows = try String(contentsOfFile: "\(directory)/p.csv", encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 201 && rows[0] == "index,class,y0,y1,y2,y3,y4,y5,y6,y7,y8,y9")
        var csvClasses: [Int32] = []
        for row in rows.dropFirst() {
            let fields = row.split(separator: ",")
            let probabilities = fields.dropFirst(2).compactMap { Double($0) }
            #expect(isClose(probabilities.reduce(0, +), 1, .floatAgainstDouble))
            let best = probabilities.indices.max { probabilities[$0] < probabilities[$1] }!
            #expect(Int(fields[1]) == best - probabilities.startIndex)
            csvClasses.append(Int32(fields[1])!)
        }
        let h5 = try backprop("predict", "--checkpoint", "run/model.h5", "--input", Self.sample, "--output", "p.h5")
        #expect(h5.status == 0, "\(h5.standardError)")
        let file = try HDF5File.open("\(directory)/p.h5")
        #expect(try file.read("/predictions/class", as: Int32.self, rank: 1).values == csvClasses)
        #expect(try file.shape(of: "/predictions/outputs") == [200, 10])

        let narrow = try backprop("train", "--data", Self.sample, "--layers", "784,8,10", "--epochs", "0", "--run-dir", "run2")
        try #require(narrow.status == 0)
        let tiny = "\(directory)/tiny.h5"
        try DatasetFile.write(train: randomDataset(count: 4, featureCount: 5, classCount: 3, seed: 1),
                              test: randomDataset(count: 4, featureCount: 5, classCount: 3, seed: 2), attributes: [:], to: tiny)
        let wrong = try backprop("predict", "--checkpoint", "run2/model.h5", "--input", tiny, "--output", "q.csv")
        #expect(wrong.status != 0 && wrong.standardError.contains("5 features") && wrong.standardError.contains("784"))
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/q.csv"))
    }

    @Test("exported Keras and npz weights give backprop predict's outputs in NumPy", arguments: ["relu", "leaky-relu", "tanh"])
    func export(activation: String) throws {
        let trained = try backprop("train", "--data", Self.sample, "--layers", "784,24,12,10", "--activation", activation,
                                   "--epochs", "1", "--run-dir", "run")
        try #require(trained.status == 0, "\(trained.standardError)")
        for format in ["keras", "npz"] {
            let exported = try backprop("export", "--format", format, "run/model.h5", "--output", "model")
            #expect(exported.status == 0, "\(exported.standardError)")
        }
        let predicted = try backprop("predict", "--checkpoint", "run/model.h5", "--input", Self.sample, "--output", "p.h5")
        try #require(predicted.status == 0, "\(predicted.standardError)")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("check_export.py").path
        let check = try run("/usr/bin/python3", [script, "model", Self.sample, "p.h5"], in: directory)
        #expect(check.status == 0, "\(check.standardOutput) \(check.standardError)")
        #expect(check.standardOutput.contains("keras: classes agree on 100.0000%"))
    }

    @Test("an export loads in the framework it is for, as the README shows (Keras 3: model_from_json, load_weights; PyTorch: load_state_dict), and predicts backprop predict's outputs",
          arguments: ["relu", "leaky-relu", "sigmoid"])
    func frameworkConsumers(activation: String) throws {
        let python = Self.root.appendingPathComponent(".venv-frameworks/bin/python3").path
        try #require(FileManager.default.isExecutableFile(atPath: python),
                     "no Keras 3 and PyTorch at \(python): run .ci/run's setup (.venv-frameworks from Tests/requirements-frameworks.txt)")
        let trained = try backprop("train", "--data", Self.sample, "--layers", "784,24,12,10", "--activation", activation,
                                   "--epochs", "1", "--run-dir", "run-\(activation)")
        try #require(trained.status == 0, "\(trained.standardError)")
        for format in ["keras", "npz"] {
            #expect(try backprop("export", "--format", format, "run-\(activation)/model.h5", "--output", "k-\(activation)").status == 0)
        }
        let predicted = try backprop("predict", "--checkpoint", "run-\(activation)/model.h5", "--input", Self.sample, "--output", "p-\(activation).h5")
        try #require(predicted.status == 0, "\(predicted.standardError)")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("check_frameworks.py").path
        for (format, name) in [("keras", "keras 3."), ("npz", "torch 2.")] {
            let check = try run(python, [script, format, "k-\(activation)", Self.sample, "p-\(activation).h5", activation], in: directory)
            #expect(check.status == 0 && check.standardOutput.contains(name), "\(format): \(check.standardOutput) \(check.standardError)")
        }
    }

    /// The repository's root, found from this file's path.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("an output never overwrites an input; the Keras pair appears together or not at all; a failed write to standard output fails")
    func outputsAndInputs() throws {
        try FileManager.default.copyItem(atPath: Self.sample, toPath: "\(directory)/data.h5")
        let trained = try backprop("train", "--data", "data.h5", "--layers", "784,8,10", "--epochs", "1", "--run-dir", "run")
        try #require(trained.status == 0, "\(trained.standardError)")
        try FileManager.default.copyItem(atPath: "\(directory)/run/model.h5", toPath: "\(directory)/m.weights.h5")
        try Data("1,2,0\n3,4,1\n5,6,0\n".utf8).write(to: URL(fileURLWithPath: "\(directory)/t.csv"))
        func unchanged(_ files: [String]) throws -> [String: Data] {
            try Dictionary(uniqueKeysWithValues: files.map { ($0, try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\($0)"))) })
        }
        let before = try unchanged(["data.h5", "run/model.h5", "m.weights.h5", "t.csv"])
        for arguments in [
            ["train", "--data", "data.h5", "--output", "data.h5", "--epochs", "1", "--run-dir", "other"],
            ["train", "--data", "data.h5", "--output", "./run/../data.h5", "--epochs", "1", "--run-dir", "other"],
            ["predict", "--checkpoint", "run/model.h5", "--input", "data.h5", "--output", "data.h5"],
            ["import", "csv", "t.csv", "--output", "t.csv"],
            ["export", "--format", "keras", "m.weights.h5", "--output", "m"],
        ] {
            let result = try backprop(arguments)
            #expect(result.status == 64 && result.standardError.contains("would overwrite"), "\(arguments): \(result.standardError)")
        }
        #expect(try unchanged(["data.h5", "run/model.h5", "m.weights.h5", "t.csv"]) == before)
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/other"))

        // The JSON cannot be put in place (a directory is in the way): the old weights stay, nothing is left behind.
        let first = try backprop("export", "--format", "keras", "run/model.h5", "--output", "k")
        try #require(first.status == 0, "\(first.standardError)")
        let weights = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/k.weights.h5"))
        try FileManager.default.removeItem(atPath: "\(directory)/k.json")
        try FileManager.default.createDirectory(atPath: "\(directory)/k.json/in-the-way", withIntermediateDirectories: true)
        let failed = try backprop("export", "--format", "keras", "run/model.h5", "--output", "k")
        #expect(failed.status == 1 && failed.standardError.contains("k.json"), "\(failed.standardError)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(directory)/k.weights.h5")) == weights)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix(".backprop-") }.isEmpty)

        // Names of 255 bytes, the file system's limit, are written: temporary names are not the final name plus a suffix.
        let longest = String(repeating: "n", count: 255 - ".weights.h5".count)
        for arguments in [["train", "--data", "data.h5", "--layers", "784,8,10", "--epochs", "1", "--run-dir", "long",
                           "--output", String(repeating: "m", count: 252) + ".h5"],
                          ["export", "--format", "keras", "run/model.h5", "--output", longest],
                          ["import", "csv", "t.csv", "--output", String(repeating: "c", count: 252) + ".h5"]] {
            let result = try backprop(arguments)
            #expect(result.status == 0, "\(arguments[0]): \(result.standardError)")
        }
        #expect(FileManager.default.fileExists(atPath: "\(directory)/\(longest).weights.h5"))
        #expect(FileManager.default.fileExists(atPath: "\(directory)/\(String(repeating: "m", count: 252)).h5"))

        let full = try run("/bin/sh", ["-c", "'\(executable)' inspect data.h5 > /dev/full"], in: directory)
        #expect(full.status == 1 && full.standardError.contains("cannot write to standard output"), "\(full.standardError)")
    }
}

// MARK: - ONNX

extension CLITests {
    /// A Python with ONNX Runtime: BACKPROP_TEST_PYTHON, else the repository's .venv (made by .ci/run and the quick start).
    static var onnxPython: String {
        ProcessInfo.processInfo.environment["BACKPROP_TEST_PYTHON"] ?? root.appendingPathComponent(".venv/bin/python3").path
    }

    /// Runs check_onnx.py on an export (ONNX's full check, then ONNX Runtime against `backprop
    /// predict`; a raw-input export also against the scaled one, `scaled`).
    func checkONNX(_ model: String, data: String, predictions: String, rawAgainst scaled: String? = nil,
                   sourceLocation: SourceLocation = #_sourceLocation) throws -> ProcessResult {
        try #require(FileManager.default.isExecutableFile(atPath: Self.onnxPython),
                     "no Python with ONNX Runtime at \(Self.onnxPython): run /usr/bin/python3 -m venv --system-site-packages .venv && .venv/bin/pip install -r Tests/requirements.txt (as .ci/run does)",
                     sourceLocation: sourceLocation)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("check_onnx.py").path
        return try run(Self.onnxPython, [script, model, data, predictions] + (scaled.map { ["raw", $0] } ?? []), in: directory)
    }

    /// Trains `flags` on `data` for an epoch, exports ONNX, and checks it (and, for byte data, its raw-input variant).
    func exportAndCheckONNX(_ flags: [String], data: String, raw: Bool, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let trained = try backprop(["train", "--data", data, "--epochs", "1", "--run-dir", "run"] + flags)
        try #require(trained.status == 0, "\(trained.standardError)", sourceLocation: sourceLocation)
        let predicted = try backprop("predict", "--checkpoint", "run/model.h5", "--input", data, "--output", "p.h5")
        try #require(predicted.status == 0, "\(predicted.standardError)", sourceLocation: sourceLocation)
        let exported = try backprop("export", "--format", "onnx", "run/model.h5", "--output", "model")
        try #require(exported.status == 0, "\(exported.standardError)", sourceLocation: sourceLocation)
        let check = try checkONNX("model.onnx", data: data, predictions: "p.h5", sourceLocation: sourceLocation)
        #expect(check.status == 0, "\(check.standardOutput) \(check.standardError)", sourceLocation: sourceLocation)
        guard raw else { return }
        let rawExport = try backprop("export", "--format", "onnx", "run/model.h5", "--output", "raw", "--raw-input")
        try #require(rawExport.status == 0, "\(rawExport.standardError)", sourceLocation: sourceLocation)
        let rawCheck = try checkONNX("raw.onnx", data: data, predictions: "p.h5", rawAgainst: "model.onnx", sourceLocation: sourceLocation)
        #expect(rawCheck.status == 0 && rawCheck.standardOutput.contains("raw against scaled"),
                "\(rawCheck.standardOutput) \(rawCheck.standardError)", sourceLocation: sourceLocation)
    }

    @Test("ONNX exports pass onnx.checker's full check and run in ONNX Runtime to backprop predict's outputs: every activation, both losses, 1–4 layers, raw and scaled input",
          arguments: [["--layers", "784,10"], ["--layers", "784,24,12,10", "--activation", "relu"],
                      ["--layers", "784,24,12,10", "--activation", "leaky-relu"], ["--layers", "784,24,10", "--activation", "tanh"],
                      ["--layers", "784,16,12,8,10", "--activation", "sigmoid"], ["--layers", "784,16,10", "--activation", "identity"],
                      ["--layers", "784,16,10", "--loss", "sum-of-squares", "--output-activation", "sigmoid", "--learning-rate", "0.5"]])
    func onnx(flags: [String]) throws {
        // The sample with class names, which the export's metadata carries.
        try FileManager.default.copyItem(atPath: Self.sample, toPath: "\(directory)/named.h5")
        let names = #"["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]"#
        let edit = try run("/usr/bin/python3", ["-c", "import h5py, numpy, sys; h5py.File(sys.argv[1], 'a').attrs['class_names'] = numpy.bytes_(sys.argv[2].encode())",
                                                "\(directory)/named.h5", names], in: directory)
        try #require(edit.status == 0, "\(edit.standardError)")
        try exportAndCheckONNX(flags, data: "named.h5", raw: true)
        let metadata = try String(contentsOfFile: "\(directory)/model.onnx", encoding: .isoLatin1)
        #expect(metadata.contains("class_names") && metadata.contains("Ankle boot"), "the class names are in the metadata")
    }

    @Test("an ONNX export of a regression model with several targets outputs y; --raw-input is refused for float features and for other formats")
    func onnxRegression() throws {
        let csv = Self.root.appendingPathComponent("datasets/friedman1.csv").path
        let imported = try backprop("import", "csv", csv, "--task", "regression", "--target-columns", "x10", "y", "--output", "f.h5")
        try #require(imported.status == 0, "\(imported.standardError)")
        try exportAndCheckONNX(["--layers", "9,16,2", "--loss", "sum-of-squares", "--learning-rate", "0.01"], data: "f.h5", raw: false)
        let raw = try backprop("export", "--format", "onnx", "run/model.h5", "--output", "raw", "--raw-input")
        #expect(raw.status != 0 && raw.standardError.contains("float features"), "\(raw.standardError)")
        let npz = try backprop("export", "--format", "npz", "run/model.h5", "--raw-input")
        #expect(npz.status == 64 && npz.standardError.contains("--raw-input and --data apply only to --format onnx"))
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/raw.onnx"))
    }
}

/// A model saved alone from the library (`Checkpoint(model:…)`): the commands that read models read it, resume refuses it.
extension CLITests {
    @Test("a model saved alone evaluates, predicts and exports as its run's model.h5 does; train --resume refuses it by name")
    func modelOnlyCheckpoint() throws {
        let trained = try backprop("train", "--data", Self.sample, "--layers", "784,16,10", "--epochs", "1", "--run-dir", "run")
        try #require(trained.status == 0, "\(trained.standardError)")
        let run = try Checkpoint.load(from: "\(directory)/run/model.h5")
        try Checkpoint(model: run.network, configuration: run.configuration, task: run.task, classNames: run.classNames)
            .save(to: "\(directory)/alone.h5")

        let fromRun = try backprop("evaluate", "--checkpoint", "run/model.h5", "--data", Self.sample)
        let alone = try backprop("evaluate", "--checkpoint", "alone.h5", "--data", Self.sample)
        #expect(alone.status == 0 && fromRun.status == 0, "\(alone.standardError)")
        let scoreLines = { (text: String) in text.split(separator: "\n").filter { $0.contains("accuracy") } }
        #expect(!scoreLines(alone.standardOutput).isEmpty && scoreLines(alone.standardOutput) == scoreLines(fromRun.standardOutput))
        for (checkpoint, output) in [("run/model.h5", "run.csv"), ("alone.h5", "alone.csv")] {
            let predicted = try backprop("predict", "--checkpoint", checkpoint, "--input", Self.sample, "--output", output)
            #expect(predicted.status == 0, "\(predicted.standardError)")
        }
        #expect(try String(contentsOfFile: "\(directory)/alone.csv", encoding: .utf8) == String(contentsOfFile: "\(directory)/run.csv", encoding: .utf8))
        let exported = try backprop("export", "--format", "npz", "alone.h5", "--output", "alone")
        #expect(exported.status == 0, "\(exported.standardError)")

        let resumed = try backprop("train", "--resume", "alone.h5", "--run-dir", "branch")
        #expect(resumed.status != 0 && !resumed.signalled)
        #expect(resumed.standardError.contains("--resume") && resumed.standardError.contains("alone.h5")
                && resumed.standardError.contains("holds a model without its run"), "\(resumed.standardError)")
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/branch"))
    }
}

/// `evaluate --json`: what scripts read instead of the human lines.
extension CLITests {
    @Test("evaluate --json gives the numbers evaluate prints and the library computes, with the model's parameter fingerprint")
    func evaluateJSON() throws {
        let trained = try backprop("train", "--data", Self.sample, "--layers", "784,16,10", "--epochs", "1", "--run-dir", "run")
        try #require(trained.status == 0, "\(trained.standardError)")
        let text = try backprop("evaluate", "--checkpoint", "run/model.h5", "--data", Self.sample)
        let json = try backprop("evaluate", "--checkpoint", "run/model.h5", "--data", Self.sample, "--json")
        try #require(json.status == 0 && text.status == 0, "\(json.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        let model = try Checkpoint.load(from: "\(directory)/run/model.h5")
        let expected = try evaluate(model.network, on: DatasetFile.load(Self.sample).test, workers: 1)
        #expect(object["accuracy"] as? Double == expected.score && object["loss"] as? Double == expected.meanLoss)
        #expect(object["samples"] as? Int == expected.sampleCount && object["task"] as? String == "classification" && object["split"] as? String == "test")
        #expect(object["parameters"] as? String == model.network.fingerprint && object["confusion"] as? [[Int]] == expected.confusion)
        #expect((object["per_class_accuracy"] as? [Double])?.count == 10)
        let names = try DatasetFile.classNames(of: HDF5File.open(Self.sample))
        #expect(object["class_names"] as? [String] == names, "the data's class names, where it has them")
        #expect(text.standardOutput.contains(String(format: "accuracy %@", expected.task.format(expected.score))), "\(text.standardOutput)")
        #expect(json.standardOutput.split(separator: "\n").count == 1)
    }
}
