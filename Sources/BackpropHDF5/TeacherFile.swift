import BackpropCore
import BackpropIO
import Foundation

/// A teacher's class probabilities over a dataset's /train, which `train
/// --teacher` distils from (`Distillation`), and `backprop ensemble` (from
/// member checkpoints) or `backprop teach` (from another trainer's NumPy
/// arrays) writes: the layout of `predict`'s HDF5 output
/// (/predictions/outputs, format "backprop-predictions") with what
/// distillation checks before it trusts them, declared in `TeacherSchema`.
/// Optional views hold the teacher's probabilities of each of the V images
/// that augmentation can make of a row, in `Augmentation.viewIndex`'s order,
/// so that a student augmenting within them is taught about the image it
/// sees (`TeacherColumn.views`).
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
    public var taught: TeacherColumn { TeacherColumn(viewProbabilities ?? probabilities, views: views) }

    /// The most a row's probabilities may sum away from 1 (float32 averages of softmax rows are within 1e-6).
    public static let sumTolerance: Float = 1e-3

    /// The root's `format`: predict's and a teacher's alike.
    public static let format = "backprop-predictions"
    /// The probabilities (a teacher's) or outputs (predict's), [N, K].
    public static var outputs: String { TeacherSchema.outputs.path }
    /// The probabilities of every view, [N, V, K] (optional).
    public static var viewsPath: String { TeacherSchema.views.path }

    /// The table of every object of a teacher file (docs/file-formats.md), from the declarations `write` and `read` use.
    public static var schemaTable: String { markdownTable(TeacherSchema.entries) }

    /// Writes the file atomically (`path` is never half-written), through `TeacherSchema`.
    /// - Throws: `StorageError.io`, `.call`.
    public func write(to path: String) throws(StorageError) {
        typealias S = TeacherSchema
        let members = String(decoding: (try? JSONEncoder().encode(self.members)) ?? Data("[]".utf8), as: UTF8.self)
        try HDF5File.createAtomically(path) { (file) throws(StorageError) in
            try S.format.write(Self.format, to: file)
            try S.split.write("train", to: file)
            try S.dataFingerprint.write(dataFingerprint, to: file)
            try S.trainedOn.write(trainedOn, to: file)
            try S.members.write(members, to: file)
            try file.write(probabilities, shape: [count, classes], to: S.outputs.path,
                           chunkRows: DatasetFile.storageChunkRows(rowBytes: 4 * classes, rows: count))
            if let viewProbabilities {
                try file.write(viewProbabilities, shape: [count, views.viewCount, classes], to: S.views.path,
                               chunkRows: DatasetFile.storageChunkRows(rowBytes: 4 * views.viewCount * classes, rows: count))
                try S.augment.write(views.description, to: file)
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
        typealias S = TeacherSchema
        let path = file.path
        let format = try file.hasAttribute(S.format.name) ? try S.format.read(from: file) : "HDF5 without a format attribute"
        guard format == Self.format else { throw .wrongFormat(path: path, found: format, expected: Self.format) }
        for attribute in [S.split, S.dataFingerprint, S.trainedOn, S.members] where try !file.hasAttribute(attribute.name) {
            throw .invalidContent(path: path, object: attribute.described(), reason: "is missing: a teacher is made by `backprop ensemble` "
                                  + "or `backprop teach` (which record what it was computed on), not by `backprop predict`")
        }
        let split = try S.split.read(from: file)
        guard split == "train" else {
            throw .invalidContent(path: path, object: S.split.described(), reason: "is \"\(split)\": a teacher predicts /train, which a student trains on")
        }
        let membersText = try S.members.read(from: file)
        guard let members = try? JSONDecoder().decode([String].self, from: Data(membersText.utf8)), !members.isEmpty else {
            throw .invalidContent(path: path, object: S.members.described(), reason: "is not a JSON list of what made the probabilities")
        }
        let (values, shape) = try file.read(S.outputs.path, as: Float.self, rank: 2)
        let (count, classes) = (shape[0], shape[1])
        guard count >= 1, (1...256).contains(classes) else {
            throw .invalidContent(path: path, object: S.outputs.path, reason: "is \(count) × \(classes); a teacher has at least one row of 1 … 256 classes")
        }
        try checkDistributions(values, classes: classes, path: path, object: S.outputs.path) { "row \($0)" }
        var (views, viewProbabilities) = (Augmentation(), [Float]?.none)
        if try file.exists(S.views.path) {
            guard let text = try S.augment.readIfPresent(from: file) else {
                throw .invalidContent(path: path, object: S.views.path, reason: "has no attribute 'augment' saying which augmentation's views it holds (e.g. \"shift=1,flip\")")
            }
            guard let augment = Augmentation(parsing: text), augment.isActive, augment.shift <= 64 else {
                throw .invalidContent(path: path, object: S.augment.described(),
                                      reason: "is \"\(text)\", not an augmentation of shift=S (1 … 64), flip, or both, as --augment takes")
            }
            let (all, shape) = try file.read(S.views.path, as: Float.self, rank: 3)
            guard shape == [count, augment.viewCount, classes] else {
                throw .invalidContent(path: path, object: S.views.path, reason: "is \(shape.map(String.init).joined(separator: " × ")); the \(augment.viewCount) views "
                                      + "of \(augment) of \(count) rows of \(classes) classes are \(count) × \(augment.viewCount) × \(classes)")
            }
            try checkDistributions(all, classes: classes, path: path, object: S.views.path) { "row \($0 / augment.viewCount), view \($0 % augment.viewCount)" }
            (views, viewProbabilities) = (augment, all)
        }
        return TeacherFile(probabilities: values, count: count, classes: classes, dataFingerprint: try S.dataFingerprint.read(from: file),
                           trainedOn: try S.trainedOn.read(from: file), members: members, views: views, viewProbabilities: viewProbabilities)
    }

    /// Checks what `read` checks of a file's values before the file is
    /// written: every row of the probabilities, and of the views', a distribution.
    /// - Parameters:
    ///   - source: where the probabilities came from, for messages.
    ///   - viewsSource: where the views' came from (nil: `source`).
    /// - Throws: `StorageError.invalidContent` naming the source, the row and the value.
    public func check(probabilitiesFrom source: String, viewsFrom viewsSource: String?) throws(StorageError) {
        try Self.checkDistributions(probabilities, classes: classes, path: source, object: "probabilities") { "row \($0)" }
        if let viewProbabilities {
            let viewCount = views.viewCount
            try Self.checkDistributions(viewProbabilities, classes: classes, path: viewsSource ?? source, object: "views") {
                "row \($0 / viewCount), view \($0 % viewCount)"
            }
        }
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

/// The layout of a teacher file, declared once (FileSchema.swift):
/// `TeacherFile.write` writes through it, `TeacherFile.read` reads through
/// it, and docs/file-formats.md's table is `TeacherFile.schemaTable`.
enum TeacherSchema {
    static let format = FileAttribute<String>("/", "format", "\"backprop-predictions\" (predict's format, with the attributes below)")
    static let split = FileAttribute<String>("/", "split", "\"train\": the rows are /train's, aligned row by row")
    static let dataFingerprint = FileAttribute<String>("/", "data_fingerprint", "that /train's rows' `RowSource.fingerprint`, checked by `train --teacher`")
    static let trainedOn = FileAttribute<String>("/", "trained_on",
                                                 "the data fingerprint the members' checkpoints record (their training rows and validation split): "
                                                   + "a student's validation rows must have fed none of them")
    static let members = FileAttribute<String>("/", "members", "a JSON list of what made the probabilities: the member checkpoints in the order "
                                                 + "averaged (`ensemble`), or the NumPy files handed over (`teach`)")
    static let outputs = FileDataset("/predictions/outputs", "float32 [N, K]", "p: each row the teacher's class probabilities, summing to 1")
    static let views = FileDataset("/predictions/views", "float32 [N, V, K]",
                                   "the probabilities of the V views of each row, in `backprop teach --view-order`'s order", .when("with views"))
    static let augment = FileAttribute<String>("/predictions/views", "augment",
                                               "the augmentation whose views they are, as --augment takes it (\"shift=1,flip\")", .when("with views"))

    /// Every object, in the order of the file.
    static var entries: [SchemaEntry] {
        [format.entry, split.entry, dataFingerprint.entry, trainedOn.entry, members.entry, outputs.entry, views.entry, augment.entry]
    }
}
