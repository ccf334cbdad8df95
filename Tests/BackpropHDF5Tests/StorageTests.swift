import BackpropCore
@testable import BackpropHDF5
import BackpropIO
import BackpropTestSupport
import Foundation
import Testing

/// Round trips and every bad-input case of the dataset and checkpoint files.
struct StorageTests {
    let directory = temporaryDirectory("storage")

    func path(_ name: String) -> String { "\(directory)/\(name)" }

    /// A valid dataset file with 20 train and 6 test samples of 5 features.
    func writeDataset(_ name: String = "data.h5") throws -> String {
        let file = path(name)
        try DatasetFile.write(train: randomDataset(count: 20, featureCount: 5, classCount: 3, seed: 1),
                              test: randomDataset(count: 6, featureCount: 5, classCount: 3, seed: 2),
                              attributes: ["source": "test"], to: file)
        return file
    }

    /// Writes a dataset-like file object by object, for the malformed cases.
    func craft(_ name: String, _ build: (HDF5File) throws(StorageError) -> Void) throws -> String {
        let file = path(name)
        try HDF5File.createAtomically(file, build)
        return file
    }

    @Test("docs/file-formats.md holds the checkpoint's and the teacher's tables generated from the schemas that their writers and readers use",
          arguments: ["checkpoint", "teacher"])
    func documentedSchema(_ format: String) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let document = try String(contentsOf: root.appendingPathComponent("docs/file-formats.md"), encoding: .utf8)
        let table = format == "checkpoint" ? Checkpoint.schemaTable : TeacherFile.schemaTable
        if !document.contains(table) {
            try table.write(toFile: NSTemporaryDirectory() + "/\(format)-schema.md", atomically: true, encoding: .utf8)
            Issue.record("docs/file-formats.md is stale: its \(format) table is in \(NSTemporaryDirectory())/\(format)-schema.md")
        }
    }

    @Test("every attribute and dataset a teacher file holds (with views) is declared in its schema, and every declared one is there")
    func teacherSchemaCoversTheFile() throws {
        let directory = temporaryDirectory("teacher-schema")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let views = Augmentation(shift: 1, flip: false)
        let teacher = TeacherFile(probabilities: [0.25, 0.75, 1, 0], count: 2, classes: 2, dataFingerprint: "d", trainedOn: "t", members: ["m"],
                                  views: views, viewProbabilities: [Float](repeating: 0.5, count: 2 * views.viewCount * 2))
        try teacher.write(to: "\(directory)/t.h5")
        #expect(try TeacherFile.read("\(directory)/t.h5") == teacher)
        let dump = try run("/usr/bin/h5dump", ["-A", "\(directory)/t.h5"])
        try #require(dump.status == 0, "h5dump is needed: \(dump.standardError)")
        let attributes = Set(dump.standardOutput.split(separator: "\n").compactMap { line -> String? in
            guard let match = line.firstMatch(of: /ATTRIBUTE "([^"]+)"/) else { return nil }
            return String(match.1)
        })
        let declared = Set(TeacherFile.schemaTable.split(separator: "\n").compactMap { line -> String? in
            guard let match = line.firstMatch(of: /\| `[^`]+` \| `([^`]+)`/) else { return nil }
            return String(match.1)
        })
        #expect(attributes == declared, "in the file: \(attributes.sorted()); declared: \(declared.sorted())")
        let datasets = Set(dump.standardOutput.split(separator: "\n").compactMap { line -> String? in
            guard let match = line.firstMatch(of: /DATASET "([^"]+)"/) else { return nil }
            return String(match.1)
        })
        #expect(datasets == ["outputs", "views"], "\(datasets)")
    }

    @Test("every attribute a saved checkpoint holds is declared in the schema, and every declared one that a full run has is there")
    func schemaCoversTheFile() throws {
        let directory = temporaryDirectory("schema")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = TrainingConfiguration()
        configuration.sizes = [6, 5, 3]
        configuration.validationFraction = 0.25
        configuration.ema = 0.5  // /training's average_count
        let trainer = try Trainer(configuration: configuration, dataset: randomDataset(count: 40, featureCount: 6, classCount: 3, seed: 1))
        try trainer.step()
        var record = EpochRecord(epoch: 0, step: 1, trainLoss: 1, testLoss: .nan, testScore: .nan, learningRate: 0.05,
                                 samplesPerSecond: 1, wallTime: 1)
        record.validationLoss = 1
        record.validationScore = 0.5
        trainer.history.log(record, task: .classification)
        var checkpoint = Checkpoint(of: trainer, dataPath: "d.h5", dataFingerprint: "f")
        checkpoint.classNames = ["a", "b", "c"]
        checkpoint.teacherPath = "teacher.h5"  // /data's teacher and its fingerprint, as a distilled run records them
        checkpoint.teacherFingerprint = "teacher 3x1x3 fnv1a64 0123456789abcdef"
        try checkpoint.save(to: "\(directory)/c.h5")
        // h5dump's attribute names, object by object.
        let dump = try run("/usr/bin/h5dump", ["-A", "\(directory)/c.h5"])
        let declared = Set(Checkpoint.schemaTable.split(separator: "\n").compactMap { line -> String? in
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 2, cells[1].hasPrefix("`") else { return nil }
            return cells[1].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
        })
        let stored = Set(dump.standardOutput.split(separator: "\n").compactMap { line -> String? in
            let text = line.trimmingCharacters(in: .whitespaces)
            guard text.hasPrefix("ATTRIBUTE \"") else { return nil }
            return String(text.dropFirst("ATTRIBUTE \"".count).prefix { $0 != "\"" })
        })
        #expect(!stored.isEmpty && stored == declared, "stored, not declared: \(stored.subtracting(declared)); declared, not stored: \(declared.subtracting(stored))")
    }

    @Test("a dataset file round-trips exactly")
    func datasetRoundTrip() throws {
        let file = try writeDataset()
        let (train, test) = try DatasetFile.load(file)
        let expected = randomDataset(count: 20, featureCount: 5, classCount: 3, seed: 1)
        #expect(train == Dataset(name: train.name, features: expected.features, targets: expected.targets, featureCount: 5))
        #expect(test.count == 6 && train.name == "\(file):/train")
        #expect(try HDF5File.open(file).stringAttribute("source") == "test")
    }

    @Test("a regression dataset (float32 features and targets) round-trips exactly")
    func regressionDatasetRoundTrip() throws {
        let file = path("regression.h5")
        let train = regressionDataset(count: 30, seed: 1), test = regressionDataset(count: 7, seed: 2)
        try DatasetFile.write(train: train, test: test, attributes: [:], to: file)
        let (loadedTrain, loadedTest) = try DatasetFile.load(file)
        #expect(loadedTrain.features == train.features && loadedTrain.targets == train.targets)
        #expect(loadedTest.features == test.features && loadedTest.targets == test.targets)
        let h5 = try HDF5File.open(file)
        #expect(try h5.shape(of: "/train/y") == [30, 2] && !h5.hasAttribute("scale", of: "/train/x"))
    }

    /// A checkpoint after one epoch scoring 0.5, edited by `python` (h5py, the file as `f`) into an older version's layout.
    private func oldCheckpoint(task: LearningTask, python: String) throws -> Checkpoint {
        var configuration = TrainingConfiguration()
        configuration.sizes = [5, 4, 3]
        configuration.batchSize = 10
        let dataset = task == .classification ? randomDataset(count: 20, featureCount: 5, classCount: 3, seed: 4)
            : Dataset(name: "r", features: .floats((0..<100).map { Float($0) / 100 }), targets: .values([Float](repeating: 1, count: 60), width: 3),
                      featureCount: 5)
        if task == .regression { configuration.loss = .sumOfSquares }
        let trainer = try Trainer(configuration: configuration, dataset: dataset)
        for _ in 0..<2 { try trainer.step() }
        trainer.history.log(EpochRecord(epoch: 0, step: 2, trainLoss: 1, testLoss: 1, testScore: 0.5, learningRate: 0.05,
                                        samplesPerSecond: 1, wallTime: 1), task: task)
        let file = path("old-\(task).h5")
        try Checkpoint(of: trainer, dataPath: "data.h5", dataFingerprint: "f").save(to: file)
        let edit = try run("/usr/bin/python3", ["-c", "import h5py, numpy; f = h5py.File('\(file)', 'a'); \(python)"])
        try #require(edit.status == 0, "h5py is needed: \(edit.standardError)")
        return try Checkpoint.load(from: file)
    }

    /// A trainer two steps into the epoch after `epochs` logged ones (batches of 10 of 30 samples).
    func trainerWithLog(epochs: Int) throws -> Trainer {
        var configuration = TrainingConfiguration()
        (configuration.sizes, configuration.batchSize, configuration.epochs) = ([5, 4, 3], 10, 3)
        let trainer = try Trainer(configuration: configuration, dataset: randomDataset(count: 30, featureCount: 5, classCount: 3, seed: 4))
        for _ in 0..<5 { try trainer.step() }
        var history = trainer.history
        for epoch in 0..<epochs {
            var record = EpochRecord(epoch: epoch, step: 3 * (epoch + 1), trainLoss: 1, testLoss: .nan, testScore: .nan,
                                     learningRate: 0.05, samplesPerSecond: 1, wallTime: 1)
            (record.validationLoss, record.validationScore) = (1, epoch == 123 ? 0.9 : 0.5)
            history.log(record, task: .classification)
        }
        // As if it had trained those epochs: the position after them, two steps on.
        trainer.restore(position: TrainingPosition(epoch: epochs, batch: 2, step: 3 * epochs + 2), optimizerState: trainer.optimizer.state,
                        order: trainer.order, history: history)
        return trainer
    }

    @Test("a checkpoint's size does not grow with the run: epoch 50,000 writes what epoch 500 does, give or take the rows kept")
    func checkpointSizeBounded() throws {
        var sizes: [Int] = []
        for epochs in [500, 50_000] {
            let trainer = try trainerWithLog(epochs: epochs)
            let file = path("log-\(epochs).h5")
            try Checkpoint(of: trainer, dataPath: "data.h5", dataFingerprint: "f").save(to: file)
            let h5 = try HDF5File.open(file)
            #expect(try h5.shape(of: "/metrics/step_loss") == [2], "the epoch under way's two steps")
            #expect(try h5.shape(of: "/metrics/epochs/epoch")[0] <= History.keptEpochs)
            let loaded = try Checkpoint.load(from: file)
            #expect(loaded.history == trainer.history && loaded.history.best?.epoch == 123)
            sizes.append(try FileManager.default.attributesOfItem(atPath: file)[.size] as! Int)
        }
        // At most keptEpochs rows of 8 float64 columns apart.
        #expect(abs(sizes[1] - sizes[0]) <= History.keptEpochs * 8 * 8, "\(sizes)")
    }

    @Test("a pre-0.8 checkpoint (every step's loss, every epoch's row, no digest) loads: digested, thinned, and no best (its best was the test split's)")
    func checkpointWithFullHistory() throws {
        // 1,000 epochs of 3 steps and two more; the best test accuracy at epoch 601.
        var configuration = TrainingConfiguration()
        (configuration.sizes, configuration.batchSize, configuration.epochs, configuration.workers) = ([5, 4, 3], 10, 1001, 1)
        let trainer = try Trainer(configuration: configuration, dataset: randomDataset(count: 30, featureCount: 5, classCount: 3, seed: 4))
        var losses: [Double] = []
        for _ in 0..<3002 { losses.append(try trainer.step().meanLoss) }
        for epoch in 0..<1000 {
            trainer.history.log(EpochRecord(epoch: epoch, step: 3 * (epoch + 1), trainLoss: 1, testLoss: 1, testScore: epoch == 601 ? 0.99 : 0.5,
                                            learningRate: 0.05, samplesPerSecond: 1, wallTime: 1), task: .classification)
        }
        let file = path("full-history.h5")
        try Checkpoint(of: trainer, dataPath: "data.h5", dataFingerprint: "f").save(to: file)
        // As 0.7 wrote it: every step's loss and every row (un-thinned), none of 0.8's attributes.
        // 0.7's columns: no validation_*.
        let columns = EpochRecord.columns(.classification).map(\.name).filter { !$0.hasPrefix("validation") }
        let rows = columns.map { name -> String in
            switch name {
            case "epoch": return "numpy.arange(1000.0)"
            case "step": return "3.0 * numpy.arange(1, 1001)"
            case "test_accuracy": return "numpy.where(numpy.arange(1000) == 601, 0.99, 0.5)"
            case "test_loss": return "numpy.ones(1000)"
            case "learning_rate": return "numpy.full(1000, 0.05)"
            default: return "numpy.ones(1000)"
            }
        }
        let python = "import h5py, numpy, sys; f = h5py.File('\(file)', 'a'); m = f['metrics']; "
            + "[m.attrs.__delitem__(a) for a in ('step_loss_digest', 'epoch_stride', 'best_epoch', 'best_score') if a in m.attrs]; "
            + "del m['step_loss']; m['step_loss'] = numpy.array([float(v) for v in sys.argv[1].split(',')]); del m['epochs']; "
            + zip(columns, rows).map { "m['epochs/\($0)'] = \($1); " }.joined() + "f.close()"
        let edit = try run("/usr/bin/python3", ["-c", python, losses.map { "\($0)" }.joined(separator: ",")])
        try #require(edit.status == 0, "h5py is needed: \(edit.standardError)")
        let loaded = try Checkpoint.load(from: file)
        #expect(loaded.history.stepLosses == Array(losses.suffix(2)), "the epoch under way's")
        #expect(loaded.history.stepLossDigest == trainer.history.stepLossDigest)
        #expect(loaded.history.epochs == trainer.history.epochs)
        // Before 0.8 the test split chose best.h5; it chooses nothing now, and there was no validation split.
        #expect(loaded.history.best == nil && trainer.history.best == nil)
    }

    @Test("a 0.2 checkpoint (no metric attribute, no test_rmse column) still loads, as classification")
    func checkpointWithoutRegressionFields() throws {
        let loaded = try oldCheckpoint(task: .classification,
                                       python: "del f['data'].attrs['metric']; del f['model'].attrs['parameter_fingerprint']")
        #expect(loaded.task == .classification && loaded.history.epochs.count == 1 && loaded.history.epochs[0].testScore == 0.5)
    }

    @Test("a 0.3–0.5 checkpoint (both score columns, NaN in the other task's) loads its task's score", arguments: LearningTask.allCases)
    func checkpointWithBothScoreColumns(task: LearningTask) throws {
        let other = LearningTask.allCases.first { $0 != task }!
        let loaded = try oldCheckpoint(task: task, python: "f['metrics/epochs/\(other.scoreColumn)'] = numpy.array([numpy.nan])")
        #expect(loaded.task == task && loaded.history.epochs[0].testScore == 0.5)
    }

    @Test("a checkpoint round-trips bit for bit")
    func checkpointRoundTrip() throws {
        let dataset = randomDataset(count: 30, featureCount: 5, classCount: 3, seed: 3)
        var configuration = TrainingConfiguration()
        configuration.sizes = [5, 7, 3]
        configuration.batchSize = 8
        configuration.optimizer = OptimizerSettings(kind: .adam)
        configuration.schedule.base = 0.01
        let trainer = try Trainer(configuration: configuration, dataset: dataset)
        for _ in 0..<5 { try trainer.step() }
        let file = path("model.h5")
        try Checkpoint(of: trainer, dataPath: "data.h5", dataFingerprint: trainer.dataset.fingerprint).save(to: file)
        let loaded = try Checkpoint.load(from: file)
        #expect(loaded.network.parameters.map(\.bitPattern) == trainer.network.parameters.map(\.bitPattern))
        #expect(loaded.network.layers == trainer.network.layers && loaded.network.loss == .crossEntropy)
        #expect(loaded.optimizerState == trainer.optimizer.state)
        #expect(loaded.optimizerKind == .adam && loaded.configuration == configuration)
        #expect(loaded.position == TrainingPosition(epoch: 1, batch: 1, step: 5))
        // The layout users read with h5py/h5dump.
        let h5 = try HDF5File.open(file)
        #expect(try h5.shape(of: "/model/layers/0/weight") == [7, 5])
        #expect(try h5.stringAttribute("activation", of: "/model/layers/1") == "softmax")
        #expect(try h5.stringAttribute("format") == Checkpoint.format)
        #expect(try h5.stringAttribute("parameter_fingerprint", of: "/model") == trainer.network.fingerprint)
        // Nothing is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["model.h5"])
    }

    @Test("IDX files, plain and gzip, import into the dataset layout")
    func idxImport() throws {
        let idx = temporaryDirectory("idx")
        func writeIDX(_ stem: String, _ dims: [Int], _ bytes: [UInt8]) throws {
            var data: [UInt8] = [0, 0, 8, UInt8(dims.count)]
            for d in dims { data += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
            try Data(data + bytes).write(to: URL(fileURLWithPath: "\(idx)/\(stem)"))
        }
        try writeIDX(IDXImport.stems.trainImages, [3, 2, 2], Array(0..<12))
        try writeIDX(IDXImport.stems.trainLabels, [3], [1, 0, 2])
        try writeIDX(IDXImport.stems.testImages, [1, 2, 2], [9, 8, 7, 6])
        try writeIDX(IDXImport.stems.testLabels, [1], [2])
        // gzip one of them: the reader must take both.
        let gzip = try run("/bin/gzip", ["\(idx)/\(IDXImport.stems.trainImages)"])
        #expect(gzip.status == 0)
        let output = path("imported.h5")
        try IDXImport.run(from: idx, to: output, name: "tiny")
        let (train, test) = try DatasetFile.load(output)
        #expect(train.features == .bytes(Array(0..<12), scale: 1 / 255) && train.labels == [1, 0, 2] && train.featureCount == 4)
        #expect(test.features == .bytes([9, 8, 7, 6], scale: 1 / 255) && test.labels == [2])
        // [N, 2, 2] images: the file records their shape.
        #expect(train.imageShape == ImageShape(height: 2, width: 2) && test.imageShape == train.imageShape)
    }

    @Test("an image shape round-trips as root attributes; one missing, of the wrong size, zero, negative or a float is refused by name")
    func imageShape() throws {
        var train = randomDataset(count: 20, featureCount: 12, classCount: 3, seed: 1)
        train.imageShape = ImageShape(height: 2, width: 2, channels: 3)
        let file = path("image.h5")
        try DatasetFile.write(train: train, test: randomDataset(count: 6, featureCount: 12, classCount: 3, seed: 2),
                              attributes: [:], to: file)
        let (loaded, test) = try DatasetFile.load(file)
        #expect(loaded.imageShape == train.imageShape && test.imageShape == train.imageShape)
        #expect(try DatasetFile.load(try writeDataset("plain.h5")).train.imageShape == nil)
        func crafted(_ name: String, _ attributes: (HDF5File) throws(StorageError) -> Void) throws -> String {
            try craft(name) { (file) throws(StorageError) in
                try file.write([UInt8](repeating: 0, count: 12), shape: [2, 6], to: "/train/x")
                try file.setAttribute("scale", Float(1), on: "/train/x")
                try file.write([UInt8](repeating: 0, count: 2), shape: [2], to: "/train/y")
                try file.write([UInt8](repeating: 0, count: 6), shape: [1, 6], to: "/test/x")
                try file.setAttribute("scale", Float(1), on: "/test/x")
                try file.write([UInt8](repeating: 0, count: 1), shape: [1], to: "/test/y")
                try attributes(file)
            }
        }
        let good = try crafted("good.h5") { (file) throws(StorageError) in
            try file.setAttribute("image_height", Int32(2))
            try file.setAttribute("image_width", Int64(3))
        }
        #expect(try DatasetFile.load(good).train.imageShape == ImageShape(height: 2, width: 3))
        let cases: [(String, (HDF5File) throws(StorageError) -> Void, String)] = [
            ("no-width.h5", { (f) throws(StorageError) in try f.setAttribute("image_height", Int64(6)) }, "attribute 'image_width' of /"),
            ("wrong-size.h5", { (f) throws(StorageError) in
                try f.setAttribute("image_height", Int64(2)); try f.setAttribute("image_width", Int64(2)) }, "a row holds 6 features"),
            ("zero.h5", { (f) throws(StorageError) in
                try f.setAttribute("image_height", Int64(0)); try f.setAttribute("image_width", Int64(6)) }, "attribute 'image_height' of /"),
            ("negative.h5", { (f) throws(StorageError) in
                try f.setAttribute("image_height", Int64(-2)); try f.setAttribute("image_width", Int64(-3)) }, "attribute 'image_height' of /"),
            ("float.h5", { (f) throws(StorageError) in
                try f.setAttribute("image_height", Float(2)); try f.setAttribute("image_width", Int64(3)) }, "attribute 'image_height' of /"),
        ]
        for (name, attributes, mention) in cases {
            let file = try crafted(name, attributes)
            do {
                _ = try DatasetFile.load(file)
                Issue.record("\(name) loaded")
            } catch {
                #expect(error.description.contains(file) && error.description.contains(mention), "\(name): \(error.description)")
            }
        }
    }

    @Test("IDX: a dimension of size 0, and a gzip file that would inflate beyond 200 times its size, are refused by name")
    func idxRefusals() throws {
        let idx = temporaryDirectory("idx-bad")
        let zero = "\(idx)/zero-idx1-ubyte"
        try Data([0, 0, 8, 2, 0, 0, 0, 3, 0, 0, 0, 0]).write(to: URL(fileURLWithPath: zero))
        #expect(throws: StorageError.invalidContent(path: zero, object: "IDX header", reason: "declares dimension 2 of size 0")) {
            try IDXArray.read(zero)
        }
        // 64 MiB of zeros behind a valid header: gzip makes it about 64 KiB.
        let bomb = "\(idx)/bomb-idx3-ubyte"
        var header = Data([0, 0, 8, 3, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 1, 0])  // 1024 × 256 × 256
        header.append(Data(count: 1 << 26))
        try header.write(to: URL(fileURLWithPath: bomb))
        try #require(try run("/bin/gzip", [bomb]).status == 0)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: bomb + ".gz")[.size] as? Int)
        #expect(throws: StorageError.invalidContent(
            path: bomb + ".gz", object: "IDX data",
            reason: "declares \(1 << 26) bytes from a \(size)-byte gzip file, more than 200 times its size")) {
            try IDXArray.read(bomb + ".gz")
        }
    }

    // MARK: - Bad input: each case its error, naming the file

    @Test("a missing file")
    func missingFile() {
        #expect(throws: StorageError.missingFile(path: path("nope.h5"))) { try DatasetFile.load(path("nope.h5")) }
    }

    @Test("a file that is not HDF5, and a truncated one")
    func notHDF5() throws {
        let text = path("text.h5")
        try "hello".write(toFile: text, atomically: true, encoding: .utf8)
        #expect(throws: StorageError.notHDF5(path: text)) { try DatasetFile.load(text) }
        let good = try writeDataset()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let truncated = path("truncated.h5")
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        #expect(throws: StorageError.self) { try DatasetFile.load(truncated) }
    }

    @Test("a missing /train/x")
    func missingObject() throws {
        let file = try craft("missing.h5") { (file) throws(StorageError) in try file.write([UInt8](repeating: 0, count: 3), shape: [3], to: "/train/y") }
        #expect(throws: StorageError.missingObject(path: file, object: "/train/x")) { try DatasetFile.load(file) }
    }

    @Test("x of the wrong rank")
    func wrongRank() throws {
        let file = try craft("rank.h5") { (file) throws(StorageError) in try file.write([UInt8](repeating: 0, count: 6), shape: [6], to: "/train/x") }
        #expect(throws: StorageError.wrongRank(path: file, object: "/train/x", expected: 2, found: 1)) { try DatasetFile.load(file) }
    }

    @Test("x stored as float64 instead of uint8 or float32")
    func wrongType() throws {
        let file = try craft("dtype.h5") { (file) throws(StorageError) in try file.write([Double](repeating: 0, count: 6), shape: [3, 2], to: "/train/x") }
        #expect(throws: StorageError.wrongType(path: file, object: "/train/x", expected: "float32", found: "float64")) {
            try DatasetFile.load(file)
        }
    }

    @Test("x and y of different lengths")
    func lengthMismatch() throws {
        let file = try craft("lengths.h5") { (file) throws(StorageError) in
            try file.write([UInt8](repeating: 0, count: 6), shape: [3, 2], to: "/train/x")
            try file.setAttribute("scale", Float(1), on: "/train/x")
            try file.write([UInt8](repeating: 0, count: 4), shape: [4], to: "/train/y")
        }
        #expect(throws: StorageError.wrongShape(path: file, object: "/train/y", expected: "3 rows (one per row of /train/x)", found: "4")) {
            try DatasetFile.load(file)
        }
    }

    @Test("a soft link is refused")
    func softLink() throws {
        let file = try writeDataset("linked.h5")
        let script = "import h5py; f = h5py.File('\(file)', 'a'); del f['test/x']; f['test/x'] = h5py.SoftLink('/train/x')"
        let python = try run("/usr/bin/python3", ["-c", script])
        try #require(python.status == 0, "h5py is needed: \(python.standardError)")
        #expect(throws: StorageError.invalidContent(path: file, object: "/test/x", reason: "is a soft or external link; only plain objects are read")) {
            try DatasetFile.load(file)
        }
    }

    @Test("a checkpoint: wrong format, newer version, non-chaining layers, NaN weights")
    func badCheckpoints() throws {
        let dataset = try writeDataset()
        #expect(throws: StorageError.wrongFormat(path: dataset, found: DatasetFile.format, expected: Checkpoint.format)) {
            try Checkpoint.load(from: dataset)
        }
        var configuration = TrainingConfiguration()
        configuration.sizes = [5, 4, 3]
        let trainer = try Trainer(configuration: configuration, dataset: randomDataset(count: 10, featureCount: 5, classCount: 3, seed: 1))
        let good = path("good.h5")
        try Checkpoint(of: trainer, dataPath: "data.h5", dataFingerprint: trainer.dataset.fingerprint).save(to: good)

        func variant(_ name: String, _ python: String) throws -> String {
            let file = path(name)
            try FileManager.default.copyItem(atPath: good, toPath: file)
            let result = try run("/usr/bin/python3", ["-c", "import h5py, numpy as np; f = h5py.File('\(file)', 'a'); \(python)"])
            try #require(result.status == 0, "h5py is needed: \(result.standardError)")
            return file
        }
        let newer = try variant("newer.h5", "f.attrs['format_version'] = np.int64(99)")
        #expect(throws: StorageError.unsupportedVersion(path: newer, found: 99, supported: Checkpoint.formatVersion)) {
            try Checkpoint.load(from: newer)
        }
        let chain = try variant("chain.h5", "del f['model/layers/1/weight']; f['model/layers/1/weight'] = np.zeros((3, 6), np.float32)")
        #expect(throws: StorageError.wrongShape(path: chain, object: "/model/layers/1/weight",
                                                expected: "[out, 4] (the previous layer's output)", found: "[3, 6]")) {
            try Checkpoint.load(from: chain)
        }
        let nan = try variant("nan.h5", "w = f['model/layers/0/weight']; a = w[()]; a[1, 2] = np.nan; w[...] = a")
        #expect(throws: StorageError.invalidContent(path: nan, object: "/model/layers/0/weight", reason: "value 7 is nan; weights must be finite")) {
            try Checkpoint.load(from: nan)
        }
        let altered = try variant("altered.h5", "w = f['model/layers/1/bias']; a = w[()]; a[0] += 1; w[...] = a")
        var alteredNetwork = trainer.network
        alteredNetwork.parameters[trainer.network.layers[1].biasOffset] += 1
        #expect(throws: StorageError.invalidContent(
            path: altered, object: "/model/layers",
            reason: "hold parameters whose fingerprint is \(alteredNetwork.fingerprint), not the \(trainer.network.fingerprint) saved with them (the file was altered)")) {
            try Checkpoint.load(from: altered)
        }
        let activation = try variant("activation.h5", "f['model/layers/0'].attrs['activation'] = np.bytes_(b'swish')")
        #expect(throws: StorageError.invalidContent(path: activation, object: "attribute 'activation' of /model/layers/0", reason: "unknown activation 'swish'")) {
            try Checkpoint.load(from: activation)
        }
    }

    @Test("a failed write leaves the previous file intact and no temporary file")
    func atomicWrite() throws {
        let file = try writeDataset()
        let before = try Data(contentsOf: URL(fileURLWithPath: file))
        #expect(throws: StorageError.io(path: file, reason: "simulated failure")) {
            try HDF5File.createAtomically(file) { (file) throws(StorageError) in
                try file.createGroup("/partial")
                throw .io(path: file.path, reason: "simulated failure")
            }
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: file)) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["data.h5"])
    }
}
