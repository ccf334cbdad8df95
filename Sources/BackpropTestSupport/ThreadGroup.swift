import BackpropCore
import Foundation

/// A `ProcessGroup` of threads in one process, for testing what a job of N
/// processes computes without a transport: `ThreadJob.run` starts one
/// thread per rank; their collectives meet on a shared board.
public final class ThreadJob: @unchecked Sendable {
    // Sendable: every field is read and written under `condition`, or in a
    // phase between two barriers in which only its owner writes it.
    public let count: Int
    private let condition = NSCondition()
    private var arrived = 0, generation = 0
    /// What each rank posted for the collective in progress.
    private var values: [[Float]]
    private var counts: [[Int]]
    private var bytes: [[UInt8]]

    private init(count: Int) {
        self.count = count
        values = Array(repeating: [], count: count)
        counts = Array(repeating: [], count: count)
        bytes = Array(repeating: [], count: count)
    }

    /// Runs `body` on `count` threads, one per rank, and returns their results in rank order.
    /// - Throws: the first rank's error, in rank order.
    public static func run<R>(ranks count: Int, _ body: @escaping @Sendable (ThreadRank) throws -> R) throws -> [R] {
        let job = ThreadJob(count: count)
        let results = Results<R>(count: count)
        let done = DispatchGroup()
        for r in 0..<count {
            done.enter()
            let thread = Thread {
                results.set(r, Result { try body(ThreadRank(job: job, rank: r)) })
                done.leave()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        done.wait()
        return try results.values.map { try $0!.get() }
    }

    /// Results of the rank threads (each written by one thread, read after all ended).
    private final class Results<R>: @unchecked Sendable {
        var values: [Result<R, any Error>?]
        let lock = NSLock()
        init(count: Int) { values = Array(repeating: nil, count: count) }
        func set(_ r: Int, _ result: Result<R, any Error>) { lock.withLock { values[r] = result } }
    }

    fileprivate func barrier() {
        condition.lock()
        let current = generation
        arrived += 1
        if arrived == count {
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while current == generation { condition.wait() }
        }
        condition.unlock()
    }

    /// Posts rank r's part, waits for every rank's, lets `read` see them all, and waits until every rank has read.
    fileprivate func exchange<R>(rank r: Int, values v: [Float] = [], counts c: [Int] = [], bytes b: [UInt8] = [],
                                 read: ([[Float]], [[Int]], [[UInt8]]) -> R) -> R {
        condition.lock()
        (values[r], counts[r], bytes[r]) = (v, c, b)
        condition.unlock()
        barrier()
        condition.lock()
        let result = read(values, counts, bytes)
        condition.unlock()
        barrier()
        return result
    }
}

/// One rank of a `ThreadJob`.
public final class ThreadRank: ProcessGroup {
    let job: ThreadJob
    public let rank: Int
    public var count: Int { job.count }

    init(job: ThreadJob, rank: Int) {
        self.job = job
        self.rank = rank
    }

    public func allGather(_ buffer: UnsafeMutableBufferPointer<Float>, counts: [Int]) {
        let offsets = counts.indices.map { counts[..<$0].reduce(0, +) }
        let own = Array(buffer[offsets[rank]..<(offsets[rank] + counts[rank])])
        job.exchange(rank: rank, values: own) { values, _, _ in
            for q in 0..<count { for (k, value) in values[q].enumerated() { buffer[offsets[q] + k] = value } }
        }
    }

    public func allToAll(send: UnsafeBufferPointer<Float>, sendCounts: [Int],
                         receive: UnsafeMutableBufferPointer<Float>, receiveCounts: [Int]) {
        job.exchange(rank: rank, values: Array(send), counts: sendCounts) { values, counts, _ in
            var offset = 0
            for q in 0..<count {
                // Rank q's part for this rank starts after its parts for the ranks before.
                let start = counts[q][..<rank].reduce(0, +)
                precondition(counts[q][rank] == receiveCounts[q], "rank \(q) sends \(counts[q][rank]), \(rank) expects \(receiveCounts[q])")
                for k in 0..<receiveCounts[q] { receive[offset + k] = values[q][start + k] }
                offset += receiveCounts[q]
            }
        }
    }

    public func allGather(bytes: [UInt8]) -> [[UInt8]] {
        job.exchange(rank: rank, bytes: bytes) { _, _, all in all }
    }
}
