// A hyperparameter search, as a sweep file declares it: the base settings,
// the space (grid, or random draws keyed by the sweep's seed and the trial's
// number), and an optional successive-halving schedule. Everything here is a
// pure function of the file: which trials there are, what each one sets, and
// which are promoted from the results, so a sweep gives the same table
// however many trials run at once and in whatever order they finish.
import Foundation
import Yams

/// A search's settings: `SettingsFile`'s keys, the space, the budget.
public struct SweepPlan: Sendable, Equatable {
    /// One dimension of the space.
    public enum Dimension: Sendable, Equatable {
        /// One of these values (as settings-file values).
        case choice([SettingValue])
        /// Uniform on [low, high].
        case uniform(Double, Double)
        /// log x uniform on [log low, log high].
        case logUniform(Double, Double)
        /// A whole number, uniform on low … high.
        case wholeUniform(Int, Int)
    }

    /// The base settings every trial starts from (a settings file's keys and values).
    public let base: [(key: String, value: SettingValue)]
    /// The searched settings, by key, in key order.
    public let space: [(key: String, dimension: Dimension)]
    /// Every combination of the choices (grid), or `trials` draws (random).
    public let isGrid: Bool
    public let trialCount: Int
    public let seed: UInt64
    /// Successive halving: the epochs of each rung, ascending; empty: every trial trains the base's epochs.
    public let rungEpochs: [Int]
    /// η: a rung keeps the best 1/η of its trials (at least one).
    public let keep: Int

    public init(base: [(key: String, value: SettingValue)], space: [(key: String, dimension: Dimension)], isGrid: Bool,
                trialCount: Int, seed: UInt64, rungEpochs: [Int], keep: Int) {
        (self.base, self.space, self.isGrid, self.trialCount, self.seed, self.rungEpochs, self.keep) =
            (base, space, isGrid, trialCount, seed, rungEpochs, keep)
    }

    public static func == (a: SweepPlan, b: SweepPlan) -> Bool {
        a.base.map(\.key) == b.base.map(\.key) && a.base.map(\.value) == b.base.map(\.value)
            && a.space.map(\.key) == b.space.map(\.key) && a.space.map(\.dimension) == b.space.map(\.dimension)
            && (a.isGrid, a.trialCount, a.seed, a.rungEpochs, a.keep) == (b.isGrid, b.trialCount, b.seed, b.rungEpochs, b.keep)
    }

    /// What the command line says of a key: nil when it may be searched, else why not.
    public typealias KeyCheck = (String) -> String?
    /// What the command line says of a value of a key: nil when it is valid, else why not.
    public typealias ValueCheck = (String, SettingValue) -> String?

    /// The plan the sweep file at `path` declares.
    /// - Parameters:
    ///   - searchable: why a key cannot be searched (unknown, or a setting that changes no result), or nil.
    ///   - valid: why a value is not one a key takes (its type or domain), or nil.
    /// - Throws: `SettingsFileError` naming the file and the key at fault.
    public static func read(from path: String, searchable: KeyCheck, valid: ValueCheck) throws(SettingsFileError) -> SweepPlan {
        func refuse(_ reason: String) -> SettingsFileError { SettingsFileError(path: path, reason: reason) }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw refuse("cannot read the sweep file.")
        }
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text), node.mapping != nil else {
                throw refuse("is not a mapping of a sweep (base, space, search, trials, seed, halving).")
            }
            root = node
        } catch let error as SettingsFileError {
            throw error
        } catch {
            throw refuse("is not YAML or JSON: \(error)")
        }
        var budget = SettingsFile.valueLimit
        if let reason = SettingsFile.check(root, depth: 0, budget: &budget) { throw refuse(reason) }
        let mapping = root.mapping!
        let known = ["base", "space", "search", "trials", "seed", "halving"]
        for key in mapping.keys.compactMap(\.string) where !known.contains(key) {
            throw refuse("key \"\(key)\": not a part of a sweep (\(known.joined(separator: ", "))).")
        }
        func value(_ key: String) -> Node? { mapping[Node(key)] }

        // The base: a settings file's mapping.
        var base: [(key: String, value: SettingValue)] = []
        if let node = value("base") {
            guard let entries = node.mapping else { throw refuse("key \"base\": expected a mapping of settings, found \(SettingValue(node).found).") }
            for (key, entry) in entries {
                guard let name = key.string else { throw refuse("key \"base\": a key is not a setting's name.") }
                let setting = SettingValue(entry)
                if let reason = valid(name, setting) { throw refuse("base: key \"\(name)\": \(reason)") }
                base.append((name, setting))
            }
        }
        base.sort { $0.key < $1.key }

        // The space.
        guard let spaceNode = value("space"), let entries = spaceNode.mapping, !entries.isEmpty else {
            throw refuse("key \"space\": the search space is empty; give at least one setting, e.g. learning-rate: {log-uniform: [0.01, 0.3]}.")
        }
        var space: [(key: String, dimension: Dimension)] = []
        for (key, entry) in entries {
            guard let name = key.string else { throw refuse("key \"space\": a key is not a setting's name.") }
            if let reason = searchable(name) { throw refuse("space: key \"\(name)\": \(reason)") }
            let dimension = try self.dimension(entry, key: name, valid: valid, refuse: refuse)
            space.append((name, dimension))
        }
        space.sort { $0.key < $1.key }

        // Grid or random, how many, the seed.
        let search = value("search")?.string ?? "random"
        guard ["grid", "random"].contains(search) else { throw refuse("key \"search\": expected grid or random, found \(search).") }
        let seed = try value("seed").map { node throws(SettingsFileError) -> UInt64 in
            guard let text = node.string, let seed = UInt64(text) else { throw refuse("key \"seed\": expected a whole number ≥ 0.") }
            return seed
        } ?? 0
        let isGrid = search == "grid"
        var trialCount: Int
        if isGrid {
            trialCount = 1
            for (key, dimension) in space {
                guard case .choice(let values) = dimension else {
                    throw refuse("space: key \"\(key)\": a grid searches choices only; give a list of values.")
                }
                trialCount *= values.count
                guard trialCount <= 100_000 else { throw refuse("key \"space\": the grid has more than 100,000 trials.") }
            }
        } else {
            guard let node = value("trials"), let text = node.string, let count = Int(text), (1...100_000).contains(count) else {
                throw refuse("key \"trials\": a random search needs the number of trials, a whole number in 1 … 100000.")
            }
            trialCount = count
        }
        if isGrid, let node = value("trials") {
            guard Int(node.string ?? "") == trialCount else {
                throw refuse("key \"trials\": the grid has \(trialCount) trials; leave trials out or give that number.")
            }
        }

        // Successive halving.
        var rungEpochs: [Int] = []
        var keep = 3
        if let node = value("halving") {
            guard let halving = node.mapping else { throw refuse("key \"halving\": expected a mapping with epochs and keep.") }
            guard let epochs = halving[Node("epochs")]?.sequence?.map({ Int($0.string ?? "") }), !epochs.isEmpty,
                  epochs.allSatisfy({ ($0 ?? 0) >= 1 }) else {
                throw refuse("key \"halving\": epochs must be a list of whole numbers ≥ 1, one a rung, e.g. [1, 3, 9].")
            }
            rungEpochs = epochs.map { $0! }
            guard zip(rungEpochs, rungEpochs.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw refuse("key \"halving\": the rungs' epochs must grow, e.g. [1, 3, 9]; found \(rungEpochs).")
            }
            if let η = halving[Node("keep")] {
                guard let k = Int(η.string ?? ""), k >= 2 else { throw refuse("key \"halving\": keep must be a whole number ≥ 2 (η: a rung keeps the best 1/η).") }
                keep = k
            }
            for key in halving.keys.compactMap(\.string) where !["epochs", "keep"].contains(key) {
                throw refuse("key \"halving\": \"\(key)\" is not a part of it (epochs, keep).")
            }
            if let epochs = base.first(where: { $0.key == "epochs" }) {
                throw refuse("base: key \"epochs\": the halving's rungs set the epochs (found \(epochs.value.found)); leave it out.")
            }
            var survivors = trialCount
            for _ in rungEpochs.dropLast() { survivors = max(1, survivors / keep) }
            guard trialCount >= 2 || rungEpochs.count == 1 else {
                throw refuse("key \"halving\": \(rungEpochs.count) rungs cannot halve a single trial; give more trials or one rung.")
            }
            _ = survivors
        }
        return SweepPlan(base: base, space: space, isGrid: isGrid, trialCount: trialCount, seed: seed, rungEpochs: rungEpochs, keep: keep)
    }

    /// A dimension from its node: a list (choice), or a mapping of one kind.
    private static func dimension(_ node: Node, key: String, valid: ValueCheck,
                                  refuse: (String) -> SettingsFileError) throws(SettingsFileError) -> Dimension {
        func check(_ value: SettingValue) throws(SettingsFileError) {
            if let reason = valid(key, value) { throw refuse("space: key \"\(key)\": \(reason)") }
        }
        if let list = node.sequence {
            guard !list.isEmpty else { throw refuse("space: key \"\(key)\": the choice is empty.") }
            let values = list.map(SettingValue.init)
            for value in values { try check(value) }
            return .choice(values)
        }
        guard let mapping = node.mapping, mapping.count == 1, let (kindNode, range) = mapping.first, let kind = kindNode.string else {
            throw refuse("space: key \"\(key)\": expected a list of values or one of {choice: […]}, {uniform: [low, high]}, "
                         + "{log-uniform: [low, high]}, {int-uniform: [low, high]}.")
        }
        if kind == "choice" { return try dimension(range, key: key, valid: valid, refuse: refuse) }
        guard let bounds = range.sequence, bounds.count == 2 else {
            throw refuse("space: key \"\(key)\": \(kind) needs [low, high].")
        }
        let (lowValue, highValue) = (SettingValue(bounds[0]), SettingValue(bounds[1]))
        try check(lowValue)
        try check(highValue)
        switch kind {
        case "uniform", "log-uniform":
            guard let low = lowValue.number, let high = highValue.number, low < high else {
                throw refuse("space: key \"\(key)\": \(kind) needs numbers low < high.")
            }
            if kind == "uniform" { return .uniform(low, high) }
            guard low > 0 else { throw refuse("space: key \"\(key)\": log-uniform needs low > 0.") }
            return .logUniform(low, high)
        case "int-uniform":
            guard case .integer(let a) = lowValue, case .integer(let b) = highValue, let low = Int(a), let high = Int(b), low < high else {
                throw refuse("space: key \"\(key)\": int-uniform needs whole numbers low < high.")
            }
            return .wholeUniform(low, high)
        default:
            throw refuse("space: key \"\(key)\": \(kind) is not a distribution (choice, uniform, log-uniform, int-uniform).")
        }
    }

    // MARK: - Trials

    /// The settings trial `trial` (from 0) searches, by key: the grid's
    /// combination (the last key varying fastest), or draws keyed by
    /// (seed, trial, key's place), the same whichever trials run beside it.
    public func settings(ofTrial trial: Int) -> [(key: String, value: SettingValue)] {
        precondition(trial >= 0 && trial < trialCount, "trial \(trial) of \(trialCount)")
        if isGrid {
            var rest = trial
            var values: [(String, SettingValue)] = []
            for (key, dimension) in space.reversed() {
                guard case .choice(let choices) = dimension else { preconditionFailure("a grid of choices") }
                values.append((key, choices[rest % choices.count]))
                rest /= choices.count
            }
            return values.reversed()
        }
        return space.enumerated().map { place, entry in
            let u = Self.unit(seed: seed, trial: trial, place: place)
            switch entry.dimension {
            case .choice(let values): return (entry.key, values[min(Int(u * Double(values.count)), values.count - 1)])
            case .uniform(let low, let high): return (entry.key, .real("\(low + u * (high - low))"))
            case .logUniform(let low, let high): return (entry.key, .real("\(exp(log(low) + u * (log(high) - log(low))))"))
            case .wholeUniform(let low, let high):
                return (entry.key, .integer("\(Self.whole(u, from: low, to: high))"))
            }
        }
    }

    /// The whole number in low … high that `u` in [0, 1) picks, each with
    /// probability 1/(high − low + 1): low + ⌊u·(high − low + 1)⌋, in
    /// arithmetic that cannot overflow whatever the bounds (the count of
    /// values is computed in UInt64, the product in Double, clamped).
    public static func whole(_ u: Double, from low: Int, to high: Int) -> Int {
        let width = UInt64(bitPattern: Int64(high &- low))  // high − low ≥ 0, as an unsigned count
        let scaled = u * (Double(width) + 1)
        let offset = min(scaled < 0x1p64 ? UInt64(scaled) : UInt64.max, width)
        return low &+ Int(bitPattern: UInt(offset))
    }

    /// A number in [0, 1) from (seed, trial, place): SplitMix64's finaliser over the three, 53 bits.
    static func unit(seed: UInt64, trial: Int, place: Int) -> Double {
        func mix(_ z: UInt64) -> UInt64 {
            var z = z &+ 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let bits = mix(mix(mix(seed) ^ UInt64(trial)) ^ UInt64(place))
        return Double(bits >> 11) * 0x1p-53
    }

    /// Successive halving's promotion from a rung: the best `max(1, count / keep)`
    /// of `scores` (trial → its score at the rung; `higherIsBetter` says which
    /// way), ties to the lower trial number: a function of the scores alone.
    /// A trial without a score (NaN) is never promoted.
    public static func promoted(_ scores: [Int: Double], keep: Int, higherIsBetter: Bool) -> [Int] {
        let ranked = scores.filter { !$0.value.isNaN }.sorted { a, b in
            if a.value != b.value { return higherIsBetter ? a.value > b.value : a.value < b.value }
            return a.key < b.key
        }
        return ranked.prefix(max(1, scores.count / keep)).map(\.key).sorted()
    }
}

extension SettingValue {
    /// The value as a number, when it is one.
    public var number: Double? {
        switch self {
        case .integer(let text), .real(let text): return Double(text)
        default: return nil
        }
    }

    /// The value as YAML writes it on one line (a settings file's value).
    public var yaml: String {
        switch self {
        case .boolean(let on): return on ? "true" : "false"
        case .integer(let text), .real(let text): return text
        case .string(let text):
            let escaped = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            return "\"\(escaped)\""
        case .list(let values): return "[" + values.map(\.yaml).joined(separator: ", ") + "]"
        case .mapping, .null: return "null"
        }
    }
}
