/// The order in which an epoch visits the training samples, and its batches.
///
/// Epoch e's order is a seeded Fisher–Yates shuffle drawn from its own
/// generator, SeededGenerator(seed, stream: e), so any epoch's order can be
/// recomputed from (seed, e) alone: resuming mid-epoch needs no replay.
public struct Epochs: Sendable, Equatable {
    public let sampleCount: Int
    public let batchSize: Int
    public let shuffle: Bool
    public let seed: UInt64

    /// Generator streams below this are reserved for other uses (initialisation).
    public static let firstShuffleStream: UInt64 = 1 << 32

    public init(sampleCount: Int, batchSize: Int, shuffle: Bool, seed: UInt64) {
        precondition(sampleCount > 0 && batchSize > 0, "need samples (\(sampleCount)) and a batch size (\(batchSize))")
        self.sampleCount = sampleCount
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
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
        for i in stride(from: sampleCount - 1, to: 0, by: -1) {
            let j = Int(generator.next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
        return order
    }

    /// The index range within `order(epoch:)` of batch `batch`.
    public func batchRange(_ batch: Int) -> Range<Int> {
        let start = batch * batchSize
        return start..<min(start + batchSize, sampleCount)
    }
}
