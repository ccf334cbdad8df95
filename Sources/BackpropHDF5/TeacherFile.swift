import BackpropCore
import BackpropIO
import Foundation

/// A teacher's class probabilities over a dataset's /train, which `train
/// --teacher` distils from (`Distillation`) and `backprop ensemble` writes:
/// the layout of `predict`'s HDF5 output (/predictions/outputs float32
/// [N, K], format "backprop-predictions") with what distillation checks
/// before it trusts them, as attributes of the root:
///
/// - `split`: "train", the split the rows are (aligned with it row by row);
/// - `data_fingerprint`: that split's `Dataset.fingerprint`;
/// - `trained_on`: the data fingerprint every member checkpoint records (its
///   training rows and its validation split), so that a student can require
///   that its own validation rows fed no member;
/// - `members`: the member checkpoints, a JSON list, in the order averaged.
///
/// Optionally /predictions/views float32 [N, V, K], with an attribute
/// `augment` in `--augment`'s form ("shift=1,flip"): the teacher's
/// probabilities of each of the V images that augmentation can make of a
/// row, in `Augmentation.viewIndex`'s order, so that a student augmenting
/// within them is taught about the image it sees (`Dataset.teacherViews`).
public struct TeacherFile: Sendable, Equatable {
    /// p, [count, classes] row-major: each row a distribution.
    public var probabilities: [Float]
    public var count: Int
    public var classes: Int
    public var dataFingerprint: String
    public var trainedOn: String
    public var members: [String]
    /// The augmentation whose views `viewProbabilities` holds (inactive: none).
    public var views: Augmentation
    /// p of every view, [count, views.viewCount, classes]; nil without views.
    public var viewProbabilities: [Float]?

    public init(probabilities: [Float], count: Int, classes: Int, dataFingerprint: String, trainedOn: String, members: [String],
                views: Augmentation = Augmentation(), viewProbabilities: [Float]? = nil) {
        precondition(probabilities.count == count * classes, "\(probabilities.count) probabilities for \(count) × \(classes)")
        precondition(views.isActive == (viewProbabilities != nil) && (viewProbabilities?.count ?? 0) == (views.isActive ? count * views.viewCount * classes : 0),
                     "views \(views) with \(viewProbabilities?.count ?? 0) probabilities")
        self.probabilities = probabilities
        self.count = count
        self.classes = classes
        self.dataFingerprint = dataFingerprint
        self.trainedOn = trainedOn
        self.members = members
        self.views = views
        self.viewProbabilities = viewProbabilities
    }

    /// What a student is taught: every view's probabilities where there are views, else the stored images'.
    public var taught: (probabilities: [Float], views: Augmentation) { (viewProbabilities ?? probabilities, views) }

    /// The most a row's probabilities may sum away from 1 (float32 averages of softmax rows are within 1e-6).
    public static let sumTolerance: Float = 1e-3

    /// The root's `format`: predict's and a teacher's alike.
    public static let format = "backprop-predictions"
    /// The probabilities (a teacher's) or outputs (predict's), [N, K].
    public static let outputs = "/predictions/outputs"
    /// The probabilities of every view, [N, V, K] (optional).
    public static let viewsPath = "/predictions/views"

    /// Writes the file atomically (`path` is never half-written).
    /// - Throws: `StorageError.io`, `.call`.
    public func write(to path: String) throws(StorageError) {
        let members = String(decoding: (try? JSONEncoder().encode(self.members)) ?? Data("[]".utf8), as: UTF8.self)
        try HDF5File.createAtomically(path) { (file) throws(StorageError) in
            try file.setAttribute("format", Self.format)
            try file.setAttribute("split", "train")
            try file.setAttribute("data_fingerprint", dataFingerprint)
            try file.setAttribute("trained_on", trainedOn)
            try file.setAttribute("members", members)
            try file.write(probabilities, shape: [count, classes], to: Self.outputs,
                           chunkRows: DatasetFile.storageChunkRows(rowBytes: 4 * classes, rows: count))
            if let viewProbabilities {
                try file.write(viewProbabilities, shape: [count, views.viewCount, classes], to: Self.viewsPath,
                               chunkRows: DatasetFile.storageChunkRows(rowBytes: 4 * views.viewCount * classes, rows: count))
                try file.setAttribute("augment", views.description, on: Self.viewsPath)
            }
        }
    }

    /// Reads and checks a teacher file: its format and attributes, then
    /// /predictions/outputs (rank 2, 1 … 256 classes, every value a
    /// probability and every row summing to 1 within `sumTolerance`).
    /// - Throws: `StorageError` naming the file, the object and what is wrong.
    public static func read(_ path: String) throws(StorageError) -> TeacherFile {
        try read(from: HDF5File.open(path))
    }

    /// Reads and checks a teacher file already open (a path or a memory image), as `read(_:)` does.
    public static func read(from file: HDF5File) throws(StorageError) -> TeacherFile {
        let path = file.path
        let format = try file.hasAttribute("format") ? try file.stringAttribute("format") : "HDF5 without a format attribute"
        guard format == Self.format else { throw .wrongFormat(path: path, found: format, expected: Self.format) }
        for name in ["split", "data_fingerprint", "trained_on", "members"] where try !file.hasAttribute(name) {
            throw .invalidContent(path: path, object: "attribute '\(name)' of /", reason: "is missing: a teacher is made by `backprop ensemble` "
                                  + "(which records what it was computed on), not by `backprop predict`")
        }
        let split = try file.stringAttribute("split")
        guard split == "train" else {
            throw .invalidContent(path: path, object: "attribute 'split' of /", reason: "is \"\(split)\": a teacher predicts /train, which a student trains on")
        }
        let membersText = try file.stringAttribute("members")
        guard let members = try? JSONDecoder().decode([String].self, from: Data(membersText.utf8)), !members.isEmpty else {
            throw .invalidContent(path: path, object: "attribute 'members' of /", reason: "is not a JSON list of checkpoint paths")
        }
        let (values, shape) = try file.read(outputs, as: Float.self, rank: 2)
        let (count, classes) = (shape[0], shape[1])
        guard count >= 1, (1...256).contains(classes) else {
            throw .invalidContent(path: path, object: outputs, reason: "is \(count) × \(classes); a teacher has at least one row of 1 … 256 classes")
        }
        try checkDistributions(values, classes: classes, path: path, object: outputs) { "row \($0)" }
        var (views, viewProbabilities) = (Augmentation(), [Float]?.none)
        if try file.exists(viewsPath) {
            guard try file.hasAttribute("augment", of: viewsPath) else {
                throw .invalidContent(path: path, object: viewsPath, reason: "has no attribute 'augment' saying which augmentation's views it holds (e.g. \"shift=1,flip\")")
            }
            let text = try file.stringAttribute("augment", of: viewsPath)
            guard let augment = Augmentation(parsing: text), augment.isActive, augment.shift <= 64 else {
                throw .invalidContent(path: path, object: "attribute 'augment' of \(viewsPath)",
                                      reason: "is \"\(text)\", not an augmentation of shift=S (1 … 64), flip, or both, as --augment takes")
            }
            let (all, shape) = try file.read(viewsPath, as: Float.self, rank: 3)
            guard shape == [count, augment.viewCount, classes] else {
                throw .invalidContent(path: path, object: viewsPath, reason: "is \(shape.map(String.init).joined(separator: " × ")); the \(augment.viewCount) views "
                                      + "of \(augment) of \(count) rows of \(classes) classes are \(count) × \(augment.viewCount) × \(classes)")
            }
            try checkDistributions(all, classes: classes, path: path, object: viewsPath) { "row \($0 / augment.viewCount), view \($0 % augment.viewCount)" }
            (views, viewProbabilities) = (augment, all)
        }
        return TeacherFile(probabilities: values, count: count, classes: classes,
                           dataFingerprint: try file.stringAttribute("data_fingerprint"),
                           trainedOn: try file.stringAttribute("trained_on"), members: members,
                           views: views, viewProbabilities: viewProbabilities)
    }

    /// Every run of `classes` values a distribution: each a probability, summing to 1 within `sumTolerance`.
    /// - Throws: `StorageError.invalidContent` naming the row (as `name` calls the run's index) and the value.
    private static func checkDistributions(_ values: [Float], classes: Int, path: String, object: String,
                                           name: (Int) -> String) throws(StorageError) {
        for n in 0..<(values.count / classes) {
            let row = values[(n * classes)..<((n + 1) * classes)]
            if let k = row.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) {
                throw .invalidContent(path: path, object: object, reason: "\(name(n)) holds \(values[k]) at class \(k - n * classes), which is not a probability")
            }
            let sum = row.reduce(0, +)
            guard abs(sum - 1) <= sumTolerance else {
                throw .invalidContent(path: path, object: object, reason: "\(name(n)) sums to \(sum), not 1: its values are not a distribution")
            }
        }
    }
}
