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
        guard shuffle else { return (0..<Int32(sampleCount)).map { $0 } }
        guard blocks.isActive else {
            var order = (0..<Int32(sampleCount)).map { $0 }
            var generator = SeededGenerator(seed: seed, stream: Epochs.firstShuffleStream + UInt64(epoch))
            Epochs.shuffle(&order[...], with: &generator)
            return order
        }
        let windows = BlockOrder(self, epoch: epoch)
        return (0..<windows.windowCount).flatMap { windows.window($0) }
    }

    /// Epoch `epoch`'s order held as compactly as it is computed: every
    /// sample of a global shuffle or of file order, or for a block shuffle the
    /// blocks' permutation alone, each window's samples made when asked for
    /// (25 M samples would be 100 MB of indices; their blocks are 100 KB).
    public func visitingOrder(epoch: Int) -> EpochOrder {
        blocks.isActive && shuffle ? EpochOrder(blocks: BlockOrder(self, epoch: epoch)) : EpochOrder(samples: order(epoch: epoch))
    }

    /// Fisher–Yates over `values`, drawing from `generator`.
    static func shuffle<T>(_ values: inout ArraySlice<T>, with generator: inout SeededGenerator) {
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

/// A block-shuffled epoch's order: 1. a permutation of the blocks of `rows`
/// consecutive samples (the last one may be short), drawn from the epoch's
/// generator; 2. the samples of each W consecutive blocks of it, shuffled
/// among themselves by a generator of that window's own, so that any window
/// is made without the others.
public struct BlockOrder: Sendable, Equatable {
    public let epochs: Epochs
    public let epoch: Int
    /// The blocks in visiting order.
    public let permutation: [Int32]
    /// Where each window starts in the epoch's order, and (last) the epoch's length.
    public let windowStarts: [Int]

    init(_ epochs: Epochs, epoch: Int) {
        self.epochs = epochs
        self.epoch = epoch
        var permutation = (0..<Int32(epochs.blocks.blockCount(of: epochs.sampleCount))).map { $0 }
        var generator = SeededGenerator(seed: epochs.seed, stream: Epochs.firstShuffleStream + UInt64(epoch))
        Epochs.shuffle(&permutation[...], with: &generator)
        self.permutation = permutation
        let (rows, n) = (epochs.blocks.rows, epochs.sampleCount)
        var starts = [0]
        for first in stride(from: 0, to: permutation.count, by: epochs.blocks.window) {
            var size = 0
            for block in permutation[first..<min(first + epochs.blocks.window, permutation.count)] {
                size += min(rows, n - Int(block) * rows)
            }
            starts.append(starts.last! + size)
        }
        windowStarts = starts
    }

    public var windowCount: Int { windowStarts.count - 1 }

    /// The window holding position `p` of the epoch.
    public func window(at p: Int) -> Int {
        var (low, high) = (0, windowCount - 1)
        while low < high {
            let middle = (low + high + 1) / 2
            if windowStarts[middle] <= p { low = middle } else { high = middle - 1 }
        }
        return low
    }

    /// The blocks of window `w`.
    public func blocks(ofWindow w: Int) -> ArraySlice<Int32> {
        let first = w * epochs.blocks.window
        return permutation[first..<min(first + epochs.blocks.window, permutation.count)]
    }

    /// The samples of window `w`, in visiting order.
    public func window(_ w: Int) -> [Int32] {
        let (rows, n) = (epochs.blocks.rows, epochs.sampleCount)
        var samples: [Int32] = []
        samples.reserveCapacity(windowStarts[w + 1] - windowStarts[w])
        for block in blocks(ofWindow: w) {
            let first = Int(block) * rows, end = min(first + rows, n)
            for i in first..<end { samples.append(Int32(i)) }
        }
        // Stream 2³² + epoch is the permutation's; each window's lies above every epoch's.
        var generator = SeededGenerator(seed: epochs.seed, stream: (UInt64(w) + 1) << 40 | (Epochs.firstShuffleStream + UInt64(epoch)))
        Epochs.shuffle(&samples[...], with: &generator)
        return samples
    }
}

/// An epoch's visiting order as the trainer and the stream's reader walk
/// it: every sample (a global shuffle, file order), or a `BlockOrder`
/// whose windows are made when first asked for. Not shared between threads
/// (each keeps its own, with its own cache of the current window).
public final class EpochOrder {
    public enum Storage: Sendable {
        case samples([Int32])
        case blocks(BlockOrder)
    }

    public let storage: Storage
    private var cached: (window: Int, samples: [Int32])?

    public init(samples: [Int32]) { storage = .samples(samples) }
    public init(blocks: BlockOrder) { storage = .blocks(blocks) }
    init(storage: Storage) { self.storage = storage }

    public var count: Int {
        switch storage {
        case .samples(let samples): return samples.count
        case .blocks(let order): return order.windowStarts.last!
        }
    }

    /// The samples at positions `range` of the epoch.
    public func indices(_ range: Range<Int>) -> ArraySlice<Int32> {
        switch storage {
        case .samples(let samples): return samples[range]
        case .blocks(let order):
            var result: [Int32] = []
            result.reserveCapacity(range.count)
            var p = range.lowerBound
            while p < range.upperBound {
                let w = order.window(at: p)
                if cached?.window != w { cached = (w, order.window(w)) }
                let start = order.windowStarts[w], end = min(range.upperBound, order.windowStarts[w + 1])
                result += cached!.samples[(p - start)..<(end - start)]
                p = end
            }
            return result[...]
        }
    }

    /// Every sample, in order (what a checkpoint of a global shuffle saves).
    public var samples: [Int32] {
        switch storage {
        case .samples(let samples): return samples
        case .blocks: return Array(indices(0..<count))
        }
    }
}

/// The one walk through the epochs' visiting orders, batch by batch: where a
/// run is and the current epoch's order. The trainer owns it and moves it on
/// after each step; a reader that runs ahead of the steps (a stream's
/// `BatchPrefetcher`) walks a copy of it from the trainer's position.
public struct EpochWalker {
    public let epochs: Epochs
    public private(set) var position: TrainingPosition
    /// The visiting order of `position.epoch`.
    public private(set) var order: EpochOrder

    /// A walk from `position`, in `order` for its epoch (a resumed run's, as
    /// saved; empty: the epoch's own, recomputed from the seed).
    public init(epochs: Epochs, position: TrainingPosition = TrainingPosition(), order: [Int32] = []) {
        self.epochs = epochs
        self.position = position
        self.order = order.isEmpty ? epochs.visitingOrder(epoch: position.epoch) : EpochOrder(samples: order)
    }

    /// The samples of the current batch, or of its rows `rows` (a rank's part of it).
    public func batch(rows: Range<Int>? = nil) -> ArraySlice<Int32> {
        let range = epochs.batchRange(position.batch)
        guard let rows else { return order.indices(range) }
        return order.indices((range.lowerBound + rows.lowerBound)..<(range.lowerBound + rows.upperBound))
    }

    /// Past the current batch: the next one, or the next epoch's first in its order.
    public mutating func advance() {
        position.step += 1
        position.batch += 1
        if position.batch == epochs.batchesPerEpoch {
            position.batch = 0
            position.epoch += 1
            order = epochs.visitingOrder(epoch: position.epoch)
        }
    }

    /// The same place with an order of its own, for another thread (an order caches its current window).
    public func copy() -> EpochWalker {
        var walker = self
        walker.order = EpochOrder(storage: order.storage)
        return walker
    }
}

/// Where a run is: the epoch, the next batch within it, and the optimizer
/// steps taken in all.
public struct TrainingPosition: Sendable, Equatable, Codable {
    public var epoch = 0
    public var batch = 0
    public var step = 0
    public init(epoch: Int = 0, batch: Int = 0, step: Int = 0) {
        self.epoch = epoch
        self.batch = batch
        self.step = step
    }
}
