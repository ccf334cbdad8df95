import Foundation

/// Reads a streamed split's batches ahead of the steps, on a thread of its
/// own, into a bounded queue: the step takes each batch as a dataset that
/// holds exactly its samples (`Dataset.holdsBatch`), in the batch's order.
///
/// The reader walks the same epoch orders as the trainer (`Epochs`, a pure
/// function of the seed), so a batch is the same samples streamed or in
/// memory, and the step computes the same bits. It reads whole blocks of
/// consecutive rows — the order's blocks (`BlockShuffle`), or the file's
/// chunks in file order — each when a batch first needs it, and drops it
/// after the last batch of the epoch that does; with a block shuffle it
/// holds about one window of blocks and `depth` batches. (A global shuffle
/// would keep every block until the epoch's end: the trainer refuses it.)
///
/// Under a job each rank takes only its own rows of every batch (`rows`),
/// so it reads only the blocks that hold them.
final class BatchPrefetcher: @unchecked Sendable {
    // Everything below `condition` is shared between the two threads and
    // touched only while it is locked.
    private let condition = NSCondition()
    private var ready: [(position: TrainingPosition, data: Dataset)] = []
    private var failure: TrainingError?
    private var cancelled = false
    private var readerDone = false

    private let dataset: Dataset
    private let stream: FeatureStream
    private let epochs: Epochs
    private let endEpoch: Int
    private let depth: Int
    private let localRows: @Sendable (Int) -> Range<Int>

    /// Nanoseconds the steps waited for a batch (the consumer's alone).
    private(set) var waitedNanoseconds: UInt64 = 0

    /// Starts reading at `start` (its epoch in `order`), through the end of
    /// epoch `endEpoch` − 1.
    /// - Parameters:
    ///   - dataset: a dataset whose features are `stream`.
    ///   - epochs: the orders to walk.
    ///   - start: the first batch to read.
    ///   - order: the order of `start.epoch` (a resumed run's, as saved); empty: the epoch's own.
    ///   - endEpoch: the epoch at which to stop reading.
    ///   - depth: batches read ahead at most.
    ///   - rows: this process's rows of a batch of the given size.
    init(dataset: Dataset, stream: FeatureStream, epochs: Epochs, start: TrainingPosition, order: [Int32], endEpoch: Int,
         depth: Int = 8, rows: @escaping @Sendable (Int) -> Range<Int>) {
        self.dataset = dataset
        self.stream = stream
        self.epochs = epochs
        self.endEpoch = endEpoch
        self.depth = max(depth, 1)
        self.localRows = rows
        let thread = Thread { [self] in self.read(from: start, order: order) }
        thread.name = "backprop-reader"
        thread.start()
    }

    deinit { cancel() }

    /// Stops the reader (it ends at its next batch).
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    /// The batch at `position`, once read: the local rows of `indices`.
    /// - Throws: the reader's `TrainingError.dataUnreadable`.
    func next(at position: TrainingPosition, indices: ArraySlice<Int32>) throws(TrainingError) -> Dataset {
        let start = monotonicNanoseconds()
        condition.lock()
        defer { condition.unlock() }
        while ready.isEmpty && failure == nil && !readerDone { condition.wait() }
        waitedNanoseconds &+= monotonicNanoseconds() &- start
        guard !ready.isEmpty else {
            if let failure { throw failure }
            preconditionFailure("\(dataset.name): no batch read for epoch \(position.epoch + 1), batch \(position.batch + 1)")
        }
        let (read, data) = ready.removeFirst()
        // The reader refills in bursts, woken only when half the queue is
        // gone: a wake-up per batch would take a core from the step's workers each time.
        if ready.count <= depth / 2 { condition.broadcast() }
        precondition(read.epoch == position.epoch && read.batch == position.batch,
                     "read epoch \(read.epoch) batch \(read.batch) for epoch \(position.epoch) batch \(position.batch)")
        precondition(data.count == localRows(indices.count).count, "a batch of \(data.count) rows for \(indices.count)")
        return data
    }

    // MARK: - The reader's thread

    /// Blocks of consecutive rows the reader holds, by block number.
    private var blocks: [Int: [UInt8]] = [:]

    private func read(from start: TrainingPosition, order first: [Int32]) {
        var epoch = start.epoch, batch = start.batch
        var order = first.isEmpty ? epochs.visitingOrder(epoch: epoch) : EpochOrder(samples: first)
        let blockRows = epochs.blocks.isActive ? epochs.blocks.rows : stream.readRows
        do {
            while epoch < endEpoch {
                // The last position of the epoch that needs each block: after it, the block goes.
                var lastUse = [Int](repeating: -1, count: Epochs.batches(of: stream.count, in: blockRows))
                switch order.storage {
                case .samples(let samples): for (p, i) in samples.enumerated() { lastUse[Int(i) / blockRows] = p }
                case .blocks(let windows):
                    for w in 0..<windows.windowCount {
                        for block in windows.blocks(ofWindow: w) { lastUse[Int(block)] = windows.windowStarts[w + 1] - 1 }
                    }
                }
                blocks.removeAll()
                for b in batch..<epochs.batchesPerEpoch {
                    let range = epochs.batchRange(b)
                    let local = localRows(range.count)
                    let indices = order.indices((range.lowerBound + local.lowerBound)..<(range.lowerBound + local.upperBound))
                    let data = try assemble(indices, blockRows: blockRows)
                    blocks = blocks.filter { lastUse[$0.key] >= range.upperBound }
                    guard hand(TrainingPosition(epoch: epoch, batch: b), data) else { return }
                }
                epoch += 1
                batch = 0
                if epoch < endEpoch { order = epochs.visitingOrder(epoch: epoch) }
            }
            condition.lock()
            readerDone = true
            condition.broadcast()
            condition.unlock()
        } catch {
            condition.lock()
            failure = error
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Waits for room, then queues a batch; false once cancelled.
    private func hand(_ position: TrainingPosition, _ data: Dataset) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while ready.count >= depth && !cancelled { condition.wait() }
        guard !cancelled else { return false }
        ready.append((position, data))
        condition.broadcast()
        return true
    }

    /// A dataset of the samples `indices`, in that order, their blocks read as needed.
    private func assemble(_ indices: ArraySlice<Int32>, blockRows: Int) throws(TrainingError) -> Dataset {
        let rowBytes = stream.bytesPerRow
        var rows = [UInt8](repeating: 0, count: indices.count * rowBytes)
        for (r, index) in indices.enumerated() {
            let i = Int(index), block = i / blockRows
            if blocks[block] == nil { blocks[block] = try readBlock(block, rows: blockRows) }
            let offset = (i - block * blockRows) * rowBytes
            blocks[block]!.withUnsafeBytes { source in
                rows.withUnsafeMutableBytes { target in
                    target.baseAddress!.advanced(by: r * rowBytes).copyMemory(from: source.baseAddress! + offset, byteCount: rowBytes)
                }
            }
        }
        let features: Dataset.Features
        switch stream.storage {
        case .bytes(let scale): features = .bytes(rows, scale: scale)
        case .floats:
            features = .floats(rows.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) })
        }
        let targets: Dataset.Targets
        switch dataset.targets {
        case .classes(let labels): targets = .classes(indices.map { labels[Int($0)] })
        case .values(let values, let width):
            targets = .values(indices.flatMap { values[(Int($0) * width)..<((Int($0) + 1) * width)] }, width: width)
        }
        var batch = Dataset(name: dataset.name, features: features, targets: targets, featureCount: dataset.featureCount)
        batch.imageShape = dataset.imageShape
        batch.holdsBatch = true
        return batch
    }

    private func readBlock(_ block: Int, rows blockRows: Int) throws(TrainingError) -> [UInt8] {
        let range = (block * blockRows)..<min((block + 1) * blockRows, stream.count)
        var bytes = [UInt8](repeating: 0, count: range.count * stream.bytesPerRow)
        do {
            try bytes.withUnsafeMutableBytes { try stream.reader.read(rows: range, into: $0) }
        } catch {
            throw .dataUnreadable(dataset: dataset.name, rows: range, reason: "\(error)")
        }
        return bytes
    }
}
