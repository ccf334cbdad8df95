import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// Rows served from an array, counting what is read: a stream whose test
/// can see that it streamed, and fail on demand.
final class ArrayRowReader: RowReader, @unchecked Sendable {
    let bytes: [UInt8]
    let rowBytes: Int
    /// Rows from here on cannot be read.
    let failingFrom: Int?
    private let lock = NSLock()
    private var reads: [Range<Int>] = []

    init(bytes: [UInt8], rowBytes: Int, failingFrom: Int? = nil) {
        self.bytes = bytes
        self.rowBytes = rowBytes
        self.failingFrom = failingFrom
    }

    struct Failure: Error, CustomStringConvertible { var description: String { "the disk is on fire" } }

    func read(rows: Range<Int>, into buffer: UnsafeMutableRawBufferPointer) throws {
        if let failingFrom, rows.upperBound > failingFrom { throw Failure() }
        lock.withLock { reads.append(rows) }
        bytes.withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[(rows.lowerBound * rowBytes)..<(rows.upperBound * rowBytes)]))
        }
    }

    var rowsRead: [Range<Int>] { lock.withLock { reads } }
}

/// `dataset` with its features behind a stream (`ArrayRowReader`).
func streamed(_ dataset: Dataset, readRows: Int = 16, failingFrom: Int? = nil) -> (StreamedDataset, ArrayRowReader) {
    let bytes: [UInt8], storage: FeatureStream.Storage
    switch dataset.features {
    case .bytes(let values, let scale): (bytes, storage) = (values, .bytes(scale: scale))
    case .floats(let values): (bytes, storage) = (values.withUnsafeBytes { Array($0) }, .floats)
    }
    let rowBytes = bytes.count / dataset.count
    let reader = ArrayRowReader(bytes: bytes, rowBytes: rowBytes, failingFrom: failingFrom)
    var hash = Fingerprint()
    bytes.withUnsafeBytes { hash.mix(bytes: $0) }
    hash.finishArray()
    let stream = FeatureStream(storage: storage, count: dataset.count, featureCount: dataset.featureCount, reader: reader,
                               readRows: readRows, featureHash: hash.hash)
    var result = StreamedDataset(name: dataset.name, stream: stream, targets: dataset.targets)
    result.imageShape = dataset.imageShape
    result.teacher = dataset.teacher
    return (result, reader)
}

struct StreamingTests {
    @Test("a block shuffle is a permutation; each window holds exactly its blocks' rows; the same for the same seed, another each epoch")
    func blockOrder() {
        for (count, rows, window) in [(100, 7, 3), (64, 16, 1), (10, 32, 4), (257, 10, 100)] {
            let epochs = Epochs(sampleCount: count, batchSize: 9, shuffle: true, seed: 5, blocks: BlockShuffle(rows: rows, window: window))
            let order = epochs.order(epoch: 2)
            #expect(order.sorted() == (0..<Int32(count)).map { $0 }, "\(count), \(rows), \(window)")
            #expect(order == Epochs(sampleCount: count, batchSize: 50, shuffle: true, seed: 5,
                                    blocks: BlockShuffle(rows: rows, window: window)).order(epoch: 2))
            if count > rows { #expect(order != epochs.order(epoch: 3)) }
            // Walk the windows: the rows of each are whole blocks, W of them (fewer at the end).
            var start = 0
            while start < count {
                var blocks = Set<Int32>()
                var end = start
                while end < count {
                    let block = order[end] / Int32(rows)
                    if !blocks.contains(block) && blocks.count == window { break }
                    blocks.insert(block)
                    end += 1
                }
                let held = order[start..<end].sorted()
                let expected = blocks.sorted().flatMap { b in (b * Int32(rows))..<min((b + 1) * Int32(rows), Int32(count)) }
                #expect(held == expected, "window at \(start) of \(count), \(rows), \(window)")
                start = end
            }
        }
        // The order as the trainer walks it, a window at a time, is the same, batch by batch.
        let epochs = Epochs(sampleCount: 1000, batchSize: 64, shuffle: true, seed: 2, blocks: BlockShuffle(rows: 30, window: 4))
        let whole = epochs.order(epoch: 1), lazy = epochs.visitingOrder(epoch: 1)
        #expect(lazy.count == 1000 && lazy.samples == whole)
        for b in 0..<epochs.batchesPerEpoch { #expect(Array(lazy.indices(epochs.batchRange(b))) == Array(whole[epochs.batchRange(b)])) }
        #expect(Array(lazy.indices(990..<1000)) == Array(whole[990..<1000]) && Array(lazy.indices(5..<7)) == Array(whole[5..<7]))
        // Within a block the samples are shuffled too, unless a window is one block of one row.
        let one = Epochs(sampleCount: 40, batchSize: 8, shuffle: true, seed: 1, blocks: BlockShuffle(rows: 40, window: 1))
        #expect(one.order(epoch: 0) != (0..<40).map { $0 })
    }

    @Test("Fingerprint fed in pieces of any size is the fingerprint of the whole array")
    func fingerprintInPieces() {
        let bytes = (0..<1003).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        var whole = Fingerprint()
        whole.mix(array: bytes)
        for piece in [1, 3, 7, 8, 13, 500] {
            var parts = Fingerprint()
            for start in stride(from: 0, to: bytes.count, by: piece) {
                bytes[start..<min(start + piece, bytes.count)].withUnsafeBytes { parts.mix(bytes: $0) }
            }
            parts.finishArray()
            #expect(parts == whole, "pieces of \(piece)")
        }
        let data = randomDataset(count: 50, featureCount: 13, classCount: 4, seed: 2)
        #expect(streamed(data).0.fingerprint == data.fingerprint)
    }

    func configuration(workers: Int) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.sizes = [30, 40, 20, 4]
        // Batches of 80 cross a gather task's 64 rows, so rows are found by their place in the batch.
        c.batchSize = 80
        c.shardSize = 16
        c.epochs = 3
        c.seed = 3
        c.workers = workers
        c.optimizer = OptimizerSettings(kind: .adam)
        c.schedule = LearningRateSchedule(base: 0.01)
        c.dropout = Dropout(input: 0.1, hidden: [0.3])
        c.labelSmoothing = 0.1
        c.blockShuffle = BlockShuffle(rows: 10, window: 3)
        return c
    }

    /// Parameters (bits), optimizer state and every loss after `steps` steps.
    func train(_ c: TrainingConfiguration, _ data: any RowSource, steps: Int) throws -> ([UInt32], OptimizerState<Float>, [Double]) {
        let trainer = try Trainer(configuration: c, dataset: data)
        var losses: [Double] = []
        for _ in 0..<steps { losses.append(try trainer.step().meanLoss) }
        return (trainer.network.parameters.map(\.bitPattern), trainer.optimizer.state, losses)
    }

    @Test("streamed = in memory, bit for bit, for 1, 2 and 5 workers, byte and float features (the floats distilled from a teacher, the bytes augmented, and again distilled from a teacher of views); the stream read each block once an epoch")
    func streamedEqualsInMemory() throws {
        var bytes = randomDataset(count: 301, featureCount: 30, classCount: 4, seed: 8)
        bytes.imageShape = ImageShape(height: 5, width: 6, channels: 1)
        var floats = Dataset(name: "floats", features: .floats(bytes.arrays(outputCount: 4, as: Float.self).inputs.map { $0 * 3 - 1 }),
                             targets: bytes.targets, featureCount: 30)
        floats.teacher = TeacherColumn(DistillationTests.teacher(count: 301, classes: 4, seed: 4))
        var views = bytes
        views.teacher = TeacherColumn(DistillationTests.teacher(count: 301 * 18, classes: 4, seed: 5), views: Augmentation(shift: 1, flip: true))
        let steps = 10  // epochs of 4 batches (80 × 3, then 61), into the third
        for (name, data) in [("bytes", bytes), ("floats", floats), ("views", views)] {
            var c = configuration(workers: 1)
            if name != "floats" { c.augmentation = Augmentation(shift: 1, flip: true) }
            if name != "bytes" { (c.distillAlpha, c.temperature) = (0.6, 2) }
            let reference = try train(c, data, steps: steps)
            for workers in [1, 2, 5] {
                c.workers = workers
                let (stream, reader) = streamed(data)
                let result = try train(c, stream, steps: steps)
                #expect(result.0 == reference.0 && result.1 == reference.1, "\(name), \(workers) workers")
                #expect(result.2 == reference.2, "\(name), \(workers) workers")
                // It streamed: whole blocks of 10 rows (the last of 1), each block once in each epoch it reached.
                let reads = reader.rowsRead
                #expect(reads.allSatisfy { $0.lowerBound % 10 == 0 && ($0.count == 10 || $0.upperBound == 301) }, "\(reads)")
                #expect(reads.count > 2 * 31 && reads.count <= 3 * 31, "\(reads.count) reads")
            }
        }
    }

    @Test("a streamed run resumed mid-epoch, with another worker count, continues with the uninterrupted run's bits")
    func resumeMidEpoch() throws {
        let data = randomDataset(count: 301, featureCount: 30, classCount: 4, seed: 8)
        let reference = try train(configuration(workers: 2), data, steps: 11)
        let (stream, _) = streamed(data)
        let first = try Trainer(configuration: configuration(workers: 2), dataset: stream)
        var losses: [Double] = []
        for _ in 0..<6 { losses.append(try first.step().meanLoss) }  // epoch 2, batch 3
        let (stream2, reader2) = streamed(data)
        let second = try Trainer(configuration: configuration(workers: 3), dataset: stream2, network: first.network)
        second.restore(position: first.position, optimizerState: first.optimizer.state, order: first.order, history: first.history)
        for _ in 6..<11 { losses.append(try second.step().meanLoss) }
        #expect(second.network.parameters.map(\.bitPattern) == reference.0)
        #expect(losses == reference.2)
        // The resumed reader began at the position, not at the epoch's start: it never read a block twice in epoch 2.
        #expect(reader2.rowsRead.count < 31 + 31, "\(reader2.rowsRead.count) reads")
    }

    @Test("1–3 ranks on threads, each reading only its own rows: one process's bits")
    func ranks() throws {
        let data = randomDataset(count: 301, featureCount: 30, classCount: 4, seed: 8)
        let c = configuration(workers: 1)
        let reference = try train(c, data, steps: 9)
        for ranks in 1...3 {
            let results = try ThreadJob.run(ranks: ranks) { rank in
                let trainer = try Trainer(configuration: c, dataset: streamed(data).0, group: rank)
                var losses: [Double] = []
                for _ in 0..<9 { losses.append(try trainer.step().meanLoss) }
                return (trainer.network.parameters.map(\.bitPattern), losses)
            }
            for (r, result) in results.enumerated() {
                #expect(result.0 == reference.0 && result.1 == reference.2, "\(ranks) ranks, rank \(r)")
            }
        }
    }

    @Test("evaluation of a streamed dataset, a block of whole shards at a time, has the bits of evaluation in memory")
    func streamedEvaluation() throws {
        let data = randomDataset(count: 301, featureCount: 30, classCount: 4, seed: 8)
        let trainer = try Trainer(configuration: configuration(workers: 2), dataset: data)
        for _ in 0..<5 { try trainer.step() }
        for (readRows, shardSize, workers) in [(16, 8, 1), (100, 64, 2), (5, 256, 3), (1000, 32, 2)] {
            let (stream, reader) = streamed(data, readRows: readRows)
            let inMemory = try evaluate(trainer.network, on: data, workers: workers, shardSize: shardSize)
            let fromStream = try evaluate(trainer.network, on: stream, workers: workers, shardSize: shardSize)
            #expect(inMemory == fromStream && inMemory.meanLoss.bitPattern == fromStream.meanLoss.bitPattern,
                    "reads of \(readRows), shards of \(shardSize)")
            #expect(reader.rowsRead.allSatisfy { $0.lowerBound % shardSize == 0 } && !reader.rowsRead.isEmpty)
        }
        let (failing, _) = streamed(data, failingFrom: 200)
        #expect(throws: TrainingError.self) { try evaluate(trainer.network, on: failing, workers: 1) }
    }

    @Test("a read that fails is an error naming the dataset and the rows, and the step changes nothing")
    func readFailure() throws {
        let data = randomDataset(count: 301, featureCount: 30, classCount: 4, seed: 8)
        let (stream, _) = streamed(data, failingFrom: 295)
        let trainer = try Trainer(configuration: configuration(workers: 1), dataset: stream)
        var failure: TrainingError?
        for _ in 0..<4 {
            do { try trainer.step() } catch { failure = error; break }
        }
        let message = failure.map { "\($0)" } ?? "no error"
        #expect(message.contains(data.name) && message.contains("rows 290 … 299") && message.contains("the disk is on fire"), "\(message)")
    }

    @Test("a streamed dataset is refused with a global shuffle or Poisson sampling, naming the block setting")
    func refusals() throws {
        let (stream, _) = streamed(randomDataset(count: 50, featureCount: 30, classCount: 4, seed: 1))
        var c = configuration(workers: 1)
        c.blockShuffle = BlockShuffle()
        #expect(throws: TrainingError.self) { try Trainer(configuration: c, dataset: stream) }
        c.shuffle = false  // file order streams
        _ = try Trainer(configuration: c, dataset: stream)
        c = configuration(workers: 1)
        c.sampling = .poisson
        #expect(throws: TrainingError.self) { try c.validate() }
        c.blockShuffle = BlockShuffle(rows: -1)
        c.sampling = nil
        #expect(throws: TrainingError.self) { try c.validate() }
        c.blockShuffle = BlockShuffle(rows: 8, window: 0)
        #expect(throws: TrainingError.self) { try c.validate() }
    }
}
