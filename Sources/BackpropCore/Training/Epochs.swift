/// The visiting order of each epoch, from the seed alone: a seeded shuffle of
/// every sample (the default), the samples in file order, or a shuffle that
/// can be read from a file in blocks (`BlockShuffle`).
///
/// Each epoch draws from its own generator stream, so any epoch's order can be
/// recomputed without the ones before it.
public struct Epochs: Sendable, Equatable {
    public let sampleCount: Int
    public let batchSize: Int
    public let shuffle: Bool
    public let seed: UInt64
    /// Off (rows 0): the shuffle is global.
    public let blocks: BlockShuffle

    /// Generator streams below this are reserved for other uses (initialisation).
    public static let firstShuffleStream: UInt64 = 1 << 32

    public init(sampleCount: Int, batchSize: Int, shuffle: Bool, seed: UInt64, blocks: BlockShuffle = BlockShuffle()) {
        precondition(sampleCount > 0 && batchSize > 0, "need samples (\(sampleCount)) and a batch size (\(batchSize))")
        precondition(blocks.rows >= 0 && blocks.window >= 1, "block shuffle \(blocks)")
        self.sampleCount = sampleCount
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
        self.blocks = blocks
    }

    /// Batches per epoch; the last one may be smaller (PyTorch's drop_last=False).
    public var batchesPerEpoch: Int { Epochs.batches(of: sampleCount, in: batchSize) }

    /// ⌈samples / batchSize⌉, without overflow for any batch size ≥ 1.
    public static func batches(of samples: Int, in batchSize: Int) -> Int {
        samples / batchSize + (samples % batchSize == 0 ? 0 : 1)
    }

    /// The sample indices of epoch `epoch` in visiting order.
    public func order(epoch: Int) -> [Int32] {
        var order = (0..<Int32(sampleCount)).map { $0 }
        guard shuffle else { return order }
        var generator = SeededGenerator(seed: seed, stream: Epochs.firstShuffleStream + UInt64(epoch))
        guard blocks.isActive else {
            Epochs.shuffle(&order[...], with: &generator)
            return order
        }
        // 1. A permutation of the blocks of `rows` consecutive samples (the
        //    last one may be short), 2. the samples of every W consecutive
        //    blocks of it, shuffled among themselves.
        let rows = blocks.rows
        var permutation = (0..<blocks.blockCount(of: sampleCount)).map { $0 }
        Epochs.shuffle(&permutation[...], with: &generator)
        var cursor = 0
        for windowStart in stride(from: 0, to: permutation.count, by: blocks.window) {
            let first = cursor
            for block in permutation[windowStart..<min(windowStart + blocks.window, permutation.count)] {
                for i in (block * rows)..<min((block + 1) * rows, sampleCount) {
                    order[cursor] = Int32(i)
                    cursor += 1
                }
            }
            Epochs.shuffle(&order[first..<cursor], with: &generator)
        }
        return order
    }

    /// Fisher–Yates over `values`, drawing from `generator`.
    private static func shuffle<T>(_ values: inout ArraySlice<T>, with generator: inout SeededGenerator) {
        let base = values.startIndex
        for i in stride(from: values.count - 1, to: 0, by: -1) {
            let j = Int(generator.next() % UInt64(i + 1))
            values.swapAt(base + i, base + j)
        }
    }

    /// The index range within `order(epoch:)` of batch `batch`.
    public func batchRange(_ batch: Int) -> Range<Int> {
        let start = batch * batchSize
        return start..<min(start + batchSize, sampleCount)
    }
}

/// An epoch order that a reader can stream: a seeded permutation of blocks
/// of `rows` consecutive samples, then a shuffle of the samples within each
/// window of `window` consecutive blocks of it (Keras' `shuffle="batch"` for
/// HDF5, generalised). An epoch then reads each block once, whole, and holds
/// at most a window of them; the order is a pure function of (seed, epoch,
/// N, rows, window), the same in memory and streamed, for any worker or rank
/// count.
public struct BlockShuffle: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Samples per block; 0: off (the shuffle is global).
    public var rows: Int
    /// Blocks per window, ≥ 1.
    public var window: Int

    /// Blocks per window unless told (8 blocks of 1,024 Fashion-MNIST rows: 6.4 MB).
    public static let defaultWindow = 8

    public init(rows: Int = 0, window: Int = BlockShuffle.defaultWindow) {
        self.rows = rows
        self.window = window
    }

    public var isActive: Bool { rows > 0 }

    /// ⌈N / rows⌉.
    public func blockCount(of sampleCount: Int) -> Int {
        rows == 0 ? 1 : Epochs.batches(of: sampleCount, in: rows)
    }

    /// "off", or "blocks of 1024, windows of 8".
    public var description: String { isActive ? "blocks of \(rows), windows of \(window)" : "off" }
}
