import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// Every setting declared once in `TrainingConfiguration.fields` gets,
/// without a line of its own anywhere else: a flag of `train` (its name in
/// kebab case) that sets it, the refusal of values outside its domain by
/// name, its key in config.json and --print-config, a checkpoint that keeps
/// it, and a resume that holds it to its rule. The cases come from the
/// declarations: a new setting is covered by these tests as it is declared.
struct DeclaredSettingsTests {
    let directory = temporaryDirectory("declared")
    let executable = backpropExecutable()

    /// A value inside `domain` and values outside it, as flags write them.
    static func examples(_ domain: SettingDomain) -> (inside: String, outside: [String]) {
        switch domain {
        case .any: return ("1", [])
        case .positive: return ("0.25", ["0", "-1", "nan", "inf"])
        case .nonNegative: return ("0.25", ["-1", "nan", "inf"])
        case .fraction: return ("0.25", ["1", "-0.5", "nan"])
        case .openUnit: return ("0.25", ["0", "1", "nan"])
        case .probability: return ("0.25", ["0", "1.5", "nan"])
        case .atLeast(let bound): return ("\(bound + 1)", ["\(bound - 1)"])
        case .wholeRange(let low, let high): return ("\(low)", ["\(low - 1)", "\(high + 1)"])
        }
    }

    /// The flag of a declaration: its name in kebab case.
    static func flag(_ field: any DeclaredSetting) -> String {
        "--" + field.name.reduce(into: "") { $0 += $1.isUppercase ? "-" + $1.lowercased() : String($1) }
    }

    static let model = ["--data", CLITests.sample, "--layers", "784,16,10", "--batch-size", "100", "--workers", "2"]

    /// What a setting cannot act without (the validation refuses it alone, naming what it needs):
    /// distillation's settings need a teacher ("TEACHER": one this test makes) and its weight.
    /// An SWA start must come within the run's epochs (a flag that cannot act is refused).
    static let companions: [String: [String]] = [
        "distillAlpha": ["--teacher", "TEACHER"],
        "temperature": ["--teacher", "TEACHER", "--distill-alpha", "0.5"],
        "swaStart": ["--epochs", "2"],
    ]

    /// `name`'s companions, with a teacher made in `directory` where they name one.
    func companions(of name: String) throws -> [String] {
        let flags = Self.companions[name] ?? []
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

    @Test("each declared setting: its flag sets it in the checkpoint and config.json, --print-config shows it, and a resume may not change a fixed one",
          arguments: TrainingConfiguration.fields.map { $0.name })
    func flagRecordAndResume(name: String) throws {
        let field = try #require(TrainingConfiguration.field(named: name))
        let (flag, value) = (Self.flag(field), Self.examples(field.domain).inside)
        let run = "run-\(name)"
        let companions = try companions(of: name)
        let trained = try BackpropTestSupport.run(executable, ["train"] + Self.model + ["--epochs", "1", "--run-dir", run] + companions + [flag, value],
                                                  in: directory)
        try #require(trained.status == 0, "\(trained.standardError)")
        let checkpoint = try Checkpoint.load(from: "\(directory)/\(run)/model.h5")
        #expect(field.value(in: checkpoint.configuration).map { "\($0)" } == "\(Double(value) ?? 0)" || field.value(in: checkpoint.configuration).map { "\($0)" } == value)
        let recorded = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(run)/config.json"))) as? [String: Any]
        #expect((recorded?[String(flag.dropFirst(2))] as? NSNumber)?.doubleValue == Double(value))
        let printed = try BackpropTestSupport.run(executable, ["train"] + Self.model + companions + [flag, value, "--print-config", "--format", "json"],
                                                  in: directory)
        #expect(printed.standardOutput.contains("\"\(flag.dropFirst(2))\""), "\(printed.standardOutput)")
        if field.rule == .fixed {
            let other = Self.examples(field.domain).inside == "0.25" ? "0.5" : "\(Int(value)! + 1)"
            let resumed = try BackpropTestSupport.run(executable, ["train", "--resume", run, flag, other], in: directory)
            #expect(resumed.status != 0 && resumed.standardError.contains(flag), "\(resumed.standardError)")
        }
    }

    @Test("each declared setting refuses every value outside its domain by name, with exit 64, before anything is written",
          arguments: TrainingConfiguration.fields.flatMap { field in Self.examples(field.domain).outside.map { (field.name, $0) } })
    func outsideDomain(name: String, value: String) throws {
        let field = try #require(TrainingConfiguration.field(named: name))
        let flag = Self.flag(field)
        let result = try BackpropTestSupport.run(executable, ["train"] + Self.model + ["\(flag)=\(value)", "--run-dir", "refused"], in: directory)
        #expect(result.status == 64 && result.standardError.split(separator: "\n").count == 1, "\(result.standardError)")
        #expect(result.standardError.contains(flag) && result.standardError.contains(field.domain.description), "\(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/refused"))
    }
}
