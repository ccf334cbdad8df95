import ArgumentParser
import BackpropCore
import BackpropHDF5
import BackpropIO
import Foundation

/// Everything a run of `backprop train` starts from, set up in one order:
/// fresh or resumed → the data (with the teacher's probabilities) → the
/// validation split → the configuration → the trainer → the checkpoint
/// policy. Each step's rules are Core's (`RowSource.validationParts`,
/// `Trainer`, `TrainingLoop.check`, …) or, where they are about flags (what
/// a resume may change, a flag that cannot act), the command's; every error
/// names the flag that sets it right. Nothing is written here.
struct RunSetup {
    let kernel: Kernel
    /// The checkpoint resumed from, and its path; nil for a fresh run.
    let resumed: (checkpoint: Checkpoint, path: String)?
    let dataPath: String
    /// The teacher file distilled from, if any.
    let teacherPath: String?
    let train: any RowSource
    let validation: (any RowSource)?
    /// nil when the run reports no test score (`--report-test none`): then nothing of /test is read.
    let test: (any RowSource)?
    let classNames: [String]?
    /// What the run trains and chooses on, the teacher's columns included (`DataRecord`): a different split is different data.
    let fingerprint: String
    let configuration: TrainingConfiguration
    let trainer: Trainer
    let policy: CheckpointPolicy

    /// What a dataset file holds for a run: /train, its stored /validation, /test (nil: not read) and the class names.
    typealias Contents = (train: any RowSource, validation: (any RowSource)?, test: (any RowSource)?, classNames: [String]?)

    /// The run that `command`'s flags ask for, as one rank of `job`; `contents`,
    /// when given, is what its dataset file holds (read once for many setups: a sweep's check).
    init(_ command: Train, job: Job, contents: Contents? = nil) throws {
        kernel = try command.kernel.resolved()
        resumed = try command.resume.map(RunFiles.locate)
        if let (checkpoint, path) = resumed { try command.checkResumeRules(of: checkpoint.configuration, checkpointPath: path) }
        let base = resumed?.checkpoint.configuration ?? Train.freshConfiguration()
        dataPath = command.dataOptions.data ?? resumed?.checkpoint.dataPath ?? DataOptions.defaultPath
        if let output = command.output {
            try refuseOverwritingInputs(output, flag: Settings.output.flag, inputs: [dataPath] + (resumed.map { [$0.path] } ?? []),
                                        runDirectory: command.runDir ?? resumed.map { RunFiles.runDirectory(of: $0.path) })
        }
        // The data, and the teacher's probabilities beside /train's rows (into whichever part the split puts each).
        let given = command.givenSettings.applied(to: base)
        let (whole, stored, test, classNames) = try contents
            ?? Self.read(dataPath, streaming: command.streaming, readsTest: command.validation.testReport != .none)
        teacherPath = command.distillation.teacher ?? resumed?.checkpoint.teacherPath
        let teacher = try Self.teacher(at: teacherPath, for: whole, dataPath: dataPath, settings: given)
        var taught = whole
        if let teacher { taught.teacher = teacher.taught }
        // The validation split comes before anything counts the training samples (the schedule, DP-SGD's q).
        let (train, validation) = try Settings.namingFlags {
            try taught.validationParts(fraction: given.validationFraction, seed: given.seed, stored: stored)
        }
        let (sampleCount, resumedPath) = (train.count, resumed?.path)
        var configuration = try Settings.namingFlags {
            try command.resolvedConfiguration(base: base, sampleCount: sampleCount, resumed: resumedPath)
        }
        // The cores are shared among this machine's ranks, unless --workers says otherwise.
        if command.threads.workers == nil && job.mpi != nil { configuration.workers = job.defaultWorkers }
        fingerprint = DataRecord.of(training: train, validation: validation, teacher: true)
        if let teacher, let teacherPath { try Self.checkTaughtRows(teacher, path: teacherPath, train: train, validation: validation) }
        (self.train, self.validation, self.test, self.classNames, self.configuration) = (train, validation, test, classNames, configuration)

        trainer = try Self.trainer(configuration, train: train, validation: validation, resumed: resumed, kernel: kernel, job: job,
                                   command: command, fingerprint: fingerprint, dataPath: dataPath)
        try test?.validate(for: trainer.network)
        try validation?.validate(for: trainer.network)
        try Settings.namingFlags { try TrainingLoop.check(configuration, hasValidation: validation != nil) }
        try command.refuseFlagsThatCannotAct(configuration: configuration, hasValidation: validation != nil)
        // A resumed run keeps the policy its config.json records, flag by flag, unless a flag changes it.
        let recorded = resumed.map { CheckpointPolicy.recorded(in: RunFiles.runDirectory(of: $0.path)) } ?? CheckpointPolicy()
        policy = CheckpointPolicy(everySteps: command.checkpointEvery ?? recorded.everySteps,
                                  everyEpoch: command.checkpointEveryEpoch ?? recorded.everyEpoch,
                                  interval: command.checkpointInterval?.seconds ?? recorded.interval, keep: command.keep ?? recorded.keep)
    }

    /// /train, the stored /validation (if any), /test (unless not `readsTest`)
    /// and the class names of `path`; each split stays in the file when it is
    /// larger than the budget (or --stream).
    static func read(_ path: String, streaming: StreamOptions, readsTest: Bool) throws -> Contents {
        try guardedRead(path) {
            let file = try HDF5File.open(path)
            func streams(_ split: String) throws -> Bool {
                try file.exists("/\(split)/x") && streaming.streams(featureBytes: try DatasetFile.featureBytes(of: split, in: file))
            }
            let validation = try DatasetFile.validation(of: file, streaming: try streams("validation"))
            guard readsTest else {
                return (try DatasetFile.training(of: file, streaming: try streams("train")), validation, nil, try DatasetFile.classNames(of: file))
            }
            // /test is read once, at the end (unless --report-test every-epoch): it stays in the file whenever that costs no pass at start.
            let testStreams = try streams("test") || (try DatasetFile.storesFingerprints(of: "test", in: file) && file.exists("/test/x"))
            let (train, test) = try DatasetFile.splits(of: file, streamingTrain: try streams("train"), streamingTest: testStreams)
            return (train, validation, test, try DatasetFile.classNames(of: file))
        }
    }

    /// The refusal of a resume whose inputs are not the run's, naming the one
    /// that changed: the teacher, when its own fingerprint (recorded since 0.11)
    /// differs from the run's; else the dataset (or either, for a checkpoint
    /// that predates the teacher's fingerprint).
    private static func changedInput(of checkpoint: Checkpoint, at path: String, fingerprint: String, train: any RowSource, dataPath: String,
                                     command: Train) -> ValidationError {
        let data = "\(command.dataOptions.data == nil ? "dataset" : "--data") \(dataPath)"
        if let teacherPath = checkpoint.teacherPath ?? command.distillation.teacher {
            let teacher = "\(command.distillation.teacher == nil ? "teacher" : "--teacher") \(teacherPath)"
            switch (checkpoint.teacherFingerprint, train.teacherFingerprint) {
            case (let recorded?, let found?) where recorded != found:
                return ValidationError("\(teacher) is not the teacher checkpoint \(path) distilled from (its fingerprint is '\(found)', "
                                       + "the checkpoint's '\(recorded)').")
            case (nil, _):
                return ValidationError("\(data) or \(teacher) is not what checkpoint \(path) was trained on (their fingerprint is "
                                       + "'\(fingerprint)', the checkpoint's '\(checkpoint.dataFingerprint)').")
            default:
                break
            }
        }
        return ValidationError("\(data) is not the data checkpoint \(path) was trained on (its fingerprint is '\(fingerprint)', "
                               + "the checkpoint's '\(checkpoint.dataFingerprint)').")
    }

    /// A fresh trainer, or the resumed run's, restored where it stopped once
    /// its data is found to be the data it trained on.
    private static func trainer(_ configuration: TrainingConfiguration, train: any RowSource, validation: (any RowSource)?,
                                resumed: (checkpoint: Checkpoint, path: String)?, kernel: Kernel, job: Job, command: Train,
                                fingerprint: String, dataPath: String) throws -> Trainer {
        guard let (checkpoint, path) = resumed else {
            // A setting the data cannot take (--augment without an image shape) is a flag's error too.
            return try Settings.namingFlags { try Trainer(configuration: configuration, dataset: train, kernel: kernel, group: job.group) }
        }
        try command.checkUnchanged(from: checkpoint.configuration, to: configuration, checkpointPath: path)
        // The resume rests on the data's fingerprint: a streamed split's stored one is checked
        // against its rows first (one pass), so that the rule is the same streamed or not.
        try train.verifyFingerprint()
        try validation?.verifyFingerprint()
        guard checkpoint.dataFingerprint == fingerprint else {
            throw changedInput(of: checkpoint, at: path, fingerprint: fingerprint, train: train, dataPath: dataPath, command: command)
        }
        let trainer = try Settings.namingFlags {
            try Trainer(configuration: configuration, dataset: train, network: checkpoint.trainedNetwork, kernel: kernel, group: job.group)
        }
        // A block shuffle's checkpoint saves no order to check its position against: the data does.
        guard checkpoint.position.batch < trainer.epochs.batchesPerEpoch,
              checkpoint.order.isEmpty || checkpoint.order.count == train.count else {
            throw ValidationError("checkpoint \(path) is at batch \(checkpoint.position.batch + 1) of an epoch of \(checkpoint.order.count) samples, "
                                  + "but \(dataPath) has \(trainer.epochs.batchesPerEpoch) batches of \(train.count).")
        }
        trainer.restore(position: checkpoint.position, optimizerState: checkpoint.optimizerState,
                        order: checkpoint.order, history: checkpoint.history, average: checkpoint.average)
        return trainer
    }

    // MARK: - Distillation

    /// The teacher at `path` (`TeacherFile`), checked against the run: a
    /// teacher and a distillation weight come together, and its rows are
    /// /train's (`whole`) as the file holds them now. nil: no teacher.
    /// - Throws: `ValidationError` naming the flag, the file and what differs; `StorageError` for a damaged file.
    static func teacher(at path: String?, for whole: any RowSource, dataPath: String, settings: TrainingConfiguration) throws -> TeacherFile? {
        guard let path else {
            if let α = settings.distillAlpha {
                throw ValidationError("\(Settings["distillAlpha"].flag) \(α): name the teacher to distil from with \(Settings.teacher.flag) FILE "
                                      + "(`backprop ensemble` makes one).")
            }
            return nil
        }
        guard settings.distillAlpha != nil else {
            throw ValidationError("\(Settings.teacher.flag) \(path): give the teacher's weight too (\(Settings["distillAlpha"].flag) α, e.g. 0.9).")
        }
        let teacher = try guardedRead(path) { try TeacherFile.read(path) }
        try checkClasses(of: teacher, flag: Settings.teacher.flag, path: path, for: whole, dataPath: dataPath)
        let fingerprint = whole.fingerprint
        guard teacher.dataFingerprint == fingerprint else {
            throw ValidationError("\(Settings.teacher.flag) \(path) holds a teacher's probabilities for other rows than /train of \(dataPath) "
                                  + "(its data fingerprint is '\(teacher.dataFingerprint)', the data's '\(fingerprint)'); make it with "
                                  + "`backprop ensemble --data \(dataPath)`.")
        }
        return teacher
    }

    /// Refuses a teacher of fewer classes than `data`'s labels name, as a
    /// teacher of other classes: it cannot be fitted by a width of the last
    /// layer (its width would refuse the labels, and the labels' width it).
    /// - Throws: `ValidationError` naming `flag`, the file and both counts.
    static func checkClasses(of teacher: TeacherFile, flag: String, path: String, for data: any RowSource, dataPath: String) throws {
        guard let labels = data.labels, let top = labels.max(), teacher.classes <= Int(top) else { return }
        throw ValidationError("\(flag) \(path) holds the probabilities of \(teacher.classes) classes, but /train of \(dataPath) has labels up to "
                              + "\(top) (\(Int(top) + 1) classes): a teacher of other classes; make it for these (models with \(Int(top) + 1) outputs).")
    }

    /// Refuses a teacher whose members trained on other rows than the run's
    /// training part, or chose on another validation split: then the run's
    /// validation rows (which choose the run's epoch) might have fed the teacher.
    /// A run without a validation split may refit the members' rows: their
    /// training rows followed by their validation rows (`Dataset.isRefit`).
    /// - Throws: `ValidationError` naming --teacher and both fingerprints.
    static func checkTaughtRows(_ teacher: TeacherFile, path: String, train: any RowSource, validation: (any RowSource)?) throws {
        let rows = DataRecord.of(training: train, validation: validation)
        guard teacher.trainedOn != rows, !(validation == nil && (train as? Dataset)?.isRefit(of: teacher.trainedOn) == true) else { return }
        if validation == nil, train is StreamedDataset, teacher.trainedOn.contains(DataRecord.separator) {
            throw ValidationError("\(Settings.teacher.flag) \(path): its members chose on a validation split, and a refit on their rows is checked "
                                  + "with /train in memory; raise \(Settings.dataMemory.flag) (this run streams it).")
        }
        throw ValidationError("\(Settings.teacher.flag) \(path): its members trained on other rows than this run ('\(teacher.trainedOn)', "
                              + "this run's '\(rows)'), so this run's validation split may have taught them; train the teacher's members "
                              + "on this run's data and split (a split stored in the dataset: `backprop import … --validation-fraction`), "
                              + "or refit on their training rows followed by their validation rows, without a validation split.")
    }
}

/// The files of runs, as `train` and `sweep` find and name them.
enum RunFiles {
    /// The checkpoint to resume from: a file, or a run directory's newest
    /// valid checkpoint (warning about each one skipped). A model saved alone
    /// (`Checkpoint.isModelOnly`) has no run to resume, and is refused.
    static func locate(_ path: String) throws -> (checkpoint: Checkpoint, path: String) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StorageError.io(path: path, reason: "no such run directory or checkpoint file to resume from")
        }
        let found: (checkpoint: Checkpoint, path: String) = isDirectory(path)
            ? try RunDirectory(path).newestValidCheckpoint { log.warning("\($0)") }
            : (try guardedRead(path) { try Checkpoint.load(from: path) }, path)
        if found.checkpoint.isModelOnly {
            throw ValidationError("\(Settings.resume.flag) \(found.path): it holds a model without its run (no data fingerprint, no "
                                  + "optimizer state to go on from), so it cannot be resumed; evaluate, predict or export it, or train a new run.")
        }
        return found
    }

    /// Whether `path` is a directory.
    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// The run directory a checkpoint file belongs to.
    static func runDirectory(of checkpointPath: String) -> String {
        URL(fileURLWithPath: checkpointPath).deletingLastPathComponent().relativePath
    }

    /// <date-time>, a run's default name under runs/ (made unique by `RunDirectory.createUnique`).
    /// Local time, from the Gregorian calendar of FoundationEssentials: a
    /// DateFormatter would load ICU's formatting tables (6 MiB resident) for it.
    static func defaultName() -> String {
        let time = Calendar(identifier: .gregorian).dateComponents(in: .current, from: Date())
        func digits(_ value: Int?, _ width: Int) -> String {
            let text = String(value ?? 0)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return digits(time.year, 4) + digits(time.month, 2) + digits(time.day, 2) + "-"
            + digits(time.hour, 2) + digits(time.minute, 2) + digits(time.second, 2)
    }
}
