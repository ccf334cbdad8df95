import BackpropCore
import BackpropHDF5
import BackpropIO
import BackpropTestSupport
import Foundation
import Testing

/// `backprop ensemble` and `train --teacher` (issue 36, item 2): the teacher
/// is /train's rows from members trained on the student's split, a distilled
/// run keeps the same-bits promise and resumes, and every door of the new
/// file and flags refuses bad input by name.
struct DistillationCLITests {
    let directory = temporaryDirectory("distillation")
    let executable = backpropExecutable()
    /// The committed sample, 20 % held out (seed 0): the split every member and student here shares.
    static let data = ["--data", CLITests.sample, "--validation-fraction", "0.2"]
    static let student = data + ["--layers", "784,16,10", "--epochs", "3", "--batch-size", "100"]

    func backprop(_ arguments: [String]) throws -> ProcessResult { try run(executable, arguments, in: directory) }

    func path(_ name: String) -> String { "\(directory)/\(name)" }

    /// A clean refusal: non-zero exit, one line naming every fragment, and no file created, changed or removed.
    func expectRefusal(_ arguments: [String], mentions fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = snapshot(directory)
        let result = try backprop(arguments)
        #expect(result.status != 0 && !result.signalled, "status \(result.status)", sourceLocation: sourceLocation)
        #expect(result.standardError.split(separator: "\n").count == 1, "stderr: \(result.standardError)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(result.standardError.contains(fragment), "stderr: \(result.standardError)", sourceLocation: sourceLocation)
        }
        #expect(snapshot(directory) == before, "files changed", sourceLocation: sourceLocation)
    }

    /// Trains a member into `run` (`flags` on top of the shared split) and returns its model's path.
    func member(_ run: String, _ flags: [String] = []) throws -> String {
        let result = try backprop(["train"] + Self.data + ["--layers", "784,24,10", "--epochs", "2", "--run-dir", run, "--quiet"] + flags)
        try #require(result.status == 0, "\(result.standardError)")
        return path("\(run)/model.h5")
    }

    /// A teacher of two members (of two widths) at `teacher.h5`.
    func teacher() throws -> String {
        let members = [try member("m1"), try member("m2", ["--layers", "784,32,10", "--learning-rate", "0.1"])]
        let result = try backprop(["ensemble", "--checkpoints"] + members + ["--output", path("teacher.h5")])
        try #require(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("validation") && result.standardOutput.contains("test"), "\(result.standardOutput)")
        return path("teacher.h5")
    }

    func parameters(_ file: String) throws -> [UInt32] { try Checkpoint.load(from: path(file)).network.parameters.map(\.bitPattern) }

    @Test("the teacher is the members' mean over /train; a distilled run has the same bits on 1 and 2 workers, records its teacher, and resumes without naming it to the same bits")
    func distil() throws {
        let teacherPath = try teacher()
        let teacher = try TeacherFile.read(teacherPath)
        let (train, _) = try DatasetFile.load(CLITests.sample)
        #expect(teacher.count == train.count && teacher.classes == 10 && teacher.dataFingerprint == train.fingerprint)
        // p̄ = (p_1 + p_2)/2, as each member predicts.
        let members = try ["m1", "m2"].map { try Checkpoint.load(from: path("\($0)/model.h5")).network }
        let inputs = train.prefix(5).arrays(outputCount: 10, as: Float.self).inputs
        let (p1, p2) = (members[0].predict(inputs: inputs), members[1].predict(inputs: inputs))
        #expect(zip(teacher.probabilities.prefix(50), zip(p1, p2)).allSatisfy { $0 == ($1.0 + $1.1) * 0.5 })

        let distil = ["--teacher", teacherPath, "--distill-alpha", "0.8", "--temperature", "3"]
        for workers in ["1", "2"] {
            let result = try backprop(["train"] + Self.student + distil + ["--workers", workers, "--run-dir", "s\(workers)"])
            try #require(result.status == 0, "\(result.standardError)")
        }
        #expect(try parameters("s1/model.h5") == parameters("s2/model.h5"))
        let plain = try backprop(["train"] + Self.student + ["--run-dir", "plain"])
        try #require(plain.status == 0, "\(plain.standardError)")
        #expect(try parameters("plain/model.h5") != parameters("s1/model.h5"), "the teacher changes the run")
        #expect(try Checkpoint.load(from: path("s1/model.h5")).teacherPath == teacherPath)
        let config = try String(contentsOfFile: path("s1/config.json"), encoding: .utf8)
        #expect(config.contains("\"teacher\"") && config.contains("\"distill-alpha\"") && config.contains("\"temperature\""), "\(config)")

        // Stopped after 1 epoch, resumed without --teacher: the checkpoint names it.
        let first = try backprop(["train"] + Self.student + distil + ["--run-dir", "r", "--steps", "8"])
        try #require(first.status == 0, "\(first.standardError)")
        let resumed = try backprop(["train", "--resume", "r", "--override", "--steps", "24"])
        try #require(resumed.status == 0, "\(resumed.standardError)")
        #expect(try parameters("r/model.h5") == parameters("s1/model.h5"))
        // config.json runs it again, teacher and all.
        let again = try backprop(["train", "--config", path("s1/config.json"), "--run-dir", "again"])
        try #require(again.status == 0, "\(again.standardError)")
        #expect(try parameters("again/model.h5") == parameters("s1/model.h5"))
    }

    /// `good` with views of --augment flip: the stored probabilities for each unmirrored image, `mirrored` for each mirrored one.
    func flipViews(_ good: TeacherFile, mirrored: [Float]) -> TeacherFile {
        let k = good.classes
        var views: [Float] = []
        for n in 0..<good.count {
            views += good.probabilities[(n * k)..<((n + 1) * k)]
            views += mirrored[(n * k)..<((n + 1) * k)]
        }
        return TeacherFile(probabilities: good.probabilities, count: good.count, classes: k, dataFingerprint: good.dataFingerprint,
                           trainedOn: good.trainedOn, members: good.members, views: Augmentation(flip: true), viewProbabilities: views)
    }

    @Test("a teacher of views (--augment flip): read back whole, taught by view with the same bits on 1 and 2 workers and across a resume; views equal to the stored probabilities give the plain teacher's bits; an augmentation beyond the views is refused by name")
    func views() throws {
        let good = try TeacherFile.read(try teacher())
        // Another distribution for each mirrored image: the rows in reverse order.
        let k = good.classes
        var reversed: [Float] = []
        for n in (0..<good.count).reversed() { reversed += good.probabilities[(n * k)..<((n + 1) * k)] }
        try flipViews(good, mirrored: reversed).write(to: path("views.h5"))
        try flipViews(good, mirrored: good.probabilities).write(to: path("same-views.h5"))
        #expect(try TeacherFile.read(path("views.h5")) == flipViews(good, mirrored: reversed))
        let inspected = try backprop(["inspect", path("views.h5")])
        #expect(inspected.status == 0 && inspected.standardOutput.contains("with the 2 views of --augment flip"), "\(inspected.standardOutput)")

        func student(_ teacher: String, _ run: String, _ flags: [String] = []) throws {
            let result = try backprop(["train"] + Self.student + ["--teacher", path(teacher), "--distill-alpha", "0.8", "--augment", "flip",
                                                                  "--run-dir", run] + flags)
            try #require(result.status == 0, "\(result.standardError)")
        }
        try student("views.h5", "v1")
        try student("views.h5", "v2", ["--workers", "2"])
        #expect(try parameters("v1/model.h5") == parameters("v2/model.h5"))
        try student("views.h5", "r", ["--steps", "8"])
        let resumed = try backprop(["train", "--resume", "r", "--override", "--steps", "24"])
        try #require(resumed.status == 0, "\(resumed.standardError)")
        #expect(try parameters("r/model.h5") == parameters("v1/model.h5"))
        try student("same-views.h5", "same")
        try student("teacher.h5", "plain")
        #expect(try parameters("same/model.h5") == parameters("plain/model.h5"), "the mirrored views taught as the stored images")
        #expect(try parameters("v1/model.h5") != parameters("plain/model.h5"), "the mirrored views taught")
        try expectRefusal(["train"] + Self.student + ["--teacher", path("views.h5"), "--distill-alpha", "0.8", "--augment", "shift=1,flip",
                                                      "--run-dir", "refused"], mentions: ["--augment shift=1,flip", "views of flip"])
    }

    @Test("the distillation flags go together and stay in their domains, refused by name before anything is written", arguments: [
        (["--distill-alpha", "0.5"], ["--distill-alpha", "--teacher"]),
        (["--temperature", "2"], ["--temperature"]),
        (["--teacher", "TEACHER"], ["--teacher", "--distill-alpha"]),
        (["--teacher", "TEACHER", "--distill-alpha", "0"], ["--distill-alpha", "(0, 1]"]),
        (["--teacher", "TEACHER", "--distill-alpha", "1.5"], ["--distill-alpha", "(0, 1]"]),
        (["--teacher", "TEACHER", "--distill-alpha", "nan"], ["--distill-alpha"]),
        (["--teacher", "TEACHER", "--distill-alpha", "0.5", "--temperature", "0"], ["--temperature", "> 0"]),
        (["--teacher", "TEACHER", "--distill-alpha", "0.5", "--temperature", "inf"], ["--temperature", "> 0"]),
        (["--teacher", "TEACHER", "--distill-alpha", "0.5", "--loss", "sum-of-squares", "--output-activation", "sigmoid"], ["--distill-alpha", "cross-entropy"]),
    ])
    func flags(_ flags: [String], _ fragments: [String]) throws {
        let teacher = flags.contains("TEACHER") ? try self.teacher() : ""
        try expectRefusal(["train"] + Self.student + flags.map { $0 == "TEACHER" ? teacher : $0 } + ["--run-dir", "refused"], mentions: fragments)
    }

    /// The ways a teacher file can be wrong, each written over a good teacher's parts.
    static let damagedTeachers: [(name: String, fragments: [String])] = [
        ("not-a-distribution", ["/predictions/outputs", "row 3 sums to"]),
        ("nan", ["/predictions/outputs", "row 0", "not a probability"]),
        ("negative", ["/predictions/outputs", "row 2", "not a probability"]),
        ("other-data", ["--teacher", "other rows than /train"]),
        ("other-split", ["--teacher", "members trained on other rows"]),
        ("other-classes", ["teacher", "9", "10 outputs"]),
        ("split-test", ["attribute 'split' of /", "\"test\""]),
        ("members-not-json", ["attribute 'members' of /"]),
        ("no-fingerprint", ["attribute 'data_fingerprint' of /", "backprop ensemble"]),
        ("rank-one", ["/predictions/outputs", "dimension"]),
        ("views-no-augment", ["/predictions/views", "no attribute 'augment'"]),
        ("views-bad-augment", ["attribute 'augment' of /predictions/views", "\"rotate\""]),
        ("views-miscounted", ["/predictions/views", "the 18 views of shift=1,flip"]),
        ("views-not-a-distribution", ["/predictions/views", "row 4, view 1 sums to"]),
        ("predict-output", ["attribute 'split' of /", "backprop ensemble"]),
        ("not-hdf5", ["not-hdf5.h5", "not an HDF5 file"]),
        ("missing", ["missing.h5", "no such file"]),
    ]

    @Test("a damaged or foreign teacher file is refused in one line naming the file, the object and the problem, and nothing is written",
          arguments: damagedTeachers.map(\.name))
    func damagedTeacher(_ name: String) throws {
        let good = try TeacherFile.read(try teacher())
        let file = path("\(name).h5")
        func write(_ teacher: TeacherFile) throws { try teacher.write(to: file) }
        func raw(_ build: (HDF5File) throws(StorageError) -> Void) throws { try HDF5File.createAtomically(file, build) }
        var bad = good
        switch name {
        case "not-a-distribution": bad.probabilities[30..<40] = ArraySlice(repeating: 0.05, count: 10); try write(bad)
        case "nan": bad.probabilities[3] = .nan; try write(bad)
        case "negative": bad.probabilities[21] = -0.1; try write(bad)
        case "other-data": bad.dataFingerprint = "1000x784 other"; try write(bad)
        case "other-split": bad.trainedOn = "800x784 another split"; try write(bad)
        case "other-classes":
            bad = TeacherFile(probabilities: [Float](repeating: 1.0 / 9, count: good.count * 9), count: good.count, classes: 9,
                              dataFingerprint: good.dataFingerprint, trainedOn: good.trainedOn, members: good.members)
            try write(bad)
        case "split-test", "members-not-json", "no-fingerprint":
            try raw { file throws(StorageError) in
                try file.setAttribute("format", "backprop-predictions")
                try file.setAttribute("split", name == "split-test" ? "test" : "train")
                if name != "no-fingerprint" { try file.setAttribute("data_fingerprint", good.dataFingerprint) }
                try file.setAttribute("trained_on", good.trainedOn)
                try file.setAttribute("members", name == "members-not-json" ? "m1.h5, m2.h5" : "[\"m1.h5\"]")
                try file.write(good.probabilities, shape: [good.count, 10], to: "/predictions/outputs")
            }
        case "rank-one":
            try raw { file throws(StorageError) in
                for (key, value) in [("format", "backprop-predictions"), ("split", "train"), ("data_fingerprint", good.dataFingerprint),
                                     ("trained_on", good.trainedOn), ("members", "[\"m1.h5\"]")] {
                    try file.setAttribute(key, value)
                }
                try file.write(good.probabilities, shape: [good.probabilities.count], to: "/predictions/outputs")
            }
        case "views-no-augment", "views-bad-augment", "views-miscounted", "views-not-a-distribution":
            var views = flipViews(good, mirrored: good.probabilities).viewProbabilities!
            if name == "views-not-a-distribution" { views[(4 * 2 + 1) * 10] += 0.5 }
            try raw { file throws(StorageError) in
                for (key, value) in [("format", "backprop-predictions"), ("split", "train"), ("data_fingerprint", good.dataFingerprint),
                                     ("trained_on", good.trainedOn), ("members", "[\"m1.h5\"]")] {
                    try file.setAttribute(key, value)
                }
                try file.write(good.probabilities, shape: [good.count, 10], to: "/predictions/outputs")
                try file.write(views, shape: [good.count, 2, 10], to: "/predictions/views")
                let augment = ["views-bad-augment": "rotate", "views-miscounted": "shift=1,flip"][name] ?? "flip"
                if name != "views-no-augment" { try file.setAttribute("augment", augment, on: "/predictions/views") }
            }
        case "predict-output":
            let result = try backprop(["predict", "--checkpoint", path("m1/model.h5"), "--input", CLITests.sample, "--split", "train",
                                       "--output", file])
            try #require(result.status == 0, "\(result.standardError)")
        case "not-hdf5": try Data("epoch,loss\n1,0.5\n".utf8).write(to: URL(fileURLWithPath: file))
        default: break
        }
        let fragments = Self.damagedTeachers.first { $0.name == name }!.fragments
        try expectRefusal(["train"] + Self.student + ["--teacher", file, "--distill-alpha", "0.5", "--run-dir", "refused"], mentions: fragments)
        // `inspect` judges the file alone: one made for other rows or classes is a whole teacher, the rest are not, in the reader's words.
        guard !["not-hdf5", "missing"].contains(name) else { return }
        let inspected = try backprop(["inspect", file])
        if ["other-data", "other-split", "other-classes"].contains(name) {
            #expect(inspected.status == 0 && inspected.standardOutput.contains("valid: teacher of 1000 rows of /train"), "\(inspected.standardOutput)")
        } else {
            let verdict = inspected.standardOutput.split(separator: "\n").last.map(String.init) ?? ""
            #expect(inspected.status == 1 && verdict.hasPrefix("invalid: \(file)") && verdict.contains(fragments[0]), "\(inspected.standardOutput)")
        }
    }

    @Test("a refit: members trained on a stored split teach their training rows followed by their validation rows, and a student with no validation split distils from them with the same bits on 1 and 2 workers; the rows in another order, or a validation split, are refused by name")
    func refit() throws {
        // The committed sample's /train is the refit of rows 0..<800 with rows 800..<1000 as their validation split.
        let (train, test) = try DatasetFile.load(CLITests.sample)
        try DatasetFile.write(train: train.subset(0..<800), validation: train.subset(800..<1000), test: test, attributes: [:], to: path("split.h5"))
        try DatasetFile.write(train: train.subset(Array(800..<1000) + Array(0..<800)), test: test, attributes: [:], to: path("swapped.h5"))
        var members: [String] = []
        for (run, width) in [("r1", "24"), ("r2", "32")] {
            let result = try backprop(["train", "--data", path("split.h5"), "--layers", "784,\(width),10", "--epochs", "2", "--run-dir", run, "--quiet"])
            try #require(result.status == 0, "\(result.standardError)")
            members.append(path("\(run)/model.h5"))
        }
        // `rechunk --refit` makes the refit of a stored split: here, the sample's /train again; a file without /validation is refused.
        let refitted = try backprop(["rechunk", "--refit", path("split.h5"), "--output", path("refit.h5")])
        try #require(refitted.status == 0, "\(refitted.standardError)")
        let refit = try DatasetFile.load(path("refit.h5"))
        #expect(refit.train.fingerprint == train.fingerprint && refit.test.fingerprint == test.fingerprint)
        #expect(try DatasetFile.validation(of: HDF5File.open(path("refit.h5"))) == nil)
        try expectRefusal(["rechunk", "--refit", path("refit.h5"), "--output", path("refit2.h5")], mentions: ["--refit", "refit.h5", "no /validation"])
        let recorded = try Checkpoint.load(from: members[0]).dataFingerprint
        #expect(recorded.contains("800x784") && recorded.contains("; validation 200x784"), "\(recorded)")
        let made = try backprop(["ensemble", "--checkpoints"] + members + ["--data", CLITests.sample, "--output", path("refit-teacher.h5")])
        try #require(made.status == 0, "\(made.standardError)")
        #expect(made.standardOutput.contains("a refit"), "\(made.standardOutput)")
        let teacher = try TeacherFile.read(path("refit-teacher.h5"))
        #expect(teacher.count == 1000 && teacher.dataFingerprint == train.fingerprint && teacher.trainedOn == recorded)

        let student = ["train", "--data", CLITests.sample, "--layers", "784,16,10", "--epochs", "3", "--batch-size", "100",
                       "--teacher", path("refit-teacher.h5"), "--distill-alpha", "0.8"]
        for workers in ["1", "2"] {
            let result = try backprop(student + ["--workers", workers, "--run-dir", "s\(workers)"])
            try #require(result.status == 0, "\(result.standardError)")
        }
        #expect(try parameters("s1/model.h5") == parameters("s2/model.h5"))

        // Refused: a validation split of the refit's rows (they taught the members), and rows in another order, by ensemble and by train.
        try expectRefusal(student + ["--validation-fraction", "0.2", "--run-dir", "refused"], mentions: ["--teacher", "members trained on other rows", "refit"])
        try expectRefusal(["ensemble", "--checkpoints"] + members + ["--data", path("swapped.h5"), "--output", path("refused.h5")],
                          mentions: ["--checkpoints", "was not trained on", "swapped.h5", "refit"])
        let (swapped, _) = try DatasetFile.load(path("swapped.h5"))
        let order = Array(800..<1000) + Array(0..<800)
        let reordered = TeacherFile(probabilities: order.flatMap { teacher.probabilities[($0 * 10)..<($0 * 10 + 10)] }, count: 1000, classes: 10,
                                    dataFingerprint: swapped.fingerprint, trainedOn: recorded, members: teacher.members)
        try reordered.write(to: path("swapped-teacher.h5"))
        try expectRefusal(["train", "--data", path("swapped.h5"), "--layers", "784,16,10", "--epochs", "1", "--teacher", path("swapped-teacher.h5"),
                           "--distill-alpha", "0.8", "--run-dir", "refused"], mentions: ["--teacher", "members trained on other rows", "refit"])
    }

    @Test("ensemble refuses members of other splits or losses, a member twice, and an output that is not HDF5 or would overwrite an input", arguments: [
        "other-split", "sum-of-squares", "twice", "csv-output", "overwrite-data", "other-data",
    ])
    func ensembleRefusals(_ name: String) throws {
        let m1 = try member("m1")
        var arguments = ["ensemble", "--checkpoints", m1], fragments: [String]
        switch name {
        case "other-split":
            arguments += [try member("m2", ["--validation-fraction", "0.3"]), "--output", path("t.h5")]
            fragments = ["m2/model.h5", "other rows than", "m1/model.h5"]
        case "sum-of-squares":
            arguments += [try member("m2", ["--loss", "sum-of-squares", "--output-activation", "sigmoid"]), "--output", path("t.h5")]
            fragments = ["m2/model.h5", "softmax classifier"]
        case "twice": (arguments, fragments) = (arguments + [m1, "--output", path("t.h5")], ["--checkpoints", "twice"])
        case "csv-output": (arguments, fragments) = (arguments + ["--output", path("t.csv")], ["--output", ".h5"])
        case "overwrite-data": (arguments, fragments) = (arguments + ["--output", CLITests.sample], ["--output"])
        default:
            let other = path("other.h5")
            let (train, test) = try DatasetFile.load(CLITests.sample)
            try DatasetFile.write(train: train.prefix(900), test: test, attributes: ["source": "test"], to: other)
            (arguments, fragments) = (arguments + ["--data", other, "--output", path("t.h5")], ["m1/model.h5", "was not trained on", other])
        }
        try expectRefusal(arguments, mentions: fragments)
    }
}

/// Issue 54, class 6: a resume whose inputs changed names the one that changed.
struct ChangedInputTests {
    let directory = temporaryDirectory("changed-input")
    let executable = backpropExecutable()

    func backprop(_ arguments: [String]) throws -> ProcessResult { try run(executable, arguments, in: directory) }

    @Test("another teacher is named as the teacher, other data as the dataset; each in one line, with both fingerprints")
    func namesTheInput() throws {
        try FileManager.default.copyItem(atPath: CLITests.sample, toPath: "\(directory)/data.h5")
        let model = ["--data", "data.h5", "--layers", "784,16,10", "--batch-size", "100", "--quiet"]
        for (run, seed) in [("m1", "1"), ("m2", "2")] {
            let member = try backprop(["train"] + model + ["--epochs", "2", "--seed", seed, "--run-dir", run])
            try #require(member.status == 0, "\(member.standardError)")
        }
        #expect(try backprop(["ensemble", "--checkpoints", "m1/model.h5", "--output", "teacher.h5"]).status == 0)
        let student = try backprop(["train"] + model + ["--epochs", "2", "--teacher", "teacher.h5", "--distill-alpha", "0.5", "--run-dir", "s"])
        try #require(student.status == 0, "\(student.standardError)")
        let checkpoint = try Checkpoint.load(from: "\(directory)/s/model.h5")
        #expect(checkpoint.teacherFingerprint?.hasPrefix("teacher 1000x1x10 fnv1a64 ") == true, "\(String(describing: checkpoint.teacherFingerprint))")
        // The teacher file replaced by another's probabilities.
        #expect(try backprop(["ensemble", "--checkpoints", "m2/model.h5", "--output", "teacher2.h5"]).status == 0)
        try FileManager.default.removeItem(atPath: "\(directory)/teacher.h5")
        try FileManager.default.moveItem(atPath: "\(directory)/teacher2.h5", toPath: "\(directory)/teacher.h5")
        let teacherChanged = try backprop(["train", "--resume", "s/checkpoint-00000010.h5", "--run-dir", "t"])
        #expect(teacherChanged.status != 0 && teacherChanged.standardError.split(separator: "\n").count == 1
                && teacherChanged.standardError.contains("teacher teacher.h5 is not the teacher") && !teacherChanged.standardError.contains("dataset"),
                "\(teacherChanged.standardError)")
        // The data changed (one byte of /train/x) under a run without a teacher.
        let edit = try run("/usr/bin/python3", ["-c", "import h5py; f = h5py.File('data.h5', 'r+'); x = f['train/x']; x[0, 0] = (int(x[0, 0]) + 1) % 256"],
                           in: directory)
        try #require(edit.status == 0, "\(edit.standardError)")
        let dataChanged = try backprop(["train", "--resume", "m1/checkpoint-00000010.h5", "--run-dir", "u"])
        #expect(dataChanged.status != 0 && dataChanged.standardError.contains("dataset data.h5 is not the data"), "\(dataChanged.standardError)")
    }
}
