import ArgumentParser
import BackpropCore
import BackpropHDF5
import Foundation

/// `backprop teach`: a teacher file (`TeacherFile`) from another trainer's
/// class probabilities, handed over as NumPy arrays, so that a PyTorch or JAX
/// teacher needs to know nothing of the file's layout, its fingerprints or
/// the order of its views: Backprop writes all three.
struct Teach: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a teacher for train --teacher from another trainer's class probabilities (NumPy arrays).",
        discussion: """
        --probabilities is an .npy of N × K class probabilities, row n for row n of /train of --data; \
        --views (with --augment) an .npy of N × V × K, the probabilities of the V images the augmentation \
        can make of each row, in the order `backprop teach --view-order AUGMENT` prints. --trained-on is a \
        checkpoint of a Backprop run on the rows and validation split that trained the teacher (a run with \
        --epochs 0 will do): the student is then refused unless its own validation rows taught none of it. \
        Every row must be a distribution; the file is written atomically (docs/file-formats.md, "Teacher").
        """)

    @Option(help: "The class probabilities over /train: an .npy of N × K (float32 or float64).")
    var probabilities: String?
    @Option(help: "The probabilities of each row's views: an .npy of N × V × K, in --view-order's order (needs --augment).")
    var views: String?
    @Option(help: "The augmentation whose views --views holds, as train's --augment takes it (shift=1,flip).", transform: Augmentation.parsed)
    var augment: Augmentation?
    @Option(name: Settings.data.name, help: "The dataset whose /train the probabilities are for.")
    var data: String?
    @Option(help: "A checkpoint of a Backprop run on the rows and validation split that trained the teacher.")
    var trainedOn: String?
    @Option(help: "Where to write the teacher (FILE.h5).")
    var output: String?
    @Option(help: "What made the probabilities, recorded in the file's members (repeat for several; default: the .npy files).")
    var member: [String] = []
    @Option(help: "Print the order of the views of this augmentation (index,dy,dx,mirrored as CSV: the stored image mirrored left–right when mirrored, then moved dy rows down and dx columns right, zero-filled) and exit.",
            transform: Augmentation.parsed)
    var viewOrder: Augmentation?

    func validate() throws {
        if let viewOrder {
            guard viewOrder.isActive else { throw ValidationError("--view-order \(viewOrder): give shift=S, flip, or both.") }
            return
        }
        for (flag, value) in [("--probabilities", probabilities), ("--data", data), ("--trained-on", trainedOn), ("--output", output)] where value == nil {
            throw ValidationError("\(flag) is missing: a teacher needs --probabilities, --data, --trained-on and --output.")
        }
        guard output!.hasSuffix(".h5") else { throw ValidationError("--output \(output!) is invalid: a teacher is HDF5; end it in .h5.") }
        if (views == nil) != (augment == nil || augment?.isActive == false) {
            throw ValidationError(views == nil ? "--augment names the views of --views; give both or neither."
                                               : "--views needs --augment: which augmentation's views they are (e.g. shift=1,flip).")
        }
    }

    func run() throws {
        if let viewOrder { return print(Self.viewOrder(of: viewOrder), terminator: "") }
        let (data, output, trainedOnPath, probabilitiesPath) = (data!, output!, trainedOn!, probabilities!)
        let inputs = [data, trainedOnPath, probabilitiesPath] + (views.map { [$0] } ?? [])
        try refuseOverwritingInputs(output, flag: "--output", inputs: inputs)
        let trainedOn = try guardedRead(trainedOnPath) { try Checkpoint.load(from: trainedOnPath) }
        guard !trainedOn.isModelOnly else {
            throw ValidationError("--trained-on \(trainedOnPath): it holds a model without its run, which records no rows; give a run's checkpoint.")
        }
        let train = try guardedRead(data) { try DatasetFile.split("train", of: HDF5File.open(data)) }
        let p = try guardedRead(probabilitiesPath) { try NPYArray.read(probabilitiesPath) }
        guard p.shape.count == 2, p.shape[0] == train.count, (1...256).contains(p.shape[1]) else {
            throw ValidationError("--probabilities \(probabilitiesPath) is \(p.shape.map(String.init).joined(separator: " × ")); "
                                  + "/train of \(data) has \(train.count) rows, so give \(train.count) × K (K the classes, 1 … 256).")
        }
        let classes = p.shape[1]
        var viewProbabilities: [Float]?
        if let views, let augment {
            let v = try guardedRead(views) { try NPYArray.read(views) }
            guard v.shape == [train.count, augment.viewCount, classes] else {
                throw ValidationError("--views \(views) is \(v.shape.map(String.init).joined(separator: " × ")); the \(augment.viewCount) views of "
                                      + "\(augment) of \(train.count) rows of \(classes) classes are \(train.count) × \(augment.viewCount) × \(classes).")
            }
            viewProbabilities = v.values
        }
        let teacher = TeacherFile(probabilities: p.values, count: train.count, classes: classes, dataFingerprint: train.fingerprint,
                                  trainedOn: trainedOn.dataFingerprint,
                                  members: member.isEmpty ? [probabilitiesPath] + (views.map { [$0] } ?? []) : member,
                                  views: viewProbabilities == nil ? Augmentation() : augment!, viewProbabilities: viewProbabilities)
        try teacher.check(probabilitiesFrom: probabilitiesPath, viewsFrom: views)
        try RunSetup.checkClasses(of: teacher, flag: "--probabilities", path: probabilitiesPath, for: train, dataPath: data)
        try teacher.write(to: output)
        print("wrote \(output): the probabilities of \(classes) classes for the \(train.count) rows of /train of \(data)"
              + (viewProbabilities == nil ? "" : " and their \(augment!.viewCount) views (\(augment!))")
              + ", taught on the rows of \(trainedOnPath)")
    }

    /// The views of `augmentation` in a teacher's order, as CSV.
    static func viewOrder(of augmentation: Augmentation) -> String {
        var views = [(dy: Int, dx: Int, mirrored: Bool)?](repeating: nil, count: augmentation.viewCount)
        let s = augmentation.shift
        for mirrored in augmentation.flip ? [false, true] : [false] {
            for dy in -s...s {
                for dx in -s...s { views[augmentation.viewIndex(dy: dy, dx: dx, mirrored: mirrored)] = (dy, dx, mirrored) }
            }
        }
        return "index,dy,dx,mirrored\n" + views.enumerated().map { index, view in
            "\(index),\(view!.dy),\(view!.dx),\(view!.mirrored ? 1 : 0)\n"
        }.joined()
    }
}
