import ArgumentParser
import BackpropCore
import BackpropHDF5
import Foundation

// What `backprop train`'s flags make of a configuration: the edits the given
// flags stand for, the configuration they resolve to against the data, and
// the rules about flags (what a resume may change, a flag that cannot act).
// `RunSetup` calls them in its order.
extension Train {
    /// The flags given on the command line, as edits of a configuration.
    var givenSettings: SettingEdits {
        var edits = SettingEdits()
        let groups: [any ConfigurationOptions] = [model, optimizer, batch, sampling, privacy, validation, distillation, schedule, threads, precision]
        for group in groups { edits.add(group) }
        return edits
    }

    /// `base` edited by the given flags and checked. With `sampleCount` (the
    /// data's), the parts that depend on it are resolved too: the schedule's
    /// lengths, δ and σ of DP-SGD. Without it (before the data is read), only
    /// what the flags alone decide is checked. `resumed`: the checkpoint
    /// `base` was read from, which the refusals of a flag the run cannot take name.
    func resolvedConfiguration(base: TrainingConfiguration, sampleCount: Int?, resumed: String? = nil) throws -> TrainingConfiguration {
        var configuration = givenSettings.applied(to: base)
        try privacy.checkNeedsClip(base: base, resumed: resumed)
        try optimizer.checkOwners(of: configuration)
        guard let sampleCount else {
            try schedule.checkFlags(of: schedule.lrSchedule ?? configuration.scheduleKind, resumed: resumed)
            configuration.privacy = nil  // its NaNs are filled in from the data
            try configuration.validate()
            _ = try configuration.makeNetwork(Float.self)
            return configuration
        }
        // The run's length in steps is counted before anything uses it (DP-SGD's σ, the cosine's end).
        _ = try configuration.plannedSteps(sampleCount: sampleCount)
        try privacy.resolve(&configuration, sampleCount: sampleCount)
        if schedule.givesSchedule {
            configuration.schedule.shape = try schedule.shape(of: configuration, sampleCount: sampleCount, resumed: resumed)
        } else if case .cosine(let warmup, let total, let minimum) = configuration.schedule.shape,
                  total == (try? base.plannedSteps(sampleCount: sampleCount)) {
            // A run made longer or shorter on resume stretches the cosine it planned, which
            // then still ends at η_min on the run's last step (it never trains on at η_min).
            let planned = try configuration.plannedSteps(sampleCount: sampleCount)
            configuration.schedule.shape = .cosine(warmupSteps: warmup, totalSteps: planned, minimum: minimum)
        }
        try configuration.validate()
        _ = try configuration.makeNetwork(Float.self)
        return configuration
    }

    /// The defaults of a fresh run; workers default to the active cores.
    static func freshConfiguration() -> TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.workers = WorkerOptions.defaultCount
        return configuration
    }

    /// Refuses, before the data is read, each flag that the resumed run's
    /// rules forbid, judged against that run and worded for it: a fixed
    /// setting never changes, an overridable one only with --override. A
    /// flag that repeats the run's value changes nothing and is fine.
    func checkResumeRules(of saved: TrainingConfiguration, checkpointPath: String) throws {
        // A setting left to its default has the default's value (--sampling shuffle repeats a run that gave none).
        func effective(_ configuration: TrainingConfiguration) -> TrainingConfiguration {
            var configuration = configuration
            configuration.sampling = configuration.samplingMethod
            return configuration
        }
        let run = RecordedRun(configuration: effective(saved), dataPath: "", policy: CheckpointPolicy())
        for edit in givenSettings.all {
            var edited = saved
            edit.apply(&edited)
            let setting = edit.setting
            guard effective(edited) != effective(saved) else { continue }
            // What the run has: its value of the setting, or that it was trained without one.
            let has = setting.record(run).map { "has \(setting.flag) \(Settings.shown($0))" } ?? "was trained without \(setting.flag)"
            switch setting.rule {
            case .fixed:
                throw ValidationError("\(setting.flag): the run saved in \(checkpointPath) \(has), and it cannot change on resume "
                                      + "(start a new run instead).")
            case .overridable where !override:
                throw ValidationError("\(setting.flag): the run saved in \(checkpointPath) \(has); add --override to change it.")
            case .overridable, .free:
                break
            }
        }
    }

    /// Refuses what the flags resolve to against the data that the run's rules
    /// forbid (checked flag by flag before, by `checkResumeRules`): a schedule
    /// the --lr-* flags change without --override, and DP-SGD's σ or δ.
    func checkUnchanged(from saved: TrainingConfiguration, to configuration: TrainingConfiguration,
                                checkpointPath: String) throws {
        if configuration.schedule != saved.schedule && !override {
            let flags = schedule.givenScheduleFlags.joined(separator: ", ")
            throw ValidationError("\(flags): the run saved in \(checkpointPath) has the schedule \(saved.schedule.shape.summary); "
                                  + "add --override to change it.")
        }
        // σ from --dp-epsilon over the resumed run's steps, or δ's default: DP-SGD's settings define the run.
        if configuration.privacy != saved.privacy {
            let flags = privacy.given.map(\.flag).joined(separator: ", ")
            let has = saved.privacy.map { "has σ \($0.noise) and δ \($0.delta)" } ?? "was trained without DP-SGD"
            throw ValidationError("\(flags.isEmpty ? "DP-SGD" : flags): the run saved in \(checkpointPath) \(has), which cannot change on resume "
                                  + "(start a new run instead).")
        }
    }

    /// The free settings as given (those that are not part of the
    /// configuration or the checkpoint policy), for config.json and
    /// --print-config; a flag that is off is left out (a settings file's
    /// `false` would be --no-FLAG, which only inverted flags have).
    var freeSettings: [String: any Sendable] {
        Dictionary(uniqueKeysWithValues: Settings.all.compactMap { setting in setting.given?(self).map { (setting.key, $0) } })
    }

    /// Refuses a flag given where it cannot change anything, naming the flag it needs
    /// (as --plateau-factor without --lr-schedule plateau is): --monitor and
    /// --min-delta choose among epochs by the validation split; --shuffle-window
    /// sizes the windows of a block shuffle.
    func refuseFlagsThatCannotAct(configuration: TrainingConfiguration, hasValidation: Bool) throws {
        let validationSplit = "a validation split (\(Settings["validationFraction"].flag) f, or a dataset with its own /validation)"
        // Given with a value other than the default (which a run's config.json records whatever the run).
        let needs: [(setting: Setting, given: Bool, needs: String, present: Bool)] = [
            (Settings["monitor"], validation.monitor.map { $0 != fresh.monitor } ?? false, validationSplit, hasValidation),
            (Settings["minDelta"], validation.minDelta.map { $0 != fresh.minDelta } ?? false, validationSplit, hasValidation),
            (Settings["shuffleWindow"], sampling.shuffleWindow.map { $0 != fresh.blockShuffle.window } ?? false,
             "\(Settings["shuffleBlocks"].flag) N (a block shuffle)", configuration.blockShuffle.isActive),
        ]
        for flag in needs where flag.given && !flag.present {
            throw ValidationError("\(flag.setting.flag) cannot act here: it needs \(flag.needs).")
        }
    }
}
