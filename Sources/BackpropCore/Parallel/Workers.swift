import CDispatch
import CGemm

// The parallel regions of training: `DispatchQueue.concurrentPerform`, called
// through the C function it wraps.
//
// On Linux the Swift overlay's `concurrentPerform(iterations:execute:)` boxes
// its closure and copies it as a block: three mallocs per call, two calls per
// training step. `dispatch_apply_f` (DISPATCH_APPLY_AUTO, the same call and the
// same thread pool underneath) takes a C function and a context pointer and
// allocates nothing once warm. The hot jobs are structs conforming to
// `WorkerJob` or `ShardJob`, passed by pointer; closures remain for the cold
// callers (evaluation, the GEMM ceiling) at one malloc per call.

/// The work of one parallel region: `run(worker:)` is called once for each
/// worker 0..<W, concurrently.
protocol WorkerJob: Sendable {
    func run(worker: Int)
}

/// Work done shard by shard: `run(worker:shard:)` once per shard, on the
/// worker that owns it.
protocol ShardJob: Sendable {
    func run(worker: Int, shard: Int)
}

/// Runs `job` on `workers` concurrent workers (`concurrentPerform`'s
/// semantics); one worker runs on the calling thread, with no dispatch.
func onWorkers<Job: WorkerJob>(_ workers: Int, _ job: Job) {
    if workers == 1 { return job.run(worker: 0) }
    withUnsafePointer(to: job) { job in
        // One word, so the existential holds it inline: no box.
        var runner: any JobRunner = JobPointer(job: job)
        withUnsafeMutablePointer(to: &runner) { context in
            dispatch_apply_f(workers, nil, context) { context, worker in
                context!.assumingMemoryBound(to: (any JobRunner).self).pointee.run(worker: worker)
            }
        }
    }
}

/// Runs `job` for every shard on `workers` concurrent workers; worker w takes
/// shards w, w + W, w + 2W, … (a fixed assignment, so worker w can own
/// workspace w).
func forEachShard<Job: ShardJob>(_ shardCount: Int, workers: Int, _ job: Job) {
    let workers = max(1, min(workers, shardCount))
    onWorkers(workers, EveryShard(job: job, shardCount: shardCount, workers: workers))
}

/// `forEachShard` with a closure `body(worker, shard)`.
func forEachShard(_ shardCount: Int, workers: Int, _ body: @Sendable (Int, Int) -> Void) {
    withoutActuallyEscaping(body) { body in forEachShard(shardCount, workers: workers, ShardClosure(body: body)) }
}

private struct EveryShard<Job: ShardJob>: WorkerJob {
    let job: Job
    let shardCount: Int, workers: Int

    func run(worker: Int) {
        for shard in stride(from: worker, to: shardCount, by: workers) { job.run(worker: worker, shard: shard) }
    }
}

private struct ShardClosure: ShardJob {
    let body: @Sendable (Int, Int) -> Void
    func run(worker: Int, shard: Int) { body(worker, shard) }
}

/// A job type the C callback can call without knowing it.
private protocol JobRunner {
    func run(worker: Int)
}

/// Points at a job on the stack of `onWorkers`, which outlives the region:
/// `dispatch_apply_f` returns only after every worker has.
private struct JobPointer<Job: WorkerJob>: JobRunner {
    let job: UnsafePointer<Job>
    func run(worker: Int) { job.pointee.run(worker: worker) }
}

// MARK: - Phases of fixed tasks in one region

/// Work cut into phases of fixed tasks. A task may start once what it needs
/// of the phase before it is done: by default all of it; or, where the job
/// says so, only some blocks of rows, which lets a worker start the next
/// layer on rows whose previous layer is complete while other rows are not.
protocol PhasedJob: Sendable {
    func run(worker: Int, phase: Int, task: Int)
    /// What task `task` of `phase` (> 0) needs of phase − 1: nil for all of
    /// it, or these row blocks, each complete when `tasksPerBlock` of that
    /// phase's tasks marking it are done.
    func needs(phase: Int, task: Int) -> (rowBlocks: Range<Int>, tasksPerBlock: Int)?
    /// The row block whose counter the task adds to when done, if any.
    func marks(phase: Int, task: Int) -> Int?
}

extension PhasedJob {
    func needs(phase: Int, task: Int) -> (rowBlocks: Range<Int>, tasksPerBlock: Int)? { nil }
    func marks(phase: Int, task: Int) -> Int? { nil }
}

/// The counters of one `runPhases` call: the tasks done in each phase, and
/// in each of its row blocks, each on its own cache line. Reset by
/// `runPhases`; owned by one caller at a time.
final class PhaseCounters: @unchecked Sendable {
    /// Longs per counter: a cache line, and then some (adjacent-line prefetch).
    private static let spacing = 16
    let maximumPhases: Int
    let maximumRowBlocks: Int
    private let storage: UnsafeMutablePointer<Int>
    /// phaseEnds[p]: tasks in phases 0…p together.
    let phaseEnds: UnsafeMutablePointer<Int>

    init(maximumPhases: Int, maximumRowBlocks: Int = 0) {
        self.maximumPhases = maximumPhases
        self.maximumRowBlocks = maximumRowBlocks
        let count = maximumPhases * (1 + maximumRowBlocks) * Self.spacing
        storage = .allocate(capacity: count)
        storage.initialize(repeating: 0, count: count)
        phaseEnds = .allocate(capacity: maximumPhases)
        phaseEnds.initialize(repeating: 0, count: maximumPhases)
    }

    deinit {
        storage.deallocate()
        phaseEnds.deallocate()
    }

    func done(_ phase: Int) -> UnsafeMutablePointer<Int> { storage + phase * (1 + maximumRowBlocks) * Self.spacing }
    func done(_ phase: Int, rowBlock: Int) -> UnsafeMutablePointer<Int> {
        precondition(rowBlock < maximumRowBlocks, "row block \(rowBlock) beyond \(maximumRowBlocks)")
        return done(phase) + (1 + rowBlock) * Self.spacing
    }

    /// Tasks in phase p.
    func tasks(in phase: Int) -> Int { phaseEnds[phase] - (phase == 0 ? 0 : phaseEnds[phase - 1]) }

    /// Zeroes every counter of the first `phaseCount` phases.
    func reset(phases phaseCount: Int) {
        for p in 0..<phaseCount {
            backprop_atomic_store(done(p), 0)
            for b in 0..<maximumRowBlocks { backprop_atomic_store(done(p, rowBlock: b), 0) }
        }
    }
}

/// Runs every task of `phaseCount` phases (sizes in `counters.phaseEnds`) on
/// the workers of `team`. Workers claim tasks in order (`Team.run`) and,
/// before running a task, wait until what it needs of the previous phase
/// is done (`PhasedJob.needs`). A worker waits only on tasks already
/// claimed, by workers that are running them, so the phases finish even if
/// the workers run one after another; which worker runs which task varies,
/// and must not matter.
func runPhases<Job: PhasedJob>(_ phaseCount: Int, team: Team, counters: PhaseCounters, _ job: Job) {
    precondition(phaseCount <= counters.maximumPhases, "\(phaseCount) phases for \(counters.maximumPhases) counters")
    let total = phaseCount == 0 ? 0 : counters.phaseEnds[phaseCount - 1]
    counters.reset(phases: phaseCount)
    team.run(tasks: total, PhasedTasks(job: job, counters: counters))
}

/// Task t of the phases: the phase it lies in, its wait for what it needs, then its run and its counts.
private struct PhasedTasks<Job: PhasedJob>: TeamJob {
    let job: Job
    let counters: PhaseCounters

    func run(worker: Int, task t: Int) {
        var phase = 0
        while t >= counters.phaseEnds[phase] { phase += 1 }
        let task = t - (phase == 0 ? 0 : counters.phaseEnds[phase - 1])
        if phase > 0 {
            if let (blocks, perBlock) = job.needs(phase: phase, task: task) {
                for b in blocks { backprop_wait_at_least(counters.done(phase - 1, rowBlock: b), perBlock) }
            } else {
                backprop_wait_at_least(counters.done(phase - 1), counters.tasks(in: phase - 1))
            }
        }
        job.run(worker: worker, phase: phase, task: task)
        if let b = job.marks(phase: phase, task: task) {
            _ = backprop_atomic_fetch_add(counters.done(phase, rowBlock: b), 1)
        }
        _ = backprop_atomic_fetch_add(counters.done(phase), 1)
    }
}

/// A pointer the workers share. The rule that makes it safe: the tasks that
/// run at the same time write disjoint parts of what it points at, and read
/// only what no running task writes.
struct SharedPointer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
}
