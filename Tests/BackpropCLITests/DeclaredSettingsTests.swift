import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// Every setting of a run declared once in `TrainingConfiguration.settings`
/// gets, without a line of its own anywhere else: a flag of `train` that sets
/// it, the refusal of values outside its domain by name, its key in
/// config.json and --print-config, a checkpoint that keeps it, and a resume
/// that holds it to its rule. The cases come from the declarations: a new
/// numeric setting is covered by these tests as it is declared.
struct DeclaredSettingsTests {
    let directory = temporaryDirectory("declared")
    let executable = backpropExecutable()

    /// A value inside `domain`, another inside it, and values outside it, as flags write them.
    static func examples(_ domain: SettingDomain) -> (inside: String, other: String, outside: [String]) {
        switch domain {
        case .any: return ("1", "2", [])
        case .positive: return ("0.25", "0.5", ["0", "-1", "nan", "inf"])
        case .nonNegative: return ("0.25", "0.5", ["-1", "nan", "inf"])
        case .fraction: return ("0.25", "0.5", ["1", "-0.5", "nan"])
        case .openUnit: return ("0.25", "0.5", ["0", "1", "nan"])
        case .probability: return ("0.25", "0.5", ["0", "1.5", "nan"])
        case .atLeast(let bound): return ("\(bound + 1)", "\(bound + 2)", ["\(bound - 1)"])
        case .wholeRange(let low, let high): return ("\(low + 1)", "\(low + 2)", ["\(low - 1)", "\(high + 1)"])
        }
    }

    /// The settings these tests cover: every one whose value is a number.
    static let numeric = TrainingConfiguration.settings.filter { $0.valueType == Int.self || $0.valueType == Double.self }.map(\.name)

    /// The flag of a declaration.
    static func flag(_ name: String) -> String {
        let setting = TrainingConfiguration.setting(named: name)!
        return "--" + (setting.flag ?? name.reduce(into: "") { $0 += $1.isUppercase ? "-" + $1.lowercased() : String($1) })
    }

    static let model = ["--data", CLITests.sample, "--layers", "784,16,10", "--batch-size", "100", "--workers", "2"]

    /// What a setting cannot act without besides its declared requirement (which gives its
    /// companion itself: `--optimizer adam` for --beta1): distillation needs a teacher
    /// ("TEACHER": one this test makes) and its weight; early stopping, the plateau and the
    /// monitor's least change a validation split; DP-SGD's σ and δ its C; the window a block
    /// shuffle; an SWA start epochs to start in; η_min a larger η.
    static let companions: [String: [String]] = [
        "distillAlpha": ["--teacher", "TEACHER"],
        "temperature": ["--teacher", "TEACHER", "--distill-alpha", "0.5"],
        "swaStart": ["--epochs", "3"],
        "earlyStopping": ["--validation-fraction", "0.2"], "minDelta": ["--validation-fraction", "0.2"],
        "plateauFactor": ["--validation-fraction", "0.2"], "plateauPatience": ["--validation-fraction", "0.2"],
        "dpClip": ["--dp-noise", "1"], "dpNoise": ["--dp-clip", "1"], "dpDelta": ["--dp-clip", "1", "--dp-noise", "1"],
        "shuffleWindow": ["--shuffle-blocks", "10"], "minLr": ["--learning-rate", "0.75"],
    ]

    /// `name`'s companions: its requirement's, then those above, with a teacher made in `directory` where they name one.
    func companions(of name: String) throws -> [String] {
        var flags = Self.companions[name] ?? []
        if let requirement = TrainingConfiguration.setting(named: name)?.requirement, requirement.setting != "shuffleBlocks" {
            flags = [Self.flag(requirement.setting), requirement.values[0]] + flags
        }
        guard flags.contains("TEACHER") else { return flags }
        let teacher = "\(directory)/teacher.h5"
        if !FileManager.default.fileExists(atPath: teacher) {
            let member = try BackpropTestSupport.run(executable, ["train"] + Self.model + ["--epochs", "1", "--run-dir", "member"], in: directory)
            try #require(member.status == 0, "\(member.standardError)")
            let made = try BackpropTestSupport.run(executable, ["ensemble", "--checkpoints", "member/model.h5", "--output", teacher], in: directory)
            try #require(made.status == 0, "\(made.standardError)")
        }
        return flags.map { $0 == "TEACHER" ? teacher : $0 }
    }

    @Test("each numeric setting: its flag sets it in the checkpoint and config.json (which --config accepts back), --print-config shows it, and a resume holds it to its rule",
          arguments: numeric)
    func flagRecordAndResume(name: String) throws {
        let setting = try #require(TrainingConfiguration.setting(named: name))
        let flag = Self.flag(name)
        let (value, other, _) = Self.examples(setting.domain)
        let run = "run-\(name)"
        let companions = try companions(of: name)
        let epochs = companions.contains("--epochs") || name == "epochs" ? [] : ["--epochs", "1"]
        let trained = try BackpropTestSupport.run(executable, ["train"] + Self.model + epochs + ["--run-dir", run] + companions + [flag, value],
                                                  in: directory)
        try #require(trained.status == 0, "\(trained.standardError)")
        let checkpoint = try Checkpoint.load(from: "\(directory)/\(run)/model.h5")
        let stored = try #require(setting.value(in: checkpoint.configuration), "\(name) unset in the checkpoint")
        #expect("\(stored)" == value || "\(stored)" == "\(Double(value) ?? 0)", "\(name): \(stored)")
        let recorded = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(run)/config.json"))) as? [String: Any]
        #expect((recorded?[String(flag.dropFirst(2))] as? NSNumber)?.doubleValue == Double(value), "\(String(describing: recorded))")
        let printed = try BackpropTestSupport.run(executable, ["train"] + Self.model + companions + [flag, value, "--print-config", "--format", "json"],
                                                  in: directory)
        #expect(printed.standardOutput.contains("\"\(flag.dropFirst(2))\""), "\(printed.standardOutput)")
        // A run's config.json is always accepted back by --config, as the same settings.
        let again = try BackpropTestSupport.run(executable, ["train", "--config", "\(run)/config.json", "--print-config", "--format", "json"],
                                                in: directory)
        #expect(again.status == 0 && again.standardOutput.contains("\"\(flag.dropFirst(2))\" : \(value)"), "\(name): \(again.standardError)")
        guard setting.rule != .free else { return }
        let resumed = try BackpropTestSupport.run(executable, ["train", "--resume", run, flag, other], in: directory)
        #expect(resumed.status != 0 && resumed.standardError.contains(flag), "\(name): \(resumed.standardError)")
        if setting.rule == .overridable {
            #expect(resumed.standardError.contains("--override"), "\(resumed.standardError)")
        }
    }

    @Test("each numeric setting refuses every value outside its domain by name, with exit 64, before anything is written",
          arguments: numeric.flatMap { name in examples(TrainingConfiguration.setting(named: name)!.domain).outside.map { (name, $0) } })
    func outsideDomain(name: String, value: String) throws {
        let setting = try #require(TrainingConfiguration.setting(named: name))
        let flag = Self.flag(name)
        let result = try BackpropTestSupport.run(executable, ["train"] + Self.model + ["\(flag)=\(value)", "--run-dir", "refused"], in: directory)
        #expect(result.status == 64 && result.standardError.split(separator: "\n").count == 1, "\(result.standardError)")
        #expect(result.standardError.contains(flag) && result.standardError.contains(setting.domain.description), "\(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/refused"))
    }
}
