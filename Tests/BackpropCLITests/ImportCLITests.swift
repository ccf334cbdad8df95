import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// `backprop import`: CSV, NPY and IDX into datasets, and the class names.
extension CLITests {
    @Test("a CSV header of 200,000 columns naming one twice is refused by name, in memory and streamed, in one pass (it took 250 s when the check was quadratic)")
    func wideHeader() throws {
        let width = 200_000
        let names = (0..<(width - 1)).map { "c\($0)" } + ["c17"]
        let header = names.joined(separator: ",") + "\n"
        let row = (0..<width).map { _ in "1" }.joined(separator: ",") + "\n"
        try Data((header + row + row).utf8).write(to: URL(fileURLWithPath: "\(directory)/wide.csv"))
        for extra in [[], ["--stream"]] {
            let refused = try backprop(["import", "csv", "wide.csv", "--output", "wide.h5"] + extra)
            #expect(refused.status != 0 && refused.standardError.contains("names the column 'c17' twice"), "\(extra): \(refused.standardError)")
            #expect(!FileManager.default.fileExists(atPath: "\(directory)/wide.h5"))
        }
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

    @Test("image shapes: npy [N, H, W] records H×W, --image-shape sets or overrides one and is refused when it does not fit; --augment needs one")
    func imageShapes() throws {
        try writeTables()
        let reshape = try run("/usr/bin/python3", ["-c", "import numpy as np; np.save('x-images.npy', np.load('x.npy').reshape(50, 2, 3))"],
                              in: directory)
        try #require(reshape.status == 0, "\(reshape.standardError)")
        for (arguments, shape) in [(["npy", "--x", "x-images.npy", "--y", "y.npy"], ImageShape(height: 2, width: 3)),
                                   (["npy", "--x", "x-images.npy", "--y", "y.npy", "--image-shape", "3,2"], ImageShape(height: 3, width: 2)),
                                   (["npy", "--x", "x.npy", "--y", "y.npy"], nil),
                                   (["csv", "plain.csv", "--image-shape", "1,2"], ImageShape(height: 1, width: 2)),
                                   (["csv", "plain.csv", "--image-shape", "1,1,2"], ImageShape(height: 1, width: 1, channels: 2))] {
            let imported = try backprop(["import"] + arguments + ["--output", "images.h5"])
            try #require(imported.status == 0, "\(arguments): \(imported.standardError)")
            let (train, test) = try DatasetFile.load("\(directory)/images.h5")
            #expect(train.imageShape == shape && test.imageShape == shape, "\(arguments)")
            #expect(imported.standardOutput.contains(shape.map { "images \($0)" } ?? "(bytes × 1/255), class"), "\(imported.standardOutput)")
        }
        for (shape, fragment) in [("2,2", "--image-shape 2x2 holds 4 values, but a sample has 6 features"), ("0,6", "--image-shape"),
                                  ("2,x", "--image-shape")] {
            let refused = try backprop("import", "npy", "--x", "x.npy", "--y", "y.npy", "--image-shape", shape, "--output", "bad.h5")
            #expect(refused.status == 64 && refused.standardError.contains(fragment), "\(shape): \(refused.standardError)")
            #expect(!FileManager.default.fileExists(atPath: "\(directory)/bad.h5"))
        }
        // Training: --augment on the table without a shape is refused by name; with one it runs.
        let plain = try backprop("import", "npy", "--x", "x.npy", "--y", "y.npy", "--output", "plain.h5")
        try #require(plain.status == 0, "\(plain.standardError)")
        let refused = try backprop("train", "--data", "plain.h5", "--layers", "6,4,3", "--epochs", "1", "--augment", "shift=1,flip",
                                   "--run-dir", "refused", "--quiet")
        #expect(refused.status == 64 && refused.standardError.contains("--augment") && refused.standardError.contains("image shape")
                && refused.standardError.split(separator: "\n").count == 1, "\(refused.standardError)")
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/refused/model.h5"))
        for value in ["shift=0", "shift=-1", "shift=nan", "shift=inf", "shift=9223372036854775807", "flip,flip", "rotate", ""] {
            let bad = try backprop("train", "--data", "plain.h5", "--layers", "6,4,3", "--epochs", "1", "--augment", value,
                                   "--run-dir", "refused", "--quiet")
            #expect(bad.status == 64 && bad.standardError.contains("--augment") && bad.standardError.contains("give shift=S")
                    && bad.standardError.split(separator: "\n").count == 1, "\(value): \(bad.standardError)")
        }
        let _ = try backprop("import", "npy", "--x", "x-images.npy", "--y", "y.npy", "--output", "images.h5")
        let trained = try backprop("train", "--data", "images.h5", "--layers", "6,4,3", "--epochs", "1", "--augment", "shift=1,flip",
                                   "--dropout", "0.5", "--input-dropout", "0.2", "--run-dir", "augmented", "--quiet")
        #expect(trained.status == 0, "\(trained.standardError)")
        let config = try String(contentsOfFile: "\(directory)/augmented/config.json", encoding: .utf8)
        #expect(config.contains("\"augment\" : \"shift=1,flip\"") && config.contains("\"dropout\" : 0.5")
                && config.contains("\"input-dropout\" : 0.2"), "\(config)")
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
}

extension CLITests {
    @Test("import csv and npy hold out the same rows in memory and streamed, for any seed, fraction and validation share: every split byte for byte",
          arguments: [["--seed", "3"], ["--seed", "11", "--test-fraction", "0.3"], ["--seed", "5", "--validation-fraction", "0.2"],
                      ["--seed", "8", "--test-fraction", "0.1", "--validation-fraction", "0.25"]])
    func splitIndependentOfMemory(_ flags: [String]) throws {
        try writeTables()
        for source in [["csv", "plain.csv"], ["csv", "header.csv"], ["npy", "--x", "x.npy", "--y", "y.npy"], ["npy", "--x", "x-float.npy", "--y", "y.npy"]] {
            var splits: [[String: Dataset]] = []
            for (index, mode) in [[], ["--stream"]].enumerated() {
                let output = "split-\(index).h5"
                let result = try backprop(["import"] + source + flags + mode + ["--output", output])
                try #require(result.status == 0, "\(source) \(flags) \(mode): \(result.standardError)")
                let file = try HDF5File.open("\(directory)/\(output)")
                let (train, test) = try DatasetFile.load(file)
                var found = ["train": train, "test": test]
                found["validation"] = try DatasetFile.validation(of: file)
                splits.append(found)
            }
            #expect(splits[0].keys.sorted() == splits[1].keys.sorted(), "\(source) \(flags)")
            for (name, inMemory) in splits[0] {
                let streamed = try #require(splits[1][name])
                #expect(inMemory.features == streamed.features && inMemory.targets == streamed.targets, "\(source) \(flags): /\(name)")
            }
        }
    }
}
