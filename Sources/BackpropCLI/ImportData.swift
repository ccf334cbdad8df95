import ArgumentParser
import BackpropCore
import BackpropHDF5
import Foundation

extension LearningTask: ExpressibleByArgument {}
extension TableImport.FeatureStorage: ExpressibleByArgument {}

extension ImageShape {
    /// `--image-shape`'s value, or an error that says what the flag takes.
    static func parsed(_ text: String) throws -> ImageShape {
        guard let shape = ImageShape(parsing: text) else {
            throw ValidationError("give H,W or H,W,C, each a whole number 1 … 1048576.")
        }
        return shape
    }
}

/// `backprop import`: converts datasets into Backprop's HDF5 layout.
struct ImportData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert a dataset into Backprop's HDF5 layout (/train/x, /train/y, /test/x, /test/y).",
        subcommands: [FashionMNIST.self, IDX.self, CSV.self, NPY.self])

    /// Options shared by the IDX importers.
    struct Options: ParsableArguments {
        @Option(help: "Keep only the first N training samples (to make a small sample).")
        var trainLimit: Int?
        @Option(help: "Keep only the first N test samples.")
        var testLimit: Int?
        @OptionGroup var holdOut: ValidationHoldOut

        func validate() throws {
            try refuseOutOfDomain(in: self)
        }
    }

    struct FashionMNIST: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fashion-mnist",
            abstract: "Import Fashion-MNIST from the IDX files of Debian's dataset-fashion-mnist package.")

        @Option(name: .customLong("from"), help: "Directory holding the four IDX files (.gz or plain).")
        var directory = "/usr/share/datasets/fashion-mnist"
        @Option(help: "The HDF5 file to write.")
        var output = DataOptions.defaultPath
        @OptionGroup var options: Options

        func run() throws {
            try importIDX(from: directory, to: output, name: "fashion-mnist", options: options, classNames: ClassNames.fashionMNIST)
        }
    }

    struct IDX: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "idx",
            abstract: "Import any dataset in MNIST's IDX layout (train-images-idx3-ubyte, …, t10k-labels-idx1-ubyte).")

        @Option(name: .customLong("from"), help: "Directory holding the four IDX files (.gz or plain).")
        var directory: String
        @Option(help: "The HDF5 file to write.")
        var output: String
        @Option(help: "A name recorded in the file.")
        var name = "idx"
        @OptionGroup var options: Options

        func run() throws {
            try importIDX(from: directory, to: output, name: name, options: options)
        }
    }
}

extension ImportData {
    /// How a table becomes train and test splits.
    struct Split: ParsableArguments {
        @Option(help: "Hold out this fraction of the samples (seeded shuffle) as the test split, unless a test file is given.")
        var testFraction = 0.2
        @Option(help: "Seed of the split's shuffle.")
        var seed: UInt64 = 0
        @Option(help: "The HDF5 file to write.")
        var output: String
        @Option(help: "Names of the classes, in label order, separated by commas (e.g. cat,dog); stored in the file for evaluate and predict.")
        var classNames: String?
        @Option(help: "The features are images of H×W (or H×W×C, channels last) values, which --augment needs (npy: read from x's shape [N, H, W] by default).",
                transform: ImageShape.parsed)
        var imageShape: ImageShape?
        @OptionGroup var holdOut: ValidationHoldOut

        /// The names of --class-names, one per comma.
        var names: [String]? { classNames.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) } }

        func validate() throws {
            try refuseOutOfDomain(in: self)
            if let names, let problem = ClassNames.problem(names) { throw ValidationError("--class-names \(problem).") }
        }

        func write(_ train: Dataset, test: Dataset?, source: String) throws {
            // Each split needs a sample: a split of one sample would leave the other empty.
            guard train.count >= (test == nil ? 2 : 1) else {
                throw ValidationError("\(source): holds \(train.count) sample\(train.count == 1 ? "" : "s"); "
                                      + (test == nil ? "splitting needs at least 2 (one to train on, one to test)." : "training needs at least 1."))
            }
            let (train, test) = test.map { TableImport.storedAlike(train, $0) }
                ?? TableImport.split(train, testFraction: testFraction, seed: seed)
            guard train.featureCount == test.featureCount else {
                throw ValidationError("the test data has \(test.featureCount) features per sample, the training data \(train.featureCount).")
            }
            guard train.hasTargets(like: test) else {
                throw ValidationError("the test data has \(test.targets), the training data \(train.targets).")
            }
            if names != nil && train.task == .regression { throw ValidationError("--class-names applies to class labels, not regression targets.") }
            var (kept, validation) = try holdOut.split(train, seed: seed)
            kept.imageShape = imageShape ?? train.imageShape
            if let shape = kept.imageShape, shape.featureCount != train.featureCount {
                throw ValidationError("--image-shape \(shape) holds \(shape.featureCount) values, but a sample has \(train.featureCount) features.")
            }
            try DatasetFile.write(train: kept, validation: validation, test: test, attributes: ["source": source], classNames: names, to: output)
            let storage = if case .bytes = train.features { "bytes × 1/255" } else { "float32" }
            let image = kept.imageShape.map { ", images \($0)" } ?? ""
            print("wrote \(output): \(kept.count) train\(ValidationHoldOut.shown(validation)) and \(test.count) test samples of \(train.featureCount) features "
                  + "(\(storage)\(image)), \(train.targets)")
        }
    }
}

extension ImportData.Split {
    /// Writes the splits `read` makes, a block at a time, and says what it wrote.
    func writeStreamed(source: String, task: LearningTask, _ read: () throws -> TableImport.StreamedSplits) throws {
        let splits: TableImport.StreamedSplits
        do { splits = try read() } catch let error as TrainingError { throw ValidationError(error.description(naming: Settings.flag)) }
        if names != nil && task == .regression { throw ValidationError("--class-names applies to class labels, not regression targets.") }
        let shape = imageShape ?? splits.imageShape
        if let shape, shape.featureCount != splits.train.featureCount {
            throw ValidationError("--image-shape \(shape) holds \(shape.featureCount) values, but a sample has \(splits.train.featureCount) features.")
        }
        try DatasetFile.write(train: splits.train, validation: splits.validation, test: splits.test,
                              attributes: ["source": source], classNames: names, imageShape: shape, to: output)
        let storage = splits.train.storage == .floats ? "float32" : "bytes × 1/255"
        let validation = splits.validation.map { ", \($0.count) validation" } ?? ""
        print("wrote \(output): \(splits.train.count) train\(validation) and \(splits.test.count) test samples of \(splits.train.featureCount) features "
              + "(\(storage)\(shape.map { ", images \($0)" } ?? "")), streamed a block at a time")
    }
}

extension ImportData {
    /// What the targets are and how features are stored.
    struct Kind: ParsableArguments {
        @Option(help: "classification (one column of class numbers 0…255) or regression (real-valued targets).")
        var task: LearningTask = .classification
        @Option(help: "Feature storage: auto (bytes × 1/255 when every value is an integer 0…255, else float32), bytes, float.")
        var features: TableImport.FeatureStorage = .auto
    }

    struct CSV: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "csv",
            abstract: "Import a CSV of numeric features and a label column (e.g. Kaggle's fashion-mnist_train.csv) or regression targets.")

        @Argument(help: "The CSV file (training data, or all data to split).")
        var file: String
        @Option(help: "A separate CSV for the test split.")
        var test: String?
        @Option(name: [.customLong("target-columns"), .customLong("label-column")], parsing: .upToNextOption,
                help: "The target columns: names or 0-based indices (default: 'label', else 'target', else the last). Classification takes one.")
        var targetColumns: [String] = []
        @Option(help: "Whether the first row names the columns: yes, no or auto.")
        var header = "auto"
        @OptionGroup var kind: Kind
        @OptionGroup var split: Split
        @Flag(name: Settings.stream.name, help: "Read the CSV a MiB at a time (once to check it, once for each split) and write each split as it is read, in memory of a few blocks and the targets (rows kept in file order; the test rows a seeded selection).")
        var stream = false
        @Option(name: Settings.dataMemory.name, help: "Import as --stream does when the CSV file is larger than a tenth of this, since it takes about 10 times its size held whole (e.g. 512M, 8G; default: half of physical memory).",
                transform: ByteSize.init(parsing:))
        var dataMemory: ByteSize?

        func validate() throws {
            guard ["yes", "no", "auto"].contains(header) else { throw ValidationError("--header \(header) is invalid: use yes, no or auto.") }
        }

        func run() throws {
            let hasHeader: Bool? = header == "auto" ? nil : header == "yes"
            let columns = targetColumns.flatMap { $0.split(separator: ",").map(String.init) }
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
            if stream || size > (dataMemory?.bytes ?? StreamOptions.defaultBudget) / 10 {
                try refuseOverwritingInputs(split.output, flag: "--output", inputs: [file] + (test.map { [$0] } ?? []))
                return try split.writeStreamed(source: "CSV \(file)", task: kind.task) {
                    try TableImport.csvRows(file, test: test, targetColumns: columns, header: hasHeader, task: kind.task, features: kind.features,
                                            testFraction: split.testFraction, validationFraction: split.holdOut.validationFraction, seed: split.seed)
                }
            }
            func read(_ path: String) throws -> Dataset {
                try TableImport.csv(path, targetColumns: columns, header: hasHeader, task: kind.task, features: kind.features)
            }
            try refuseOverwritingInputs(split.output, flag: "--output", inputs: [file] + (test.map { [$0] } ?? []))
            try split.write(try read(file), test: try self.test.map(read), source: "CSV \(file)")
        }
    }

    struct NPY: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "npy",
            abstract: "Import NumPy arrays: x.npy [N, …] of features and y.npy, [N] class labels or [N] / [N, K] regression targets.")

        @Option(help: "The features, [N, …].")
        var x: String
        @Option(help: "The labels [N], or regression targets [N] or [N, K].")
        var y: String
        @Option(help: "Test features (with --test-y), instead of a held-out fraction.")
        var testX: String?
        @Option(help: "Test labels.")
        var testY: String?
        @OptionGroup var kind: Kind
        @OptionGroup var split: Split
        @Flag(name: Settings.stream.name, help: "Read x a block of rows at a time and write each split as it is read, in memory of a few blocks and the targets (rows kept in file order; the test rows a seeded selection).")
        var stream = false
        @Option(name: Settings.dataMemory.name, help: "Import as --stream does when x takes more than this as float32 (e.g. 512M, 8G; default: half of physical memory).",
                transform: ByteSize.init(parsing:))
        var dataMemory: ByteSize?

        func validate() throws {
            guard (testX == nil) == (testY == nil) else { throw ValidationError("--test-x and --test-y go together; give both or neither.") }
        }

        func run() throws {
            try refuseOverwritingInputs(split.output, flag: "--output", inputs: [x, y] + [testX, testY].compactMap { $0 })
            // An array that cannot be read by rows (Fortran order) is read whole, unless --stream says otherwise.
            if stream { return try runStreamed() }
            if let rows = try? NPYRows(x) {
                let (floatBytes, overflow) = rows.rows.multipliedReportingOverflow(by: rows.rowElements * MemoryLayout<Float>.size)
                if overflow || floatBytes > (dataMemory?.bytes ?? StreamOptions.defaultBudget) { return try runStreamed() }
            }
            let train = try TableImport.npy(x: x, y: y, task: kind.task, features: kind.features)
            let test = try testX.map { try TableImport.npy(x: $0, y: testY!, task: kind.task, features: kind.features) }
            try split.write(train, test: test, source: "NumPy \(x), \(y)")
        }

        /// The import a block of rows at a time.
        func runStreamed() throws {
            try split.writeStreamed(source: "NumPy \(x), \(y)", task: kind.task) {
                try TableImport.npyRows(x: x, y: y, test: testX.map { ($0, testY!) }, task: kind.task, features: kind.features,
                                        testFraction: split.testFraction, validationFraction: split.holdOut.validationFraction, seed: split.seed)
            }
        }
    }
}

private func importIDX(from directory: String, to output: String, name: String, options: ImportData.Options,
                       classNames: [String]? = nil) throws {
    let (whole, test) = try IDXImport.read(from: directory, trainLimit: options.trainLimit, testLimit: options.testLimit)
    var (train, validation) = try options.holdOut.split(whole, seed: 0)
    train.imageShape = whole.imageShape
    try DatasetFile.write(train: train, validation: validation, test: test, attributes: IDXImport.attributes(name: name, directory: directory),
                          classNames: classNames, to: output)
    let image = train.imageShape.map { " (images \($0))" } ?? ""
    print("wrote \(output): \(train.count) train\(ValidationHoldOut.shown(validation)) and \(test.count) test samples of \(train.featureCount) features\(image)")
}

/// `--validation-fraction` of the importers: a /validation split held out of the training data.
struct ValidationHoldOut: ParsableArguments {
    @Option(help: "Hold out this share of the training samples (stratified by class) as /validation, which train then chooses on; 0: none.")
    var validationFraction = 0.0

    /// The training samples kept and the held-out split (nil for a fraction of 0).
    func split(_ train: Dataset, seed: UInt64) throws -> (train: Dataset, validation: Dataset?) {
        guard validationFraction != 0 else { return (train, nil) }
        do {
            let (kept, held) = try train.split(validationFraction: validationFraction, seed: seed)
            return (kept, held)
        } catch {
            throw ValidationError(error.description(naming: Settings.flag))
        }
    }

    /// ", 6000 validation" or nothing.
    static func shown(_ validation: Dataset?) -> String { validation.map { ", \($0.count) validation" } ?? "" }
}

extension ImportData.Options: OptionDomains {
    static let domains: [String: SettingDomain] = ["trainLimit": .atLeast(1), "testLimit": .atLeast(1)]
}

extension ImportData.Split: OptionDomains {
    static let domains: [String: SettingDomain] = ["testFraction": .openUnit]
}
