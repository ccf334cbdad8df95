/// The validation split held out of a training set: the data that chooses
/// (the best checkpoint, when to stop, when to lower η), so that the test
/// split never does.
extension Dataset {
    /// The stream of the split's keys ("VALID").
    public static let validationStream: UInt64 = 0x56_414C_4944

    /// A seeded, stratified hold-out: `fraction` of the samples of each class
    /// (of all samples, for regression targets) as the validation split, the
    /// rest to train on, both in the dataset's order.
    ///
    /// Sample n's key is KeyedRandom(seed, `validationStream`, n); within a
    /// class the samples of the smallest keys are held out, as many as the
    /// class's share f·n_c rounded by largest remainder, so that the split
    /// holds round(f·N) samples and each class is within one sample of its
    /// exact share. A pure function of (seed, f, the labels): the same on any
    /// machine and for any worker or rank count.
    /// - Throws: `TrainingError.invalidSetting("validationFraction", …)` when
    ///   either part would be empty, or f is not in (0, 1).
    public func split(validationFraction fraction: Double, seed: UInt64) throws(TrainingError) -> (train: Dataset, validation: Dataset) {
        let validation = try Self.validationRows(labels: labels, count: count, fraction: fraction, seed: seed)
        var isHeld = [Bool](repeating: false, count: count)
        for n in validation { isHeld[n] = true }
        return (subset((0..<count).filter { !isHeld[$0] }), subset(validation))
    }

    public func holdOut(_ fraction: Double, seed: UInt64) throws(TrainingError) -> (train: any RowSource, validation: any RowSource) {
        try split(validationFraction: fraction, seed: seed)
    }

    /// The samples `split(validationFraction:seed:)` holds out, ascending: a
    /// function of the labels alone, so that an importer that never holds the
    /// features whole holds out the same ones.
    /// - Parameters:
    ///   - labels: the class labels; nil for regression targets (one stratum).
    ///   - count: the samples, N.
    ///   - fraction: f, in (0, 1).
    ///   - seed: keys the samples.
    /// - Throws: `TrainingError.invalidSetting("validationFraction", …)`, as `split` does.
    public static func validationRows(labels: [UInt8]?, count: Int, fraction: Double, seed: UInt64) throws(TrainingError) -> [Int] {
        guard fraction.isFinite, fraction > 0, fraction < 1 else {
            throw .outOfDomain("validationFraction", value: "\(fraction)", domain: .openUnit)
        }
        let held = Int((fraction * Double(count)).rounded())
        guard held >= 1, held < count else {
            throw .invalidSetting("validationFraction", value: "\(fraction)",
                                  reason: "it holds out \(held) of the \(count) training samples; both parts must keep at least one")
        }
        let strata: [[Int]]
        if let labels {
            var members = Array(repeating: [Int](), count: Int(labels.max() ?? 0) + 1)
            for (n, label) in labels.enumerated() { members[Int(label)].append(n) }
            strata = members
        } else {
            strata = [Array(0..<count)]
        }
        let quotas = largestRemainder(total: held, shares: strata.map { fraction * Double($0.count) })
        let key = KeyedRandom.key(seed: seed, stream: validationStream, step: 0)
        var validation: [Int] = []
        for (members, quota) in zip(strata, quotas) {
            let ranked = members.map { (KeyedRandom.bits(key: key, index: UInt64($0)), $0) }.sorted { $0 < $1 }
            validation += ranked.prefix(quota).map(\.1)
        }
        return validation.sorted()
    }

    /// Whole numbers summing to `total`, each the floor of its share or one
    /// more: the largest fractional parts get the extra ones (ties: the lower index).
    static func largestRemainder(total: Int, shares: [Double]) -> [Int] {
        var quotas = shares.map { Int($0.rounded(.down)) }
        let order = shares.indices.sorted { (shares[$0] - shares[$0].rounded(.down), -$0) > (shares[$1] - shares[$1].rounded(.down), -$1) }
        for i in order.prefix(max(0, total - quotas.reduce(0, +))) { quotas[i] += 1 }
        return quotas
    }
}
