import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// `backprop teach`: a teacher file from another trainer's NumPy arrays,
/// with the fingerprints and the views' order Backprop owns.
extension DistillationCLITests {
    /// Writes `values` as a float32 .npy of `shape` (format 1.0, little-endian, C order).
    func writeNPY(_ values: [Float], shape: [Int], to name: String) throws {
        let dimensions = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(dimensions), }"
        header += String(repeating: " ", count: 63 - (10 + header.utf8.count) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        bytes += Array(header.utf8)
        for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
        try Data(bytes).write(to: URL(fileURLWithPath: path(name)))
    }

    /// `count` rows of `classes` probabilities (each row a distribution), drawn from `seed`.
    static func distributions(_ count: Int, _ classes: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).flatMap { _ -> [Float] in
            let raw = (0..<classes).map { _ in Float(generator.nextUnitDouble()) + 0.01 }
            let sum = raw.reduce(0, +)
            return raw.map { $0 / sum }
        }
    }

    @Test("teach writes the teacher another trainer's arrays stand for: the probabilities and views as given, /train's fingerprint, the run's rows; a student distils from it; --view-order is Augmentation.viewIndex's order")
    func teach() throws {
        let run = try member("split", ["--epochs", "0"])
        let rows = try DatasetFile.load(CLITests.sample).train.count
        let augment = Augmentation(shift: 1, flip: true)
        let (p, v) = (Self.distributions(rows, 10, seed: 1), Self.distributions(rows * augment.viewCount, 10, seed: 2))
        try writeNPY(p, shape: [rows, 10], to: "p.npy")
        try writeNPY(v, shape: [rows, augment.viewCount, 10], to: "v.npy")
        let taught = try backprop(["teach", "--data", CLITests.sample, "--trained-on", run, "--probabilities", "p.npy", "--views", "v.npy",
                                   "--augment", "shift=1,flip", "--output", "t.h5"])
        try #require(taught.status == 0, "\(taught.standardError)")
        let teacher = try TeacherFile.read(path("t.h5"))
        #expect(teacher.probabilities == p && teacher.viewProbabilities == v && teacher.views == augment)
        #expect(teacher.dataFingerprint == (try DatasetFile.load(CLITests.sample).train.fingerprint))
        #expect(teacher.trainedOn == (try Checkpoint.load(from: run).dataFingerprint) && teacher.members == ["p.npy", "v.npy"])
        let student = try backprop(["train"] + Self.student + ["--teacher", "t.h5", "--distill-alpha", "0.5", "--augment", "shift=1,flip",
                                                                "--run-dir", "student", "--quiet"])
        #expect(student.status == 0, "\(student.standardError)")
        let named = try backprop(["teach", "--data", CLITests.sample, "--trained-on", run, "--probabilities", "p.npy", "--output", "n.h5",
                                  "--member", "a CNN, seed 0", "--member", "a CNN, seed 1"])
        try #require(named.status == 0, "\(named.standardError)")
        #expect(try TeacherFile.read(path("n.h5")).members == ["a CNN, seed 0", "a CNN, seed 1"])

        let order = try backprop(["teach", "--view-order", "shift=2,flip"])
        let lines = order.standardOutput.split(separator: "\n")
        #expect(order.status == 0 && lines.first == "index,dy,dx,mirrored" && lines.count == 1 + Augmentation(shift: 2, flip: true).viewCount)
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",").map { Int($0)! }
            #expect(Augmentation(shift: 2, flip: true).viewIndex(dy: fields[1], dx: fields[2], mirrored: fields[3] == 1) == fields[0], "\(line)")
        }
    }

    @Test("teach refuses arrays of the wrong shape, rows that are not distributions, views without their augmentation, a model without its run, and a bad output, by name, writing nothing",
          arguments: ["short", "fewer-classes", "not-distribution", "views-without-augment", "augment-without-views", "views-shape", "views-not-distribution",
                      "model-only", "missing-data", "not-h5", "overwrites"])
    func teachRefusals(_ name: String) throws {
        let run = try member("split", ["--epochs", "0"])
        let rows = try DatasetFile.load(CLITests.sample).train.count
        let good = Self.distributions(rows, 10, seed: 1)
        try writeNPY(good, shape: [rows, 10], to: "p.npy")
        try writeNPY(Self.distributions(rows * 9, 10, seed: 2), shape: [rows, 9, 10], to: "v.npy")
        let base = ["teach", "--data", CLITests.sample, "--trained-on", run, "--probabilities", "p.npy", "--output", "t.h5"]
        switch name {
        case "short":
            try writeNPY(Array(good.prefix(10 * (rows - 1))), shape: [rows - 1, 10], to: "short.npy")
            try expectRefusal(["teach", "--data", CLITests.sample, "--trained-on", run, "--probabilities", "short.npy", "--output", "t.h5"],
                              mentions: ["--probabilities", "short.npy", "\(rows - 1) × 10", "\(rows) rows"])
        case "fewer-classes":
            // A teacher of 9 classes for labels 0 … 9 is refused as such, by teach and by train (no advice to follow in a loop).
            try writeNPY(Self.distributions(rows, 9, seed: 4), shape: [rows, 9], to: "nine.npy")
            try expectRefusal(["teach", "--data", CLITests.sample, "--trained-on", run, "--probabilities", "nine.npy", "--output", "t.h5"],
                              mentions: ["--probabilities", "nine.npy", "9 classes", "10 classes"])
            let data = try DatasetFile.load(CLITests.sample).train
            try TeacherFile(probabilities: Self.distributions(rows, 9, seed: 4), count: rows, classes: 9, dataFingerprint: data.fingerprint,
                            trainedOn: try Checkpoint.load(from: run).dataFingerprint, members: ["nine"]).write(to: path("nine.h5"))
            try expectRefusal(["train"] + Self.student + ["--teacher", "nine.h5", "--distill-alpha", "0.5", "--run-dir", "s"],
                              mentions: ["--teacher", "nine.h5", "9 classes", "10 classes"])
        case "not-distribution":
            try writeNPY(good.map { $0 * 2 }, shape: [rows, 10], to: "double.npy")
            try expectRefusal(["teach", "--data", CLITests.sample, "--trained-on", run, "--probabilities", "double.npy", "--output", "t.h5"],
                              mentions: ["double.npy", "row 0", "not a distribution"])
        case "views-without-augment":
            try expectRefusal(base + ["--views", "v.npy"], mentions: ["--views needs --augment"])
        case "augment-without-views":
            try expectRefusal(base + ["--augment", "shift=1"], mentions: ["--augment", "--views"])
        case "views-shape":
            try expectRefusal(base + ["--views", "v.npy", "--augment", "shift=1,flip"], mentions: ["--views", "v.npy", "18 views", "\(rows) × 18 × 10"])
        case "views-not-distribution":
            try writeNPY([Float](repeating: 0.5, count: rows * 9 * 10), shape: [rows, 9, 10], to: "flat.npy")
            try expectRefusal(base + ["--views", "flat.npy", "--augment", "shift=1"], mentions: ["flat.npy", "row 0, view 0", "not a distribution"])
        case "model-only":
            let model = try Checkpoint.load(from: run)
            try Checkpoint(model: model.network, configuration: model.configuration).save(to: path("alone.h5"))
            try expectRefusal(["teach", "--data", CLITests.sample, "--trained-on", "alone.h5", "--probabilities", "p.npy", "--output", "t.h5"],
                              mentions: ["--trained-on", "alone.h5", "without its run"])
        case "missing-data":
            try expectRefusal(["teach", "--trained-on", run, "--probabilities", "p.npy", "--output", "t.h5"], mentions: ["--data is missing"])
        case "not-h5":
            try expectRefusal(["teach", "--data", CLITests.sample, "--trained-on", run, "--probabilities", "p.npy", "--output", "t.npy"],
                              mentions: ["--output", "t.npy", ".h5"])
        default:
            try expectRefusal(["teach", "--data", CLITests.sample, "--trained-on", run, "--probabilities", "p.npy", "--output", run],
                              mentions: ["--output", "model.h5"])
        }
    }
}
