import ArgumentParser
import BackpropCore
import BackpropHDF5

/// `backprop inspect`: what a dataset or checkpoint holds, and whether it
/// validates.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the objects, shapes, types and attributes of a dataset, checkpoint or teacher, and whether it validates.",
        discussion: "Links are named, never followed; only headers and attributes are read before validation. "
            + "A predictions file is validated as a teacher (train --teacher). "
            + "The exit status is 0 when the file validates and 1 when it does not.")

    @Argument(help: "A dataset, checkpoint or teacher file (HDF5).")
    var file: String

    func run() throws {
        // Probe in a child first: listing and validating touch every header.
        try probeInChild(file) {
            guard let h5 = try? HDF5File.open(file) else { return }
            _ = try? h5.contents()
            switch try? h5.stringAttribute("format") {
            case Checkpoint.format: _ = try? Checkpoint.load(from: h5)
            case TeacherFile.format: _ = try? TeacherFile.read(from: h5)
            default: _ = try? DatasetFile.load(h5)
            }
        }
        let h5 = try HDF5File.open(file)
        let format = (try? h5.stringAttribute("format")) ?? "(no format attribute)"
        print("\(file): \(format)")
        for entry in try h5.contents() {
            print("  \(entry.name)  \(entry.description)")
            for (name, value) in entry.attributes { print("      @\(name) = \(value)") }
        }
        do {
            if format == Checkpoint.format {
                let checkpoint = try Checkpoint.load(from: h5)
                print("valid: checkpoint format version \(Checkpoint.formatVersion), model "
                      + checkpoint.network.sizes.map(String.init).joined(separator: "-")
                      + " (\(checkpoint.network.parameterCount) parameters), \(checkpoint.optimizerKind.rawValue), "
                      + "epoch \(checkpoint.position.epoch), batch \(checkpoint.position.batch), step \(checkpoint.position.step)")
            } else if format == TeacherFile.format {
                let teacher = try TeacherFile.read(from: h5)
                print("valid: teacher of \(teacher.count) rows of /train × \(teacher.classes) classes, the mean of "
                      + "\(teacher.members.count) member\(teacher.members.count == 1 ? "" : "s"), trained on \(teacher.trainedOn)"
                      + (teacher.views.isActive ? "; with the \(teacher.views.viewCount) views of --augment \(teacher.views)" : ""))
            } else {
                let (train, test) = try DatasetFile.load(h5)
                let validation = try DatasetFile.validation(of: h5)
                let names = try DatasetFile.classNames(of: h5)
                let storage = if case .bytes = train.features { "bytes" } else { "float32" }
                print("valid: dataset of \(train.count) train\(ValidationHoldOut.shown(validation)) and \(test.count) test samples, \(train.featureCount) features "
                      + "(\(storage)\(train.imageShape.map { ", images \($0)" } ?? "")), \(train.targets)" + (names.map { ", named \($0.joined(separator: ", "))" } ?? ""))
            }
        } catch {
            print("invalid: \(error.description)")
            throw ExitCode.failure
        }
    }
}
