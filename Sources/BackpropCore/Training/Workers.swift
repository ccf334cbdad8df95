import CDispatch

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
