import BackpropCore
import BackpropTestSupport
import Testing

/// The validation split: seeded, stratified, a pure function of (seed, f, labels).
struct ValidationSplitTests {
    /// 1,000 samples whose labels are uneven: class c has about (c + 1)/55 of them.
    static let data: Dataset = {
        // Thresholds 1, 3, 6, …, 55: class c takes the residues n mod 55 in [c(c+1)/2, (c+1)(c+2)/2).
        let thresholds: [Int] = (0..<10).map { c in (c + 1) * (c + 2) / 2 }
        let labels: [UInt8] = (0..<1_000).map { (n: Int) -> UInt8 in UInt8(thresholds.firstIndex { n % 55 < $0 }!) }
        return Dataset(name: "uneven", features: .bytes((0..<10_000).map { UInt8($0 % 251) }, scale: 1), targets: .classes(labels),
                       featureCount: 10)
    }()

    static func counts(_ labels: [UInt8]) -> [Int] {
        var counts = [Int](repeating: 0, count: 10)
        for label in labels { counts[Int(label)] += 1 }
        return counts
    }

    @Test("each class is held out within one sample of its exact share, and the split holds round(f·N)", arguments: [0.1, 0.2, 0.33, 0.5, 0.97])
    func stratified(fraction: Double) throws {
        let (train, validation) = try Self.data.split(validationFraction: fraction, seed: 7)
        #expect(validation.count == Int((fraction * 1_000).rounded()) && train.count + validation.count == 1_000)
        let all = Self.counts(Self.data.labels!), held = Self.counts(validation.labels!)
        for c in 0..<10 {
            #expect(abs(Double(held[c]) - fraction * Double(all[c])) < 1, "class \(c): \(held[c]) of \(all[c])")
        }
    }

    @Test("the parts are disjoint, cover the data, keep its order; the same seed gives the same split, another seed another")
    func partition() throws {
        // Features that name their sample: row n is (n mod 256, n / 256, …).
        let n = 300
        let features = (0..<n).flatMap { [UInt8($0 % 256), UInt8($0 / 256)] }
        let data = Dataset(name: "named", features: .bytes(features, scale: 1), targets: .classes((0..<n).map { UInt8($0 % 3) }),
                           featureCount: 2)
        func indices(_ part: Dataset) -> [Int] {
            guard case .bytes(let bytes, _) = part.features else { return [] }
            return stride(from: 0, to: bytes.count, by: 2).map { Int(bytes[$0]) + 256 * Int(bytes[$0 + 1]) }
        }
        let (train, validation) = try data.split(validationFraction: 0.25, seed: 1)
        let (a, b) = (indices(train), indices(validation))
        #expect(a == a.sorted() && b == b.sorted() && Set(a).isDisjoint(with: b) && (a + b).sorted() == Array(0..<n))
        // Labels travel with their rows.
        #expect(validation.labels! == b.map { UInt8($0 % 3) })
        let again = try data.split(validationFraction: 0.25, seed: 1)
        #expect(indices(again.validation) == b)
        let other = try data.split(validationFraction: 0.25, seed: 2)
        #expect(indices(other.validation) != b)
    }

    @Test("the split is the same on any machine: a pinned hand-checked case")
    func pinned() throws {
        // 12 samples, classes 0,1,2 repeating; f = 0.25 holds out one of each class's four:
        // the member of each class with the smallest key KeyedRandom(3, validationStream, n).
        let data = Dataset(name: "pin", features: .bytes((0..<12).map(UInt8.init), scale: 1), targets: .classes((0..<12).map { UInt8($0 % 3) }),
                           featureCount: 1)
        let (_, validation) = try data.split(validationFraction: 0.25, seed: 3)
        guard case .bytes(let held, _) = validation.features else { Issue.record("bytes"); return }
        let expected = (0..<3).map { c in
            stride(from: c, to: 12, by: 3).min { KeyedRandom.bits(seed: 3, stream: Dataset.validationStream, step: 0, index: UInt64($0))
                < KeyedRandom.bits(seed: 3, stream: Dataset.validationStream, step: 0, index: UInt64($1)) }!
        }.sorted()
        #expect(held.map(Int.init) == expected)
        // And the keys themselves are pinned (SplitMix64 arithmetic only): this value is the same on every machine.
        #expect(KeyedRandom.bits(seed: 3, stream: Dataset.validationStream, step: 0, index: 0) == Self.pinnedKey)
    }

    static let pinnedKey: UInt64 = 9_673_714_509_646_531_756

    @Test("regression targets: f·N samples held out of all of them")
    func regression() throws {
        let data = Dataset(name: "r", features: .floats((0..<40).map(Float.init)), targets: .values((0..<40).map(Float.init), width: 1),
                           featureCount: 1)
        let (train, validation) = try data.split(validationFraction: 0.3, seed: 5)
        #expect(validation.count == 12 && train.count == 28)
    }

    @Test("a run's parts: the fraction held out, else the stored split (or none); a fraction beside a stored split is refused by name")
    func validationParts() throws {
        let stored = try Self.data.split(validationFraction: 0.5, seed: 1).validation
        let held = try Self.data.validationParts(fraction: 0.2, seed: 7, stored: nil)
        let split = try Self.data.split(validationFraction: 0.2, seed: 7)
        #expect(held.train.labels == split.train.labels && held.validation?.labels == split.validation.labels)
        let kept = try Self.data.validationParts(fraction: 0, seed: 7, stored: stored)
        #expect(kept.train.count == 1_000 && kept.validation?.labels == stored.labels)
        #expect(try Self.data.validationParts(fraction: 0, seed: 7, stored: nil).validation == nil)
        #expect {
            try Self.data.validationParts(fraction: 0.2, seed: 7, stored: stored)
        } throws: { error in
            guard case .invalidSetting("validationFraction", "0.2", let reason) = error as? TrainingError else { return false }
            return reason.contains("its own validation split")
        }
    }

    @Test("a fraction outside (0, 1), or one that leaves a part empty, is refused by name", arguments: [0, -1, 1, 1.5, .nan, .infinity, 0.0001, 0.9999])
    func refused(fraction: Double) {
        #expect(throws: TrainingError.self) { _ = try Self.data.split(validationFraction: fraction, seed: 0) }
        do {
            _ = try Self.data.split(validationFraction: fraction, seed: 0)
        } catch let error as TrainingError {
            #expect(error.description.contains("validation fraction"), "\(error)")
        } catch {
            Issue.record("\(error)")
        }
    }
}
