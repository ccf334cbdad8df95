import ArgumentParser
import BackpropCore
import BackpropHDF5
import BackpropIO
import Foundation

// Every setting of `backprop train`, described once. Those of a run's
// configuration are Core's declarations (`TrainingConfiguration.settings`):
// each gets its flag (its name in kebab case, or the declared one), help,
// default, domain, resume rule and record here, and its edit of a
// configuration from the option whose property bears its name
// (`SettingEdits`). The settings of the command line alone (the data, the
// run directory, logging) are declared below. The flag names in errors,
// config.json, --print-config and `backprop settings` (docs/options.md) are
// read from here. Adding a setting: its property and declaration in
// TrainingConfiguration.swift, and its option (a property of that name) in
// its group; its logic aside.

/// A fresh run's settings: the one source of every default the help shows.
let fresh = TrainingConfiguration()

/// What config.json records of a run: its settings, its checkpoint policy,
/// and the free settings it was given (streaming, logging, the kernel: they
/// never change a result), keyed by flag.
struct RecordedRun: Sendable {
    let configuration: TrainingConfiguration
    let dataPath: String
    let policy: CheckpointPolicy
    /// The teacher file distilled from, if any.
    var teacherPath: String? = nil
    var free: [String: any Sendable] = [:]
}

/// One setting of a run, as the command line names it.
struct Setting: Sendable {
    /// The flag without its dashes, and the key in settings files.
    let key: String
    /// What it does, in a sentence or two.
    let summary: String
    /// The default the help shows, if any.
    var defaultValue: String? = nil
    let rule: ResumeRule
    /// What config.json records of a run for it (nil: nothing).
    var record: @Sendable (RecordedRun) -> (any Sendable)? = { _ in nil }
    /// Core's declaration, for a setting of a run's configuration.
    var declaration: Declared<TrainingConfiguration>? = nil
    /// A free setting of the command line alone as `train` was given it, for config.json (nil: not recorded, or off).
    var given: (@Sendable (Train) -> (any Sendable)?)? = nil
    /// The settings table's section of a declared setting (the others are placed by `Settings.sections`).
    var section: String? { declaration?.section }

    var flag: String { "--" + key }

    /// The numbers a setting of a run's configuration takes, as Core declares them; nil for none (or any).
    /// (The command line's own options declare theirs beside them: `OptionDomains`.)
    var domain: SettingDomain? { declaration.flatMap { $0.domain == .any ? nil : $0.domain } }

    /// The option's help: the summary and the default.
    var help: ArgumentHelp { ArgumentHelp(summary + (defaultValue.map { " (default: \($0))" } ?? "")) }

    /// `--flag` as an option name for swift-argument-parser.
    var name: NameSpecification { .customLong(key) }

    /// The words a rule's name gets in the table and in errors.
    static func words(_ rule: ResumeRule) -> String {
        switch rule {
        case .fixed: "fixed"
        case .overridable: "with --override"
        case .free: "free"
        }
    }
}

extension Setting {
    /// The descriptor of a setting Core declares: its flag is the declared one, or its name in kebab case
    /// ("clipNorm", --clip-norm); its default and config.json record follow from the declaration.
    init(declared: Declared<TrainingConfiguration>) {
        let key = declared.flag ?? Settings.kebab(declared.name)
        self.key = key
        summary = declared.summary
        defaultValue = declared.valueType == Bool.self && declared.shownDefault == nil
            ? (fresh.value(of: declared) as? Bool).map { $0 ? "--" + key : "--no-" + key } : declared.defaultShown
        rule = declared.rule
        record = { run in declared.recorded(in: run.configuration).map(Settings.jsonValue) }
        declaration = declared
    }
}

/// The settings of `backprop train`, in the order of its help.
enum Settings {
    static let data = Setting(key: "data", summary: "The HDF5 dataset (see `backprop import`); `train --resume` defaults to the run's.",
                              defaultValue: DataOptions.defaultPath, rule: .fixed, record: { $0.dataPath })

    static let teacher = Setting(key: "teacher",
                                 summary: "Distil from this teacher: the class probabilities over /train that `backprop ensemble` writes, made by models trained on the same rows as this run (never on its validation split); with --distill-alpha. A teacher with views (/predictions/views) teaches each augmented sample the image it is shown. `train --resume` defaults to the run's.",
                                 rule: .fixed, record: { $0.teacherPath })

    static let stream: Setting = Setting(key: "stream",
                                summary: "Read the features from the file a block of rows at a time as they are needed, not whole (train: /train on a reader thread, with --shuffle-blocks or --no-shuffle; evaluate, predict: the split); the same bits as in memory.",
                                rule: .free,
                                given: { $0.streaming.stream ? true : nil })
    static let dataMemory: Setting = Setting(key: "data-memory",
                                    summary: "Stream a split whose features take more than this: a whole number of bytes, or a number with K, M, G or T (powers of 1024), e.g. 512M, 8G, 1.5G.",
                                    defaultValue: "half of physical memory", rule: .free,
                                    given: { $0.streaming.dataMemory?.bytes })

    // MARK: Validation
    static let reportTest: Setting = Setting(key: "report-test",
                                    summary: "When the test split is read: at the end of the run (end), after every epoch too (every-epoch), or never (none); it never chooses anything.",
                                    defaultValue: TestReport.end.rawValue, rule: .free,
                                    given: { $0.validation.testReport.rawValue })

    // MARK: DP-SGD
    static let dpEpsilon = Setting(key: "dp-epsilon", summary: "DP-SGD: pick σ so that the planned steps spend this ε (instead of --dp-noise).",
                                   rule: .fixed)

    static let kernel: Setting = Setting(key: "kernel", summary: "Matrix kernel path; all give the same bits (auto: BACKPROP_KERNEL, else the fastest this CPU runs).",
                                defaultValue: KernelChoice.auto.rawValue, rule: .free,
                                given: { ($0.kernel.kernel ?? .auto).rawValue })

    // MARK: Run directory and checkpoints
    static let runDir = Setting(key: "run-dir", summary: "The run directory for checkpoints.", defaultValue: "runs/<date-time>, or the resumed run's",
                                rule: .free)
    static let output = Setting(key: "output", summary: "Where to write the final model.", defaultValue: "<run-dir>/model.h5", rule: .free)
    static let checkpointEvery = Setting(key: "checkpoint-every", summary: "Also write a checkpoint every N optimizer steps (0: off).",
                                         defaultValue: "\(CheckpointPolicy().everySteps)", rule: .free, record: { $0.policy.everySteps })
    static let checkpointEveryEpoch = Setting(key: "checkpoint-every-epoch", summary: "Write a checkpoint after every epoch (--no-checkpoint-every-epoch: not).",
                                              defaultValue: CheckpointPolicy().everyEpoch ? "--checkpoint-every-epoch" : "--no-checkpoint-every-epoch", rule: .free, record: { $0.policy.everyEpoch })
    static let checkpointInterval = Setting(key: "checkpoint-interval",
                                            summary: "Also write a checkpoint when this much wall time has passed since the last (e.g. 90s, 10m, 1h).",
                                            rule: .free, record: { $0.policy.interval })
    static let keep = Setting(key: "keep", summary: "Step checkpoints to keep (best.h5 and last.h5 are kept besides).",
                              defaultValue: "\(CheckpointPolicy().keep)",
                              rule: .free, record: { $0.policy.keep })

    // MARK: Starting and resuming
    static let config = Setting(key: "config",
                                summary: "A JSON or YAML file of settings keyed like the flags (\"learning-rate\": 0.05), such as a run's config.json; flags given here win.",
                                rule: .free)
    static let resume = Setting(key: "resume", summary: "Resume from a run directory (its newest valid checkpoint) or a checkpoint file.",
                                rule: .free)
    static let override = Setting(key: "override", summary: "On --resume, allow changing the epochs, steps and learning-rate schedule.",
                                  rule: .free)

    // MARK: Output
    static let verbose: Setting = Setting(key: "verbose", summary: "Print the kernel path and the start-up time.", rule: .free,
                                 given: { $0.verbose ? true : nil })
    static let quiet: Setting = Setting(key: "quiet", summary: "Print only the final line (and errors).", rule: .free,
                               given: { $0.quiet ? true : nil })
    static let logEvery: Setting = Setting(key: "log-every", summary: "Also log every N steps: a line when output is not a terminal, and the step's loss in the TensorBoard events (0: per epoch only).",
                                  defaultValue: "\(ProgressReporter.defaultLogEvery)", rule: .free,
                                  given: { $0.logEvery ?? ProgressReporter.defaultLogEvery })
    static let logGradNorms: Setting = Setting(key: "log-grad-norms",
                                      summary: "Log the quantiles of the per-sample gradient norms each epoch (to choose --dp-clip).", rule: .free,
                                      given: { $0.logGradNorms ? true : nil })
    static let printConfig = Setting(key: "print-config",
                                     summary: "Print the fully resolved settings, keyed by flag (a valid --config), and exit without training.",
                                     rule: .free)
    static let configFormat = Setting(key: "format", summary: "--print-config's format: yaml or json.", defaultValue: "yaml", rule: .free)
    static let tensorboard: Setting = Setting(key: "tensorboard",
                                     summary: "Write TensorBoard event files to <run-dir>/tensorboard: each epoch's metrics, and step losses every --log-every steps.",
                                     defaultValue: "--tensorboard", rule: .free,
                                     given: { $0.tensorboard ?? true })
    static let logNoiseScale: Setting = Setting(key: "log-noise-scale",
                                       summary: "Log the gradient noise scale B_simple each epoch (the batch size beyond which larger batches stop paying).",
                                       rule: .free,
                                       given: { $0.logNoiseScale ? true : nil })

    /// Every setting of `backprop train` by section, in the order of its help:
    /// each section's own, then those Core declares for it (`TrainingConfiguration.settings`).
    static let sections: [(title: String, settings: [Setting])] = written.map { section in
        (section.title, section.settings + declared.filter { $0.section == section.title })
    }

    /// The descriptors of the settings Core declares, in its order.
    static let declared = TrainingConfiguration.settings.map(Setting.init(declared:))

    /// The descriptor of the setting Core declares by `name` ("momentum"), for its option's name and help.
    static subscript(_ name: String) -> Setting {
        guard let setting = declared.first(where: { $0.declaration?.name == name }) else {
            preconditionFailure("\(name) is not in TrainingConfiguration.settings")
        }
        return setting
    }

    /// The flag of an option whose property is `property`: the declared setting's of that name, else the name in kebab case.
    static func flag(ofProperty property: String) -> String {
        declared.first { $0.declaration?.name == property }?.flag ?? "--" + kebab(property)
    }

    /// `name` in kebab case: "weightDecay", "weight-decay".
    static func kebab(_ name: String) -> String {
        name.reduce(into: "") { key, character in
            if character.isUppercase { key += "-" + character.lowercased() } else { key.append(character) }
        }
    }

    /// A declared value as config.json holds it: an enumeration by its name, a list as a list.
    static func jsonValue(_ value: any Sendable) -> any Sendable {
        switch value {
        case let named as any RawRepresentable<String>: return named.rawValue
        case let list as [any Sendable]: return list.map(jsonValue)
        default: return value
        }
    }

    /// The settings written out here, by section (each followed by Core's).
    private static let written: [(title: String, settings: [Setting])] = [
        ("Data", [data, stream, dataMemory]),
        ("Model", []),
        ("Optimizer", []),
        ("Regularisation", []),
        ("Distillation", [teacher]),
        ("Validation", [reportTest]),
        ("Batches", []),
        ("Samples", []),
        ("DP-SGD", [dpEpsilon]),
        ("Length and learning rate", []),
        ("Threads and kernel", [kernel]),
        ("Run directory and checkpoints", [runDir, output, checkpointEvery, checkpointEveryEpoch, checkpointInterval, keep]),
        ("Starting and resuming", [config, resume, override, printConfig, configFormat]),
        ("Output", [verbose, quiet, logEvery, tensorboard, logGradNorms, logNoiseScale]),
    ]

    static var all: [Setting] { sections.flatMap(\.settings) }

    /// The flag that sets Core's `setting`, or its words where no flag does.
    static func flag(_ setting: TrainingError.Setting) -> String {
        declared.first { $0.declaration?.name == setting.name }?.flag ?? setting.words
    }

    /// Runs `body`, turning Core's errors into `ValidationError`s that name the flags (`flag(_:)`).
    @discardableResult
    static func namingFlags<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as TrainingError {
            throw ValidationError(error.description(naming: flag))
        }
    }

    /// The flag (with its value) that a storage error's advice names.
    static func flag(_ setting: StorageError.Setting) -> String {
        switch setting {
        case .resume: return resume.flag
        case .runDirectory: return runDir.flag
        case .regressionTask: return "--task regression"
        case .automaticFeatures: return "--features auto"
        case .floatFeatures: return "--features float"
        }
    }

    /// A run as the flags that give it, keyed without the dashes: what
    /// config.json holds, so that `--config` reproduces the run.
    static func recorded(_ run: RecordedRun) -> [String: Any] {
        var settings: [String: Any] = [:]
        for setting in all { if let value = setting.record(run) ?? run.free[setting.key] { settings[setting.key] = value } }
        return settings
    }

    /// A value config.json records, as a flag writes it ("784,256,128,10", "0.05").
    static func shown(_ value: Any) -> String {
        switch value {
        case let list as [Any]: return list.map(shown).joined(separator: ",")
        case let on as Bool: return on ? "on" : "off"
        default: return "\(value)"
        }
    }

    /// The keys of the settings that never change a result (`ResumeRule.free`),
    /// which a printed settings file sets apart.
    static var freeKeys: Set<String> { Set(all.filter { $0.rule == .free }.map(\.key)) }

    /// The table of docs/options.md (`backprop settings`): flag, default, on resume, meaning.
    static var markdownTable: String {
        var lines = ["| option | default | on `--resume` | meaning |", "|---|---|---|---|"]
        for section in sections {
            lines.append("| **\(section.title)** | | | |")
            for s in section.settings {
                let cell = { (text: String) in text.replacingOccurrences(of: "|", with: "\\|") }
                let shown = s.defaultValue.map { cell("`" + $0 + "`") } ?? ""
                lines.append("| `\(s.flag)` | \(shown) | \(Setting.words(s.rule)) | \(cell(s.summary)) |")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// `backprop settings`: the table of train's settings that docs/options.md holds.
struct SettingsTable: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settings",
        abstract: "Print the table of train's settings (flag, default, what it may do on --resume, meaning) as Markdown.")

    @Flag(help: "Print it as JSON instead, one object per setting: key (the flag without dashes, and the key in --config files), value (what a --config file must give it), domain (the numbers it takes), default, resume, section, summary.")
    var json = false

    func run() throws {
        guard json else { return print(Settings.markdownTable) }
        let types = OptionTable.rows(of: Train.self)
        let rows: [[String: Any]] = Settings.sections.flatMap { section in
            section.settings.map { setting in
                var row: [String: Any] = ["key": setting.key, "resume": Setting.words(setting.rule), "section": section.title, "summary": setting.summary]
                row["value"] = types.first { $0.key == setting.key }?.type?.description
                row["default"] = setting.defaultValue
                row["domain"] = types.first { $0.key == setting.key }?.domain?.description
                return row
            }
        }
        let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .withoutEscapingSlashes])
        print(String(decoding: data, as: UTF8.self))
    }
}
