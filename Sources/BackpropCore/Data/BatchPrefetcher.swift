import Foundation

/// Reads a streamed split's batches ahead of the steps, on a thread of its
/// own, into a bounded queue: the step takes each batch as rows that hold
/// exactly its samples, in the batch's order (`Batch.Layout.batchOrder`).
///
/// The reader walks a copy of the trainer's `EpochWalker` (the epoch orders
/// are a pure function of the seed), so a batch is the same samples streamed
/// or in memory, and the step computes the same bits. It reads whole blocks of
/// consecutive rows — the order's blocks (`BlockShuffle`), or the file's
/// chunks in file order — each when a batch first needs it, and drops it
/// after the last batch of the epoch that does; with a block shuffle it
/// holds about one window of blocks and `depth` batches. (A global shuffle
/// would keep every block until the epoch's end: the stream refuses it.)
///
/// Under a job each rank takes only its own rows of every batch (`rows`),
/// so it reads only the blocks that hold them.
final class BatchPrefetcher: BatchSupply, @unchecked Sendable {
    // Everything below `condition` is shared between the two threads and
    // touched only while it is locked.
    private let condition = NSCondition()
    private var ready: [(position: TrainingPosition, data: Batch)] = []
    private var failure: TrainingError?
    private var cancelled = false
    private var readerDone = false

    private let dataset: StreamedDataset
    private var stream: FeatureStream { dataset.stream }
    private let endEpoch: Int
    private let depth: Int
    private let localRows: @Sendable (Int) -> Range<Int>

    /// Nanoseconds the steps waited for a batch (the consumer's alone).
    private(set) var waitedNanoseconds: UInt64 = 0
    var waitedSeconds: Double { Double(waitedNanoseconds) / 1e9 }

    /// Starts reading at `walker`'s position, through the end of epoch `endEpoch` − 1.
    /// - Parameters:
    ///   - dataset: the streamed split.
    ///   - walker: the trainer's walk, which the reader continues on a copy of.
    ///   - endEpoch: the epoch at which to stop reading.
    ///   - depth: batches read ahead at most.
    ///   - rows: this process's rows of a batch of the given size.
    init(dataset: StreamedDataset, walker: EpochWalker, endEpoch: Int,
         depth: Int = 8, rows: @escaping @Sendable (Int) -> Range<Int>) {
        self.dataset = dataset
        self.endEpoch = endEpoch
        self.depth = max(depth, 1)
        self.localRows = rows
        let own = Walk(walker: walker.copy())
        let thread = Thread { [self] in self.read(own) }
        thread.name = "backprop-reader"
        thread.start()
    }

    /// A walker handed to the reader's thread, which alone uses it from then on.
    private final class Walk: @unchecked Sendable {
        var walker: EpochWalker
        init(walker: EpochWalker) { self.walker = walker }
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
    func batch(at position: TrainingPosition, indices: ArraySlice<Int32>) throws(TrainingError) -> Batch {
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
        precondition(data.data.count == localRows(indices.count).count, "a batch of \(data.data.count) rows for \(indices.count)")
        return data
    }

    // MARK: - The reader's thread

    /// Blocks of consecutive rows the reader holds, by block number.
    private var blocks: [Int: [UInt8]] = [:]

    private func read(_ walk: Walk) {
        var walker = walk.walker
        let epochs = walker.epochs
        let blockRows = epochs.blocks.isActive ? epochs.blocks.rows : stream.readRows
        // The last position of the current epoch that needs each block: after it, the block goes.
        var lastUse: [Int] = []
        var lastUseEpoch = -1
        do {
            while walker.position.epoch < endEpoch {
                if walker.position.epoch != lastUseEpoch {
                    lastUse = [Int](repeating: -1, count: Epochs.batches(of: stream.count, in: blockRows))
                    switch walker.order.storage {
                    case .samples(let samples): for (p, i) in samples.enumerated() { lastUse[Int(i) / blockRows] = p }
                    case .blocks(let windows):
                        for w in 0..<windows.windowCount {
                            for block in windows.blocks(ofWindow: w) { lastUse[Int(block)] = windows.windowStarts[w + 1] - 1 }
                        }
                    }
                    lastUseEpoch = walker.position.epoch
                    blocks.removeAll()
                }
                let range = epochs.batchRange(walker.position.batch)
                let data = try assemble(walker.batch(rows: localRows(range.count)), blockRows: blockRows)
                blocks = blocks.filter { lastUse[$0.key] >= range.upperBound }
                guard hand(walker.position, data) else { return }
                walker.advance()
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
    private func hand(_ position: TrainingPosition, _ data: Batch) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while ready.count >= depth && !cancelled { condition.wait() }
        guard !cancelled else { return false }
        ready.append((position, data))
        condition.broadcast()
        return true
    }

    /// The rows of the samples `indices`, in that order, their blocks read as needed.
    private func assemble(_ indices: ArraySlice<Int32>, blockRows: Int) throws(TrainingError) -> Batch {
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
        let features = stream.features(of: rows)
        let targets: Dataset.Targets
        switch dataset.targets {
        case .classes(let labels): targets = .classes(indices.map { labels[Int($0)] })
        case .values(let values, let width):
            targets = .values(indices.flatMap { values[(Int($0) * width)..<((Int($0) + 1) * width)] }, width: width)
        }
        var batch = Dataset(name: dataset.name, features: features, targets: targets, featureCount: dataset.featureCount)
        batch.imageShape = dataset.imageShape
        batch.teacher = dataset.teacher?.rows(at: indices, of: dataset.count)
        return Batch(batch, layout: .batchOrder)
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
