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

    /// Runs check_onnx.py on an export, against `backprop predict`'s outputs.
    func checkONNX(_ model: String, data: String, predictions: String, raw: Bool = false,
                   sourceLocation: SourceLocation = #_sourceLocation) throws -> ProcessResult {
        try #require(FileManager.default.isExecutableFile(atPath: Self.onnxPython),
                     "no Python with ONNX Runtime at \(Self.onnxPython): run /usr/bin/python3 -m venv --system-site-packages .venv && .venv/bin/pip install onnxruntime (as .ci/run does)",
                     sourceLocation: sourceLocation)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("check_onnx.py").path
        return try run(Self.onnxPython, [script, model, data, predictions] + (raw ? ["raw"] : []), in: directory)
    }

    @Test("an ONNX export runs in ONNX Runtime to backprop predict's outputs, for every activation, raw or scaled input",
          arguments: ["relu", "leaky-relu", "tanh", "sigmoid", "identity"])
    func onnx(activation: String) throws {
        let trained = try backprop("train", "--data", Self.sample, "--layers", "784,24,12,10", "--activation", activation,
                                   "--epochs", "1", "--run-dir", "run")
        try #require(trained.status == 0, "\(trained.standardError)")
        let predicted = try backprop("predict", "--checkpoint", "run/model.h5", "--input", Self.sample, "--output", "p.h5")
        try #require(predicted.status == 0, "\(predicted.standardError)")
        for raw in [false, true] {
            let exported = try backprop(["export", "--format", "onnx", "run/model.h5", "--output", raw ? "raw" : "model"]
                                        + (raw ? ["--raw-input"] : []))
            try #require(exported.status == 0, "\(exported.standardError)")
            let check = try checkONNX(raw ? "raw.onnx" : "model.onnx", data: Self.sample, predictions: "p.h5", raw: raw)
            #expect(check.status == 0 && check.standardOutput.contains("classes agree on 100.0000%"),
                    "\(check.standardOutput) \(check.standardError)")
        }
    }

    @Test("an ONNX export of a regression model outputs y; --raw-input is refused for float features and for other formats")
    func onnxRegression() throws {
        let csv = Self.root.appendingPathComponent("datasets/friedman1.csv").path
        let imported = try backprop("import", "csv", csv, "--task", "regression", "--output", "f.h5")
        try #require(imported.status == 0, "\(imported.standardError)")
        let trained = try backprop("train", "--data", "f.h5", "--layers", "10,16,1", "--loss", "sum-of-squares", "--epochs", "2",
                                   "--learning-rate", "0.01", "--run-dir", "run")
        try #require(trained.status == 0, "\(trained.standardError)")
        let predicted = try backprop("predict", "--checkpoint", "run/model.h5", "--input", "f.h5", "--output", "p.h5")
        try #require(predicted.status == 0, "\(predicted.standardError)")
        let exported = try backprop("export", "--format", "onnx", "run/model.h5", "--output", "model")
        try #require(exported.status == 0, "\(exported.standardError)")
        let check = try checkONNX("model.onnx", data: "f.h5", predictions: "p.h5")
        #expect(check.status == 0 && check.standardOutput.contains("regression outputs"), "\(check.standardOutput) \(check.standardError)")
        let raw = try backprop("export", "--format", "onnx", "run/model.h5", "--output", "raw", "--raw-input")
        #expect(raw.status != 0 && raw.standardError.contains("float features"), "\(raw.standardError)")
        let npz = try backprop("export", "--format", "npz", "run/model.h5", "--raw-input")
        #expect(npz.status == 64 && npz.standardError.contains("--raw-input and --data apply only to --format onnx"))
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/raw.onnx"))
    }
}
