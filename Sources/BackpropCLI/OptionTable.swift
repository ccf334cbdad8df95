import ArgumentParser
import BackpropConfig
import BackpropCore
import Foundation

// Every option of a command, with its flag, the property that holds it and
// the type of value a settings file must give it, derived from the command's
// own declarations: its stored properties (`Mirror`, in declaration order,
// option groups in place: the order the parser reads them in). The flag of a
// property is the declared setting's of its name (`Settings.declared`), else
// its name in kebab case, as every option here is named; the type is its
// value's (an enumeration's choices from its cases). A new option gets its
// row, and a settings file's check, with no line written here.

/// One option of a command.
struct OptionRow {
    /// The long name without its dashes: the key in a settings file.
    let key: String
    /// The property's name ("learningRate").
    let property: String
    /// What a settings file must give it; nil for a type that declares none (`SettingValueType`).
    let type: SettingType?
    /// The numbers it takes: its setting's (`Declared.domain`), or its command's or group's own (`OptionDomains`); nil for any.
    let domain: SettingDomain?
}

enum OptionTable {
    /// The options of `command`, in the order of its help.
    static func rows(of command: any ParsableCommand.Type) -> [OptionRow] {
        properties(of: command.init()).compactMap { property, argument, own in
            let key = String(Settings.flag(ofProperty: property).dropFirst(2))
            let domain = own ?? Settings.declared.first { $0.key == key }?.domain
            switch argument {
            case .positional: return nil
            case .flag: return OptionRow(key: key, property: property, type: .boolean, domain: nil)
            case .option(let valueType): return OptionRow(key: key, property: property, type: settingType(of: valueType), domain: domain)
            }
        }
    }

    /// What a settings file must give an option of `type`: an enumeration's
    /// choices, a list of them for a repeated one, else the type's own (`SettingValueType`).
    static func settingType(of type: Any.Type) -> SettingType? {
        func choices(_ type: Any.Type) -> [String]? {
            (type as? any ExpressibleByArgument.Type).map { $0.allValueStrings }.flatMap { $0.isEmpty ? nil : $0 }
        }
        if let choices = choices(type) { return .choice(choices) }
        if let element = (type as? any RepeatedValue.Type)?.elementType, let choices = choices(element) {
            return .list(of: .choice(choices), "a list of " + SettingType.choice(choices).description)
        }
        return (type as? any SettingValueType.Type)?.settingType
    }

    /// The rows of the subcommand that `arguments` (a command line after the program's name) runs.
    static func rows(for arguments: [String]) -> [OptionRow] {
        guard let name = arguments.first(where: { !$0.hasPrefix("-") }),
              let command = Backprop.configuration.subcommands.first(where: { $0._commandName == name }) else { return [] }
        return rows(of: command)
    }

    /// `arguments` with each negative number given to an option joined to
    /// it (`--learning-rate -1` → `--learning-rate=-1`): the parser takes
    /// "-1" for a flag, and would say the value is missing, where the value's
    /// own check has something true to say.
    static func joiningNegativeValues(_ arguments: [String]) -> [String] {
        let options = Set(rows(for: arguments).filter { $0.type.map { $0.description != SettingType.boolean.description } ?? true }
            .map { "--" + $0.key })
        var joined: [String] = []
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            if argument == "--" { return joined + arguments[index...] }
            if options.contains(argument), index + 1 < arguments.endIndex,
               arguments[index + 1].wholeMatch(of: /-([0-9.].*|inf|infinity|nan)/.ignoresCase()) != nil {
                joined.append(argument + "=" + arguments[index + 1])
                index += 2
            } else {
                joined.append(argument)
                index += 1
            }
        }
        return joined
    }

    /// What one stored property of a command holds.
    enum Argument {
        case positional
        case flag
        case option(Any.Type)

        /// The parser's word for it.
        var kind: String {
            switch self {
            case .positional: "positional"
            case .flag: "flag"
            case .option: "option"
            }
        }
    }

    /// `arguments`' positional arguments, options and flags in declaration order, its option groups' in place,
    /// each with the domain its command or group declares for it (`OptionDomains`).
    private static func properties(of arguments: any ParsableArguments) -> [(String, Argument, SettingDomain?)] {
        let domains = (type(of: arguments) as? any OptionDomains.Type)?.domains ?? [:]
        return Mirror(reflecting: arguments).children.flatMap { child -> [(String, Argument, SettingDomain?)] in
            let name = String((child.label ?? "").dropFirst())
            switch child.value {
            case let group as any ArgumentGroup: return properties(of: type(of: group).groupType.init())
            case let option as any TypedOption: return [(name, .option(option.valueType), domains[name])]
            case is any FlagArgument: return [(name, .flag, nil)]
            case is any PositionalArgument: return [(name, .positional, nil)]
            default: return []
            }
        }
    }
}

/// An array, seen through `Any`: the type of its elements.
protocol RepeatedValue { static var elementType: Any.Type { get } }
extension Array: RepeatedValue { static var elementType: Any.Type { Element.self } }

/// An option group, seen through `Any`: the type of arguments it holds.
protocol ArgumentGroup { static var groupType: any ParsableArguments.Type { get } }
extension OptionGroup: ArgumentGroup { static var groupType: any ParsableArguments.Type { Value.self } }

/// An option, seen through `Any`: the type of its value (an Optional's wrapped type).
protocol TypedOption { var valueType: Any.Type { get } }
extension Option: TypedOption {
    var valueType: Any.Type { (Value.self as? any OptionalValue.Type)?.wrappedType ?? Value.self }
}

/// A flag, seen through `Any`.
protocol FlagArgument {}
extension Flag: FlagArgument {}

/// A positional argument, seen through `Any`.
protocol PositionalArgument {}
extension Argument: PositionalArgument {}

/// A type of option value, with what a settings file must give for it.
protocol SettingValueType { static var settingType: SettingType { get } }

extension Int: SettingValueType { static var settingType: SettingType { .wholeNumber } }
extension Double: SettingValueType { static var settingType: SettingType { .number } }
extension UInt64: SettingValueType { static var settingType: SettingType { .wholeNumber } }
extension String: SettingValueType { static var settingType: SettingType { .string() } }
extension Array: SettingValueType where Element: SettingValueType {
    static var settingType: SettingType { .list(of: Element.settingType, "a list of " + Element.settingType.description) }
}
extension LayerSizes: SettingValueType {
    static var settingType: SettingType { .list(of: .wholeNumber, "a list of whole numbers (784,256,10)") }
}
extension NumberList: SettingValueType {
    static var settingType: SettingType { .either(.number, .list(of: .number, ""), "a number or a list of numbers") }
}
extension WorkerCounts: SettingValueType {
    static var settingType: SettingType { .either(.wholeNumber, .list(of: .wholeNumber, ""), "a whole number or a list of them") }
}
extension ByteSize: SettingValueType {
    static var settingType: SettingType { .either(.wholeNumber, .string(), "a size (a whole number of bytes, or a string like \"8G\")") }
}
extension WallInterval: SettingValueType {
    static var settingType: SettingType { .either(.number, .string(), "a duration (seconds, or a string like \"10m\")") }
}
extension Augmentation: SettingValueType {
    static var settingType: SettingType { .string("a string (shift=S, flip, both joined by a comma, or none)") }
}
