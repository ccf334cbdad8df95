import ArgumentParser
import BackpropCore
import BackpropHDF5
import Foundation

/// `backprop generate`: a dataset of any size, written straight to chunked
/// HDF5, for measuring what streaming costs (Benchmarks/streaming).
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a synthetic classification dataset of any size to chunked HDF5, a block at a time.",
        discussion: """
        Features are uniform random bytes (x = byte/255); each label is the class a fixed random \
        teacher network (F-64-K, tanh, from --seed) gives x − ½, so the task is learnable. /train \
        is written a chunk at a time with its fingerprints, in memory bounded by one chunk and the \
        labels; /test (--test-samples) comes from the same teacher. Everything follows from the \
        seed: the same flags write the same bytes.
        """)

    @Option(help: "Training samples N.")
    var samples: Int
    @Option(help: "Test samples.")
    var testSamples = 10_000
    @Option(help: "Features per sample F.")
    var features = 784
    @Option(help: "Classes K (2 … 256).")
    var classes = 10
    @Option(help: "Seed of the features and of the teacher.")
    var seed: UInt64 = 0
    @Option(help: "The HDF5 file to write.")
    var output: String

    func validate() throws {
        try refuseOutOfDomain(in: self)
    }

    func run() throws {
        try refuseOverwritingInputs(output, flag: "--output", inputs: [])
        var teacher = try Network<Float>(sizes: [features, 64, classes], hiddenActivation: .tanh, outputActivation: nil, loss: .crossEntropy)
        var generator = SeededGenerator(seed: seed, stream: 7)
        teacher.initialize(.pytorch, generator: &generator)
        let (features, classes, seed) = (self.features, self.classes, self.seed)
        /// Rows `rows` of the dataset drawn from `stream`: their bytes into `x`, their labels returned.
        func draw(_ rows: Range<Int>, stream: UInt64, into x: UnsafeMutableRawBufferPointer) -> [UInt8] {
            var random = SeededGenerator(seed: seed, stream: stream)
            var i = 0
            while i < x.count {
                var word = random.next()
                for _ in 0..<min(8, x.count - i) {
                    x[i] = UInt8(truncatingIfNeeded: word)
                    word >>= 8
                    i += 1
                }
            }
            let inputs = x.map { Float($0) / 255 - 0.5 }
            let outputs = teacher.predict(inputs: inputs)
            return (0..<rows.count).map { n in
                let row = outputs[(n * classes)..<((n + 1) * classes)]
                return UInt8(row.indices.max { row[$0] < row[$1] }! - n * classes)
            }
        }
        // The test split too is drawn a block at a time: the teacher's workspace stays a block's.
        var testBytes = [UInt8](repeating: 0, count: testSamples * features)
        var testLabels: [UInt8] = []
        let blockRows = DatasetFile.chunkRows(rowBytes: features)
        for start in stride(from: 0, to: testSamples, by: blockRows) {
            let rows = start..<min(start + blockRows, testSamples)
            testLabels += testBytes.withUnsafeMutableBytes {
                draw(rows, stream: 1 << 40 + UInt64(start), into: UnsafeMutableRawBufferPointer(rebasing: $0[(start * features)..<(rows.upperBound * features)]))
            }
        }
        let test = Dataset(name: "test", features: testBytes, labels: testLabels, featureCount: features, scale: 1 / 255)
        let start = ContinuousClock.now
        // Each block draws from a stream of its own: any block can be made alone.
        let source = DatasetFile.SplitRows(count: samples, featureCount: features, storage: .bytes(scale: 1 / 255)) { rows, x in
            .classes(draw(rows, stream: 1 << 32 + UInt64(rows.lowerBound), into: x))
        }
        try DatasetFile.write(train: source, test: .init(test),
                              attributes: ["source": "backprop generate --samples \(samples) --features \(features) --classes \(classes) --seed \(seed)"],
                              to: output)
        let seconds = Double((ContinuousClock.now - start).components.attoseconds) / 1e18 + Double((ContinuousClock.now - start).components.seconds)
        print(String(format: "wrote %@: %ld train and %ld test samples of %ld features, %ld classes (%.1f s)",
                     output, samples, testSamples, features, classes, seconds))
    }
}

extension Generate: OptionDomains {
    static let domains: [String: SettingDomain] = ["samples": .wholeRange(1, Int(Int32.max)), "testSamples": .wholeRange(1, 1 << 24),
                                                   "features": .wholeRange(1, 1 << 20), "classes": .wholeRange(2, 256)]
}
