/// Labelled samples kept in memory as the file stores them: features as
/// uint8 (4× smaller than Float), converted to x = scale · byte per shard.
public struct Dataset: Sendable, Equatable {
    /// A name for messages: usually "file.h5:/train".
    public let name: String
    /// [count, featureCount], row-major.
    public let features: [UInt8]
    /// Class index of each sample, [count].
    public let labels: [UInt8]
    public let featureCount: Int
    /// x = scale · byte (1/255 for images).
    public let scale: Float

    public var count: Int { labels.count }

    /// - Precondition: `features.count == labels.count * featureCount`
    ///   (storage validates this at the boundary and throws).
    public init(name: String, features: [UInt8], labels: [UInt8], featureCount: Int, scale: Float) {
        precondition(featureCount > 0 && features.count == labels.count * featureCount,
                     "\(name): \(features.count) feature bytes for \(labels.count) labels × \(featureCount)")
        self.name = name
        self.features = features
        self.labels = labels
        self.featureCount = featureCount
        self.scale = scale
    }

    /// The largest label plus one (at least the number of classes present).
    public var classCount: Int { Int(labels.max() ?? 0) + 1 }

    /// An identity of the contents: shape, scale and a 64-bit hash of every
    /// feature byte and label, so a checkpoint can tell which data it was
    /// trained on. (FNV-1a over 8-byte words: fast, not cryptographic.)
    public var fingerprint: String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ word: UInt64) { hash = (hash ^ word) &* 0x0000_0100_0000_01B3 }
        for bytes in [features, labels] {
            bytes.withUnsafeBytes { raw in
                let words = raw.count / 8
                for i in 0..<words { mix(raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
                for i in (words * 8)..<raw.count { mix(UInt64(raw[i])) }
            }
            mix(UInt64(bytes.count))
        }
        let hex = String(hash, radix: 16)
        return "\(count)x\(featureCount) scale \(scale) fnv1a64 " + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// `count` samples of `featureCount` random bytes with labels from
    /// `classCount` classes, reproducible from `seed`: for tests and for
    /// benchmarks, whose work does not depend on the values.
    public static func random(count: Int, featureCount: Int, classCount: Int, seed: UInt64) -> Dataset {
        var generator = SeededGenerator(seed: seed, stream: 99)
        let features = (0..<(count * featureCount)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let labels = (0..<count).map { _ in UInt8(generator.next() % UInt64(classCount)) }
        return Dataset(name: "random-\(seed)", features: features, labels: labels, featureCount: featureCount, scale: 1 / 255)
    }

    /// The first `sampleCount` samples, as a smaller dataset.
    public func prefix(_ sampleCount: Int) -> Dataset {
        let n = min(sampleCount, count)
        return Dataset(name: name, features: Array(features[0..<(n * featureCount)]),
                       labels: Array(labels[0..<n]), featureCount: featureCount, scale: scale)
    }

    /// Checks that this dataset fits `network`: feature count = input width and
    /// every label < output width.
    /// - Throws: `TrainingError.inputWidthMismatch`, `.labelOutOfRange`.
    public func validate<T>(for network: Network<T>) throws(TrainingError) {
        guard featureCount == network.inputCount else {
            throw .inputWidthMismatch(dataset: name, features: featureCount, networkInputs: network.inputCount)
        }
        if let index = labels.firstIndex(where: { Int($0) >= network.outputCount }) {
            throw .labelOutOfRange(dataset: name, index: index, label: Int(labels[index]),
                                   outputCount: network.outputCount)
        }
    }

    /// Fills a block: x rows ← scale · features of samples `indices`, and t rows
    /// ← one-hot(label) over `outputCount` classes.
    ///
    /// x: [indices.count, featureCount], t: [indices.count, outputCount].
    func gather<T: NetworkScalar>(
        _ indices: UnsafeBufferPointer<Int32>,
        inputs x: UnsafeMutablePointer<T>, targets t: UnsafeMutablePointer<T>, outputCount: Int
    ) {
        let scale = T(self.scale)
        features.withUnsafeBufferPointer { bytes in
            for (r, index) in indices.enumerated() {
                let source = bytes.baseAddress! + Int(index) * featureCount
                let row = x + r * featureCount
                if let row = floatPointer(row) {
                    convertBytesVectorized(source, count: featureCount, scale: Float(self.scale), into: row)
                } else {
                    for i in 0..<featureCount { row[i] = T(source[i]) * scale }
                }
                let target = t + r * outputCount
                target.update(repeating: 0, count: outputCount)
                target[Int(labels[Int(index)])] = 1
            }
        }
    }

    /// Inputs and one-hot targets of every sample as arrays (tests, small data).
    public func arrays<T: NetworkScalar>(outputCount: Int, as _: T.Type = T.self) -> (inputs: [T], targets: [T]) {
        var inputs = [T](repeating: 0, count: count * featureCount)
        var targets = [T](repeating: 0, count: count * outputCount)
        let order = (0..<Int32(count)).map { $0 }
        order.withUnsafeBufferPointer { indices in
            inputs.withUnsafeMutableBufferPointer { x in
                targets.withUnsafeMutableBufferPointer { t in
                    gather(indices, inputs: x.baseAddress!, targets: t.baseAddress!, outputCount: outputCount)
                }
            }
        }
        return (inputs, targets)
    }
}
