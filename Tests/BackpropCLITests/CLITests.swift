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

    @Test("--class-names: stored with the data, refused when they do not fit the labels, twice named, or for regression")
    func classNames() throws {
        try Data("a,b,label\n1,2,0\n3,4,1\n5,6,2\n7,8,0\n9,1,1\n2,2,2\n".utf8).write(to: URL(fileURLWithPath: "\(directory)/t.csv"))
        let imported = try backprop("import", "csv", "t.csv", "--output", "t.h5", "--class-names", "cat,dog,bird")
        #expect(imported.status == 0, "\(imported.standardError)")
        #expect(try DatasetFile.classNames(of: HDF5File.open("\(directory)/t.h5")) == ["cat", "dog", "bird"])
        for (names, fragment) in [("cat,dog", "names 2 classes, but /train/y holds the label 2"), ("cat,cat,dog", "names a class twice"),
                                  ("cat,,dog", "empty")] {
            let refused = try backprop("import", "csv", "t.csv", "--output", "bad.h5", "--class-names", names)
            #expect(refused.status != 0 && refused.standardError.contains(fragment), "\(names): \(refused.standardError)")
            #expect(!FileManager.default.fileExists(atPath: "\(directory)/bad.h5"))
        }
        let regression = try backprop("import", "csv", "t.csv", "--task", "regression", "--output", "bad.h5", "--class-names", "a,b,c")
        #expect(regression.status != 0 && regression.standardError.contains("regression"), "\(regression.standardError)")
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

    @Test("bench reports throughput, phases and the GEMM ceiling per worker count, as text and JSON")
    func bench() throws {
        let text = try backprop("bench", "--data", Self.sample, "--layers", "784,16,10", "--batch-size", "64", "--shard-size", "16",
                                "--workers", "1,2", "--steps-per-repetition", "2", "--repetitions", "1", "--warmup", "0")
        #expect(text.status == 0, "\(text.standardError)")
        #expect(text.standardOutput.contains("yardstick OpenBLAS core") && text.standardOutput.contains("GEMM ceiling"))
        #expect(text.standardOutput.contains("kernel \(Kernel.automatic.rawValue) ("), "\(text.standardOutput)")
        #expect(text.standardOutput.contains("each product alone") && text.standardOutput.contains("δᵀ·Z 16×16 · 16×784"),
                "\(text.standardOutput)")
        #expect(text.standardOutput.contains(" 2 workers: step"), "\(text.standardOutput)")

        // A generic OpenBLAS kernel is named and warned about (through swift-log, on stderr).
        let generic = try run(executable, ["bench", "--data", Self.sample, "--layers", "784,16,10", "--workers", "1", "--steps-per-repetition", "1", "--repetitions", "1",
                                           "--warmup", "0"], in: directory, environment: ["OPENBLAS_CORETYPE": "Prescott"])
        #expect(generic.status == 0 && generic.standardOutput.contains("core Prescott"))
        #expect(generic.standardError.hasPrefix("warning: OpenBLAS chose the generic 'Prescott' kernel"), "\(generic.standardError)")

        let json = try backprop("bench", "--json", "--data", Self.sample, "--layers", "784,16,10", "--workers", "2,1",
                                "--steps-per-repetition", "2", "--repetitions", "4", "--warmup", "1")
        #expect(json.status == 0, "\(json.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any])
        let rows = try #require(report["results"] as? [[String: Any]])
        #expect(rows.count == 2 && rows[0]["workers"] as? Int == 2 && rows[1]["workers"] as? Int == 1)
        // Ratios are taken per repetition (measured seconds apart), then their median.
        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        let two = try #require(rows[0]["repetitions"] as? [Double]), one = try #require(rows[1]["repetitions"] as? [Double])
        let ceilings = try #require(rows[0]["ceilings"] as? [Double])
        #expect(two.count == 4 && one.count == 4 && ceilings.count == 4)
        func close(_ field: Any?, _ value: Double) -> Bool { isClose(field as? Double ?? .nan, value, .textRoundTrip) }
        #expect(close(rows[0]["median"], median(two)))
        #expect(close(rows[0]["fractionOfCeiling"], median(zip(two, ceilings).map { $0 / $1 })))
        #expect(close(rows[0]["speedUp"], median(zip(two, one).map { $0 / $1 })) && close(rows[1]["speedUp"], 1))
        let median = try #require(rows[0]["median"] as? Double), ceiling = try #require(rows[0]["ceiling"] as? Double)
        #expect(median > 0 && ceiling > 0 && (report["peakResidentMiB"] as? Double ?? 0) > 0)
        #expect(report["flopsPerSample"] as? Int == 2 * (784 * 16 * 2 + 16 * 10 * 3))
        let phases = try #require(rows[0]["phaseMilliseconds"] as? [String: Double])
        #expect(Set(phases.keys) == ["conversion", "forward", "backward", "update"])
        #expect(phases.values.allSatisfy { $0 >= 0 } && phases["forward"]! > 0 && phases["backward"]! > 0)
        #expect(report["kernel"] as? String == Kernel.automatic.rawValue && (rows[0]["openBLASCeiling"] as? Double ?? 0) > 0)
        // Every product of 784-16-10 (z·wᵀ and δᵀ·Z of both layers, δ·W of the top one), on every fast path and OpenBLAS.
        let products = try #require(report["products"] as? [[String: Any]])
        #expect(products.count == 5)
        let engines = Set(Kernel.allCases.filter { $0.isAvailable && $0 != .portable }.map(\.rawValue) + ["openblas"])
        for product in products {
            let gflops = try #require(product["gflops"] as? [String: Double])
            #expect(Set(gflops.keys) == engines && gflops.values.allSatisfy { $0 > 0 }, "\(product)")
        }
    }

    @Test("--kernel picks the path of train and bench; a path the CPU cannot run, or a bad BACKPROP_KERNEL, is refused")
    func kernelChoice() throws {
        let portable = try backprop("bench", "--kernel", "portable", "--data", Self.sample, "--layers", "784,16,10",
                                    "--workers", "1", "--steps-per-repetition", "1", "--repetitions", "1", "--warmup", "0", "--no-products")
        #expect(portable.status == 0 && portable.standardOutput.contains("kernel portable (4×8 register tiles)"),
                "\(portable.standardError)")
        #expect(!portable.standardOutput.contains("each product alone"))
        for kernel in Kernel.allCases where !kernel.isAvailable {
            let refused = try backprop("bench", "--kernel", kernel.rawValue, "--data", Self.sample)
            #expect(refused.status == 64 && refused.standardError.contains("--kernel \(kernel.rawValue) is not available"))
        }
        let bogus = try run(executable, ["train", "--data", Self.sample, "--epochs", "1"], in: directory,
                            environment: ["BACKPROP_KERNEL": "sse9"])
        #expect(bogus.status == 64 && bogus.standardError.contains("BACKPROP_KERNEL=sse9 is not a kernel path"),
                "\(bogus.standardError)")
        let bad = try backprop("train", "--data", Self.sample, "--kernel", "fast")
        #expect(bad.status == 64 && bad.standardError.contains("fast"), "\(bad.standardError)")
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

    @Test("regression end to end: import the committed Friedman #1 CSV, train with the README's config, RMSE, predict, export")
    func regression() throws {
        let csv = Self.root.appendingPathComponent("datasets/friedman1.csv").path
        let config = Self.root.appendingPathComponent("datasets/friedman1.yaml").path
        let imported = try backprop("import", "csv", csv, "--task", "regression", "--output", "friedman1.h5")
        #expect(imported.status == 0 && imported.standardOutput.contains("1600 train and 400 test samples of 10 features (float32), "
                                                                             + "1 real-valued target per sample"), "\(imported.standardError)")
        let trained = try backprop("train", "--config", config, "--data", "friedman1.h5", "--run-dir", "run")
        try #require(trained.status == 0, "\(trained.standardError)")
        #expect(trained.standardOutput.contains("test RMSE") && !trained.standardOutput.contains("accuracy"))

        // metrics.csv reports RMSE; the last epoch's is far below predicting the mean (≈ 4.9) and near the noise (1.0).
        let metrics = try String(contentsOfFile: "\(directory)/run/metrics.csv", encoding: .utf8).split(separator: "\n")
        #expect(metrics[0] == "epoch,step,train_loss,test_loss,test_rmse,learning_rate,samples_per_second,wall_time")
        let rmse = metrics.dropFirst().map { Double($0.split(separator: ",")[4])! }
        #expect(rmse.count == 60 && rmse.last! < 1.5, "RMSE per epoch: \(rmse)")
        // best.h5 holds the epoch of lowest RMSE.
        let best = try Checkpoint.load(from: "\(directory)/run/best.h5")
        #expect(best.task == .regression && best.history.epochs.last!.testScore == rmse.min())
        let svg = try String(contentsOfFile: "\(directory)/run/curves.svg", encoding: .utf8)
        #expect(svg.contains(#"data-name="test RMSE""#) && !svg.contains("accuracy"))

        let evaluated = try backprop("evaluate", "--checkpoint", "run/model.h5", "--data", "friedman1.h5")
        #expect(evaluated.status == 0 && evaluated.standardOutput.contains(String(format: "RMSE %.4g", rmse.last!)),
                "\(evaluated.standardOutput)")
        let predicted = try backprop("predict", "--checkpoint", "run/model.h5", "--input", "friedman1.h5", "--output", "p.csv")
        #expect(predicted.status == 0, "\(predicted.standardError)")
        let rows = try String(contentsOfFile: "\(directory)/p.csv", encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 401 && rows[0] == "index,y0")

        // Predictions match NumPy running the exported weights.
        for format in ["keras", "npz"] {
            #expect(try backprop("export", "--format", format, "run/model.h5", "--output", "model").status == 0)
        }
        #expect(try backprop("predict", "--checkpoint", "run/model.h5", "--input", "friedman1.h5", "--output", "p.h5").status == 0)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("check_export.py").path
        let check = try run("/usr/bin/python3", [script, "model", "friedman1.h5", "p.h5"], in: directory)
        #expect(check.status == 0 && check.standardOutput.contains("keras: 400 regression outputs"), "\(check.standardOutput) \(check.standardError)")

        // Real-valued targets with the default loss: a clear error naming the data and the fix.
        let wrongLoss = try backprop("train", "--data", "friedman1.h5", "--layers", "10,4,1", "--run-dir", "bad")
        #expect(wrongLoss.status != 0 && wrongLoss.standardError.contains("friedman1.h5")
                && wrongLoss.standardError.contains("--loss sum-of-squares"), "\(wrongLoss.standardError)")
        let wrongWidth = try backprop("train", "--data", "friedman1.h5", "--layers", "10,4,2", "--loss", "sum-of-squares", "--run-dir", "bad")
        #expect(wrongWidth.status != 0 && wrongWidth.standardError.contains("1 target values"), "\(wrongWidth.standardError)")
    }

    @Test("--config: a JSON or YAML file of settings, overridden by flags given on the command line")
    func configFile() throws {
        let file = "\(directory)/run.json"
        try Data(#"{"data": "\#(Self.sample)", "layers": [784, 16, 10], "epochs": 1, "batch-size": 64, "shuffle": false}"#.utf8)
            .write(to: URL(fileURLWithPath: file))
        let result = try backprop("train", "--config", file, "--epochs", "2", "--run-dir", "run")
        #expect(result.status == 0, "\(result.standardError)")
        let checkpoint = try Checkpoint.load(from: "\(directory)/run/model.h5")
        #expect(checkpoint.configuration.epochs == 2, "the flag wins over the file")
        #expect(checkpoint.configuration.batchSize == 64 && !checkpoint.configuration.shuffle && checkpoint.network.sizes == [784, 16, 10])

        let yaml = "\(directory)/run.yaml"
        try Data("# a comment\ndata: \(Self.sample)\nlayers: [784, 12, 10]\nepochs: 1\nbatch-size: 100\nlearning-rate: 0.1\n".utf8)
            .write(to: URL(fileURLWithPath: yaml))
        let fromYAML = try backprop("train", "--config", yaml, "--run-dir", "yaml")
        #expect(fromYAML.status == 0, "\(fromYAML.standardError)")
        let yamlCheckpoint = try Checkpoint.load(from: "\(directory)/yaml/model.h5")
        #expect(yamlCheckpoint.configuration.batchSize == 100 && yamlCheckpoint.configuration.epochs == 1)
        #expect(yamlCheckpoint.configuration.schedule.base == 0.1 && yamlCheckpoint.network.sizes == [784, 12, 10])

        try Data("[1, 2]".utf8).write(to: URL(fileURLWithPath: "\(directory)/bad.json"))
        let bad = try backprop("train", "--config", "bad.json")
        #expect(bad.status != 0 && bad.standardError.contains("bad.json") && bad.standardError.split(separator: "\n").count == 1)
    }

    @Test("--config refuses, by file name and in a moment: keys given twice (JSON and YAML), an unknown key, YAML alias bombs, a second --config")
    func hostileConfigFiles() throws {
        // 9 levels of 9 references: ~387 million values once expanded; and 3 levels of 1,000 (10⁹).
        var bomb = "a: &a [" + Array(repeating: "\"lol\"", count: 9).joined(separator: ",") + "]\n"
        for (previous, name) in zip("abcdefgh", "bcdefghi") {
            bomb += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]\n"
        }
        let wide = "a: &a [" + Array(repeating: "1", count: 1000).joined(separator: ",") + "]\n"
            + "b: &b [" + Array(repeating: "*a", count: 1000).joined(separator: ",") + "]\n"
            + "c: [" + Array(repeating: "*b", count: 1000).joined(separator: ",") + "]\n"
        let files = temporaryDirectory("cli-config")  // not in `directory`, which must stay empty
        for (name, text, fragment) in [
            ("twice.json", #"{"epochs": 1, "epochs": 2}"#, "the key 'epochs' is given twice"),
            ("twice.yaml", "epochs: 1\nepochs: 2\n", "the key 'epochs' is given twice"),
            ("unknown.json", #"{"epoch": 1}"#, "'epoch' is not a setting of this command"),
            ("bomb.yaml", bomb, "holds more values, or nests deeper, than a file of settings does"),
            ("wide.yaml", wide, "holds more values, or nests deeper, than a file of settings does"),
        ] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: "\(files)/\(name)"))
            let start = Date()
            try expectFailure(try backprop("train", "--data", Self.sample, "--config", "\(files)/\(name)"), mentions: [name, fragment])
            #expect(Date().timeIntervalSince(start) < 30, "\(name) took \(Date().timeIntervalSince(start)) s")
        }
        try Data(#"{"epochs": 1}"#.utf8).write(to: URL(fileURLWithPath: "\(files)/one.json"))
        let twice = try backprop("train", "--config", "\(files)/one.json", "--config", "\(files)/one.json")
        #expect(twice.status == 64 && twice.standardError.contains("--config is given more than once"), "\(twice.standardError)")
    }

    /// The tables of the import tests, written by NumPy into `directory`.
    func writeTables() throws {
        let make = """
        import numpy as np
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (50, 6), dtype=np.uint8); y = rng.integers(0, 3, 50)
        np.save('x.npy', x); np.save('y.npy', y); np.save('x-float.npy', x.astype(np.float32))
        np.save('x-fraction.npy', x.astype(np.float32) + 0.5); np.save('y-short.npy', y[:10])
        np.save('y-fraction.npy', y + 0.5); np.save('y-wide.npy', np.stack([y, y], axis=1).astype(np.float32))
        open('words.csv', 'w').write('1,2,0\\n3,x,1\\n')
        np.save('x-fortran.npy', np.asfortranarray(x)); open('x-text.npy', 'w').write('not numpy')
        open('header.csv', 'w').write('label,a,b\\n' + ''.join(f'{l},{r[0]},{r[1]}\\n' for r, l in zip(x, y)))
        open('plain.csv', 'w').write(''.join(f'{r[0]},{r[1]},{l}\\n' for r, l in zip(x, y)))
        open('ragged.csv', 'w').write('1,2,3\\n4,5\\n'); open('negative.csv', 'w').write('1,-2,0\\n')
        # RFC 4180 as R's write.csv and Excel write it: BOM, quoted header and fields, CRLF.
        open('quoted.csv', 'wb').write(b'\\xef\\xbb\\xbf"label","a","b"\\r\\n' + b''.join(
            f'{l},"{r[0]}",{r[1]}\\r\\n'.encode() for r, l in zip(x, y)))
        open('wide-header.csv', 'w').write('a,b,c,d,label\\n1,2,0\\n3,4,1\\n')
        open('duplicate.csv', 'w').write('a,a,label\\n1,2,0\\n3,4,1\\n')
        open('open-quote.csv', 'w').write('a,b,label\\n1,"2,0\\n3,4,1\\n')
        open('inner-quote.csv', 'w').write('a,b,label\\n1,2"x,0\\n3,4,1\\n')
        open('fractions.csv', 'w').write('1.5,2,0\\n3,4,1\\n')
        def npy_header(path, shape):  # a header whose shape overflows or does not parse
            h = ("{'descr': '|u1', 'fortran_order': False, 'shape': " + shape + ", }").encode()
            h += b' ' * (64 - (10 + len(h) + 1) % 64) + b'\\n'
            open(path, 'wb').write(b'\\x93NUMPY\\x01\\x00' + len(h).to_bytes(2, 'little') + h)
        npy_header('x-overflow.npy', '(4294967296, 4294967296)'); npy_header('x-huge.npy', '(99999999999999999999, 2)')
        """
        let made = try run("/usr/bin/python3", ["-c", make], in: directory)
        try #require(made.status == 0, "numpy is needed: \(made.standardError)")
    }

    @Test("import csv and npy: header detection, target columns, feature storage, tasks and split", arguments: [
            // Fractions are features too, stored as float32; real-valued targets with --task regression.
            (["npy", "--x", "x-fraction.npy", "--y", "y.npy"], "40 train and 10 test samples of 6 features (float32), class labels 0–2"),
            (["npy", "--x", "x.npy", "--y", "y-wide.npy", "--task", "regression"], "of 6 features (bytes × 1/255), 2 real-valued targets per sample"),
            (["csv", "header.csv", "--task", "regression", "--target-columns", "a", "b"], "of 1 features (bytes × 1/255), 2 real-valued targets"),
            (["npy", "--x", "x.npy", "--y", "y.npy"], "40 train and 10 test samples of 6 features"),
            (["npy", "--x", "x-float.npy", "--y", "y.npy", "--test-fraction", "0.5"], "25 train and 25 test samples of 6 features"),
            (["npy", "--x", "x-fortran.npy", "--y", "y.npy"], "40 train and 10 test samples of 6 features (bytes × 1/255)"),
            (["csv", "header.csv"], "40 train and 10 test samples of 2 features"),
            (["csv", "quoted.csv", "--test", "quoted.csv"], "50 train and 50 test samples of 2 features (bytes × 1/255), class labels 0–2"),
            (["csv", "plain.csv", "--test", "plain.csv"], "50 train and 50 test samples of 2 features"),
    ])
    func importsTable(arguments: [String], expected: String) throws {
        try writeTables()
        let result = try backprop(["import"] + arguments + ["--output", "out.h5"])
        #expect(result.status == 0 && result.standardOutput.contains(expected), "\(arguments): \(result.standardOutput) \(result.standardError)")
    }

    @Test("import csv: a quoted header (RFC 4180, BOM, CRLF) finds its label column, and the values arrive as written")
    func quotedCSVValues() throws {
        try writeTables()
        let imported = try backprop(["import", "csv", "quoted.csv", "--test", "quoted.csv", "--output", "out.h5"])
        try #require(imported.status == 0, "\(imported.standardError)")
        // quoted.csv's label column is the first, found by its quoted name: its labels are y, its features x[:, :2].
        let (train, test) = try DatasetFile.load("\(directory)/out.h5")
        #expect(train.targetWidth <= 3 && test.featureCount == 2)
        let header = try DatasetFile.load("\(directory)/out.h5").train
        guard case .bytes(let pixels, _) = header.features, let labels = header.labels else {
            Issue.record("quoted.csv should import as bytes and class labels"); return
        }
        let original = try run("/usr/bin/python3", ["-c", "import numpy as np; x = np.load('x.npy'); y = np.load('y.npy'); "
                                                     + "print(','.join(map(str, x[:, :2].ravel())) + ';' + ','.join(map(str, y)))"],
                               in: directory).standardOutput.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";")
        #expect(pixels.map(String.init).joined(separator: ",") == original[0])
        #expect(labels.map(String.init).joined(separator: ",") == original[1])
    }

    @Test("import csv and npy: a byte-valued training split beside a fractional test split are both stored as float32, as given")
    func splitsStoredAlike() throws {
        try writeTables()
        for arguments in [["csv", "plain.csv", "--test", "fractions.csv"],
                          ["npy", "--x", "x.npy", "--y", "y.npy", "--test-x", "x-fraction.npy", "--test-y", "y.npy"]] {
            let mixed = try backprop(["import"] + arguments + ["--output", "mixed.h5"])
            #expect(mixed.status == 0 && mixed.standardOutput.contains("(float32)"), "\(arguments): \(mixed.standardError)")
            let (train, test) = try DatasetFile.load("\(directory)/mixed.h5")
            guard case .floats(let trainValues) = train.features, case .floats(let testValues) = test.features else {
                Issue.record("\(arguments): both splits should be float32"); continue
            }
            #expect(trainValues.allSatisfy { $0.rounded() == $0 && $0 <= 255 } && trainValues.contains { $0 > 1 },
                    "\(arguments): the byte split must keep its values, not 1/255 of them")
            #expect(testValues.contains { $0.rounded() != $0 })
        }
    }

    @Test("import csv and npy: malformed tables refused by name, in one line, with nothing written", arguments: [
            (["npy", "--x", "x-fraction.npy", "--y", "y.npy", "--features", "bytes"], ["x-fraction.npy", "95.5 is not an integer 0…255"]),
            (["npy", "--x", "x.npy", "--y", "y-fraction.npy"], ["y-fraction.npy", "element 0", "is not a class number", "--task regression"]),
            (["npy", "--x", "x.npy", "--y", "y-wide.npy"], ["y-wide.npy", "[50, 2]", "--task regression"]),
            (["csv", "header.csv", "--target-columns", "a,b"], ["header.csv", "one label column"]),
            (["csv", "words.csv", "--header", "no"], ["words.csv", "line 2, column 2", "'x' is not a number"]),
            (["npy", "--x", "x.npy", "--y", "y-short.npy"], ["y-short.npy", "[10]"]),
            (["npy", "--x", "x-text.npy", "--y", "y.npy"], ["x-text.npy", "not a NumPy"]),
            (["npy", "--x", "x-overflow.npy", "--y", "y.npy"], ["x-overflow.npy", "shape", "[4294967296, 4294967296] holds more than"]),
            (["npy", "--x", "x-huge.npy", "--y", "y.npy"], ["x-huge.npy", "'99999999999999999999', not a size"]),
            (["csv", "ragged.csv"], ["ragged.csv", "line 2"]),
            (["csv", "negative.csv", "--header", "no", "--features", "bytes"], ["negative.csv", "line 1, column 2", "-2.0 is not an integer 0…255"]),
            (["csv", "header.csv", "--label-column", "zz"], ["header.csv", "'zz'"]),
            (["csv", "wide-header.csv"], ["wide-header.csv", "header (line 1)", "names 5 columns, the first row has 3"]),
            (["csv", "duplicate.csv"], ["duplicate.csv", "names the column 'a' twice"]),
            (["csv", "open-quote.csv"], ["open-quote.csv", "line 2", "never closed"]),
            (["csv", "inner-quote.csv"], ["inner-quote.csv", "line 2", "quote inside an unquoted field"]),
    ])
    func refusesTable(arguments: [String], fragments: [String]) throws {
        try writeTables()
        let result = try backprop(["import"] + arguments + ["--output", "bad.h5"])
        #expect(result.status != 0 && !result.signalled && result.standardError.split(separator: "\n").count == 1, "\(arguments)")
        for fragment in fragments { #expect(result.standardError.contains(fragment), "\(arguments): \(result.standardError)") }
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/bad.h5"))
    }

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

    @Test("gradcheck passes")
    func gradcheck() throws {
        let result = try backprop("gradcheck")
        #expect(result.status == 0, "\(result.standardOutput)")
        #expect(!result.standardOutput.contains("FAIL"))
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
                      "--keep", "--log-every", "--dp-clip", "--dp-noise", "--dp-epsilon", "--dp-delta"])
    func numericFlags(flag: String) throws {
        let schedule = ["--lr-step-size": ["--lr-schedule", "step"], "--lr-gamma": ["--lr-schedule", "step"],
                        "--warmup-steps": ["--lr-schedule", "cosine"], "--min-lr": ["--lr-schedule", "cosine"],
                        "--dp-noise": ["--dp-clip", "1"], "--dp-epsilon": ["--dp-clip", "1"],
                        "--dp-delta": ["--dp-clip", "1", "--dp-noise", "1"], "--dp-clip": ["--dp-noise", "1"]][flag] ?? []
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
