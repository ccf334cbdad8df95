import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// Core's fit loop (`TrainingLoop`): what it decides from the validation
/// split, the order in which observers hear of it, and that it adds nothing
/// to the bits of the steps.
struct TrainingLoopTests {
    /// Writes down every call, and stops after `stopAfterStep` when given.
    final class Recorder: TrainingObserver {
        var calls: [String] = []
        var epochs: [EpochReport] = []
        var stopAfterStep: Int?

        func didStart(_ loop: TrainingLoop) { calls.append("start") }
        func didStep(_ loop: TrainingLoop, _ step: StepReport) { calls.append("step \(step.step)" + (step.endsEpoch ? " ends epoch" : "")) }
        func willEndEpoch(_ loop: TrainingLoop, _ epoch: inout EpochReport) {
            calls.append("will end \(epoch.record.epoch)")
            epoch.record.extras["seen"] = 1
            epoch.notes.append("noted")
        }
        func didEndEpoch(_ loop: TrainingLoop, _ epoch: EpochReport) {
            calls.append("end \(epoch.record.epoch)")
            epochs.append(epoch)
        }
        func shouldStop(_ loop: TrainingLoop) -> Bool { stopAfterStep == loop.trainer.position.step }
        func didFinish(_ loop: TrainingLoop, _ result: FitResult) { calls.append("finish \(result.reason)") }
    }

    func configuration() -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.sizes = [6, 8, 3]
        c.batchSize = 20
        c.shardSize = 8
        c.epochs = 12
        c.seed = 3
        c.schedule.base = 0.5
        return c
    }

    @Test("without a validation split, fit takes exactly the steps of a plain step loop: the same parameters, optimizer state and losses")
    func fitIsTheStepLoop() throws {
        let dataset = randomDataset(count: 70, featureCount: 6, classCount: 3, seed: 1)
        let c = configuration()
        let plain = try Trainer(configuration: c, dataset: dataset)
        while !plain.isFinished { try plain.step() }
        let fitted = try Trainer(configuration: c, dataset: dataset)
        let recorder = Recorder()
        let result = try TrainingLoop(trainer: fitted, validation: nil).fit(observers: [recorder])
        #expect(result.reason == .finished && result.best == nil && !result.isBest)
        #expect(fitted.network.parameters.map(\.bitPattern) == plain.network.parameters.map(\.bitPattern))
        #expect(result.network.parameters.map(\.bitPattern) == plain.network.parameters.map(\.bitPattern))
        #expect(fitted.optimizer.state == plain.optimizer.state && fitted.history.stepLossDigest == plain.history.stepLossDigest)
        // 4 batches an epoch (70 samples in 20s): the observers hear each step, then the epoch's end.
        #expect(Array(recorder.calls.prefix(8)) == ["start", "step 1", "step 2", "step 3", "step 4 ends epoch", "will end 0", "end 0", "step 5"])
        #expect(recorder.calls.last == "finish finished" && recorder.epochs.count == 12)
        // What an observer adds before the row is logged is in the history.
        #expect(fitted.history.epochs.allSatisfy { $0.extras["seen"] == 1 } && recorder.epochs.allSatisfy { $0.notes == ["noted"] })
    }

    @Test("early stopping ends the run `patience` epochs after the best and restores the best epoch's weights; a plateau lowers η as Keras' ReduceLROnPlateau")
    func earlyStoppingAndPlateau() throws {
        // Random labels: the validation loss soon stops improving.
        let whole = randomDataset(count: 200, featureCount: 6, classCount: 3, seed: 2)
        var c = configuration()
        c.epochs = 100
        c.validationFraction = 0.25
        c.monitor = .validationLoss
        c.earlyStopping = EarlyStopping(patience: 4)
        c.schedule = LearningRateSchedule(base: 0.5, .plateau(factor: 0.5, patience: 2, minimum: 0.01))
        let (train, validation) = try whole.split(validationFraction: c.validationFraction, seed: c.seed)
        let trainer = try Trainer(configuration: c, dataset: train)
        let recorder = Recorder()
        let loop = try TrainingLoop(trainer: trainer, validation: validation)
        let result = try loop.fit(observers: [recorder])
        let losses = recorder.epochs.map(\.record.validationLoss)
        let best = try #require(result.best)
        // The best epoch is the first of the lowest validation loss, and the run stopped `patience` epochs later.
        #expect(result.reason == .stoppedEarly && losses.count == best.epoch + 5 && trainer.position.epoch == best.epoch + 5)
        #expect(best.score == losses.min() && losses.firstIndex(of: losses.min()!) == best.epoch)
        #expect(recorder.epochs.filter(\.isBest).map(\.record.epoch).last == best.epoch && recorder.epochs.last!.stopsEarly)
        // The restored weights are the best epoch's: evaluated again, they give its validation loss.
        #expect(result.isBest)
        let again = try evaluate(result.network, on: validation, workers: 1)
        #expect(again.meanLoss == best.score)
        // Each reduction halves η; the rate each epoch row records is the one after its step.
        let rates = recorder.epochs.map(\.record.learningRate)
        for (epoch, report) in recorder.epochs.enumerated() where report.reducedRate && epoch + 1 < rates.count {
            #expect(rates[epoch + 1] == max(rates[epoch] * 0.5, 0.01))
        }
        #expect(trainer.history.reductions == recorder.epochs.filter(\.reducedRate).count && trainer.history.reductions > 0)
    }

    @Test("an observer's stop ends the loop after the step it saw; fit then resumes where it stopped, to the bits of a run straight through")
    func stopAndContinue() throws {
        let dataset = randomDataset(count: 70, featureCount: 6, classCount: 3, seed: 4)
        let c = configuration()
        let straight = try Trainer(configuration: c, dataset: dataset)
        try TrainingLoop(trainer: straight, validation: nil).fit()
        let stopped = try Trainer(configuration: c, dataset: dataset)
        let recorder = Recorder()
        recorder.stopAfterStep = 6
        let first = try TrainingLoop(trainer: stopped, validation: nil).fit(observers: [recorder])
        #expect(first.reason == .stopRequested && stopped.position.step == 6 && recorder.calls.last == "finish stopRequested")
        let second = try TrainingLoop(trainer: stopped, validation: nil).fit()
        #expect(second.reason == .finished)
        #expect(stopped.network.parameters.map(\.bitPattern) == straight.network.parameters.map(\.bitPattern))
        #expect(stopped.history.stepLossDigest == straight.history.stepLossDigest)
    }

    @Test("early stopping or a plateau schedule without a validation split is refused by name")
    func needsValidation() throws {
        let dataset = randomDataset(count: 70, featureCount: 6, classCount: 3, seed: 5)
        var c = configuration()
        c.earlyStopping = EarlyStopping(patience: 2)
        #expect(throws: TrainingError.self) { try TrainingLoop(trainer: try Trainer(configuration: c, dataset: dataset), validation: nil) }
        c.earlyStopping = nil
        c.schedule = LearningRateSchedule(base: 0.1, .plateau(factor: 0.5, patience: 2, minimum: 0))
        do {
            _ = try TrainingLoop(trainer: try Trainer(configuration: c, dataset: dataset), validation: nil)
            Issue.record("accepted a plateau schedule without a validation split")
        } catch {
            guard case .invalidSetting("lrSchedule", _, _) = error else { Issue.record("\(error)"); return }
        }
    }
}

/// The settings declared in `TrainingConfiguration.settings`, as Core keeps and checks them.
struct DeclaredSettingTests {
    /// A value of `setting`'s type inside its domain, and one outside it (nil where its domain is `.any`).
    static func examples(_ setting: Declared<TrainingConfiguration>) -> (inside: Any, outside: Any?)? {
        let whole: (Int, Int?) = switch setting.domain {
        case .atLeast(let bound): (bound + 1, bound - 1)
        case .wholeRange(let low, _): (low, low - 1)
        default: (1, nil)
        }
        switch setting.valueType {
        case is Int.Type: return (whole.0, whole.1)
        case is Double.Type: return (0.25, setting.domain == .any ? nil : Double.nan)
        case is [Double].Type: return ([0.25, 0.5] + Array(repeating: 0.25, count: 8), setting.domain == .any ? nil : [Double.nan])
        case is Precision.Type: return (Precision.bf16, nil)
        default: return nil
        }
    }

    /// What a setting cannot be valid without: the temperature softens distillation, so it needs α; DP-SGD's σ and δ need its C.
    static let companions: [String: @Sendable (inout TrainingConfiguration) -> Void] = [
        "temperature": { $0.distillAlpha = 0.5 },
        "dpNoise": { $0.privacy = DifferentialPrivacy(clip: 1, noise: 1, delta: 1e-5) },
        "dpDelta": { $0.privacy = DifferentialPrivacy(clip: 1, noise: 1, delta: 1e-5) },
    ]

    @Test("each setting stored by its name survives a checkpoint's JSON and reads as its default from a checkpoint that predates it",
          arguments: TrainingConfiguration.settings.filter { $0.storedKey != nil }.map(\.name))
    func stored(name: String) throws {
        let setting = try #require(TrainingConfiguration.setting(named: name))
        var base = TrainingConfiguration()
        Self.companions[name]?(&base)
        var configuration = base
        #expect(setting.set(try #require(Self.examples(setting)).inside, in: &configuration))
        let json = try JSONEncoder().encode(configuration)
        #expect(try JSONDecoder().decode(TrainingConfiguration.self, from: json) == configuration)
        // A checkpoint written before the setting existed: its key is missing.
        var object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(object.removeValue(forKey: name) != nil, "stored under its name")
        let older = try JSONDecoder().decode(TrainingConfiguration.self, from: try JSONSerialization.data(withJSONObject: object))
        #expect(older == base)
    }

    @Test("each numeric setting with a domain is refused outside it by validate(), by its name, with its domain",
          arguments: TrainingConfiguration.settings.filter { $0.isWritable && $0.domain != .any }.map(\.name))
    func checked(name: String) throws {
        let setting = try #require(TrainingConfiguration.setting(named: name))
        let (_, outside) = try #require(Self.examples(setting), "\(name): a numeric type")
        var configuration = TrainingConfiguration()
        Self.companions[name]?(&configuration)
        #expect(setting.set(try #require(outside), in: &configuration))
        do {
            try configuration.validate()
            Issue.record("validate() accepted \(name) outside \(setting.domain.description)")
        } catch {
            guard case .outOfDomain(let found, _, let domain) = error else { Issue.record("\(error)"); return }
            #expect(found.name == name && domain == setting.domain)
        }
    }

    @Test("every setting's name is unique, and every setting a requirement names is declared")
    func names() {
        let names = TrainingConfiguration.settings.map(\.name)
        #expect(Set(names).count == names.count)
        for setting in TrainingConfiguration.settings {
            if let requirement = setting.requirement { #expect(names.contains(requirement.setting), "\(setting.name)") }
        }
    }
}
