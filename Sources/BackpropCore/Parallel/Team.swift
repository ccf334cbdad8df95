import CGemm
import Foundation

/// The workers of a training step, kept awake between steps: workers
/// 1..<W are the iterations of one `concurrentPerform` region that lasts
/// as long as the team, and the caller of `run` is worker 0.
///
/// Starting a region every step wakes parked threads with system calls
/// every step (each a microsecond or more, ten and more in a gVisor guest,
/// and thread wake-ups of 30 µs on 16 cores). Here a worker that has
/// no task left spins for the next step for a while (`spinNanoseconds`),
/// yielding its core to other threads, and only then sleeps in the kernel
/// until a step is published (team.c): the way OpenMP runtimes keep their
/// team (libgomp's spin count, KMP_BLOCKTIME).
///
/// Tasks are claimed from one counter tagged with the step's generation,
/// so a worker that arrives late for a step, or for a step already over,
/// claims nothing it should not: no wait ever depends on a worker that is
/// never scheduled. If the region gets fewer threads than workers (a pool
/// of one, more workers than cores), worker 0 and whoever comes run every
/// task; a descheduled worker delays only the task it holds.
final class Team: @unchecked Sendable {
    // Sendable: every shared word is read and written through the atomics
    // of CGemm; the job is read only by a worker that claimed one of its
    // tasks, which `run` waits for before it returns.

    /// W, the workers of every `run` (the caller is worker 0).
    let workerCount: Int
    /// How long a worker without a task spins (then yields) for the next step before it sleeps.
    static let spinNanoseconds = 300_000
    private let words: Words
    /// The region's end, signalled by its thread.
    private let regionEnded = DispatchSemaphore(value: 0)
    private var regionStarted = false

    /// The workers of the region: W − 1, or fewer to stand for a region
    /// that gets fewer threads than it asked for (tests).
    private let helperCount: Int

    /// A team of `workers` workers; `regionThreads`, when given, starts
    /// only that many of workers 1..<W (0: the caller runs every task).
    init(workers: Int, regionThreads: Int? = nil) {
        precondition(workers > 0, "a team of \(workers) workers")
        workerCount = workers
        helperCount = min(workers - 1, max(0, regionThreads ?? workers))
        words = Words()
    }

    deinit {
        guard regionStarted else { return }
        backprop_atomic_store(words.stopping, 1)
        _ = backprop_publish(words.generation, words.sleepers)
        regionEnded.wait()
    }

    /// Runs `job`'s tasks 0..<`tasks` once each on the team's workers and
    /// returns when every one has finished. Owned by one caller at a time.
    func run<Job: TeamJob>(tasks: Int, _ job: Job) {
        if tasks == 0 { return }
        if helperCount == 0 {
            // No one to share with: the tasks in order, on the caller.
            for task in 0..<tasks { job.run(worker: 0, task: task) }
            return
        }
        precondition(tasks <= Words.maximumTasks, "\(tasks) tasks in one step; a team runs at most \(Words.maximumTasks)")
        if !regionStarted { startRegion() }
        withUnsafePointer(to: job) { job in
            // One word, so the existential holds it inline: no box.
            var runner: any TaskRunner = TaskPointer(job: job)
            withUnsafeMutablePointer(to: &runner) { runner in
                // Publish: the job, its size and zeroed counters, then the
                // generation (release), which the workers wait on.
                let generation = backprop_atomic_load(words.generation) + 1
                backprop_atomic_store(words.job, Int(bitPattern: UnsafeRawPointer(runner)))
                backprop_atomic_store(words.finished, 0)
                backprop_atomic_store(words.next, Words.claim(generation: generation, total: tasks, task: 0))
                _ = backprop_publish(words.generation, words.sleepers)
                TeamView(words: words).work(worker: 0, generation: generation)
                // Every task finished: no worker touches this step's
                // counters or its job after this.
                backprop_wait_at_least(words.finished, tasks)
            }
        }
    }

    /// `body(t)` for t in 0..<`tasks`, each once, on the team's workers.
    func forEach(_ tasks: Int, _ body: @Sendable (Int) -> Void) {
        withoutActuallyEscaping(body) { body in run(tasks: tasks, ClosureTasks(body: body)) }
    }

    private struct ClosureTasks: TeamJob {
        let body: @Sendable (Int) -> Void
        func run(worker: Int, task: Int) { body(task) }
    }

    /// Starts the region of workers 1..<W on a thread of its own, which
    /// waits in it until the team ends.
    private func startRegion() {
        regionStarted = true
        let (words, helpers, ended) = (self.words, helperCount, regionEnded)
        let thread = Thread {
            onWorkers(helpers, Helpers(words: words))
            ended.signal()
        }
        thread.name = "backprop team"
        thread.start()
    }

    /// Workers 1..<W: each waits for a step, works on it, and waits for the next.
    private struct Helpers: WorkerJob {
        let words: Words

        func run(worker index: Int) {
            var seen = 0
            while true {
                seen = backprop_await_change(words.generation, seen, words.sleepers, Team.spinNanoseconds)
                if backprop_atomic_load(words.stopping) != 0 { return }
                TeamView(words: words).work(worker: index + 1, generation: seen)
            }
        }
    }
}

/// The team's claim-and-run loop, over its shared words alone (what the
/// region's workers hold; they do not keep the team alive).
private struct TeamView {
    let words: Team.Words

    /// Claims step `generation`'s tasks until there are none; runs each.
    /// The job is read only once a task of it is claimed (it lives until
    /// that task finishes), then once for all of this worker's tasks.
    func work(worker: Int, generation: Int) {
        guard let first = claim(generation: generation) else { return }
        let runner = UnsafeRawPointer(bitPattern: backprop_atomic_load(words.job))!
        runner.assumingMemoryBound(to: (any TaskRunner).self).pointee.run(worker: worker, first: first, generation: generation, team: self)
        // The last task counts only now that this worker holds no copy of
        // the job: `run` may return, and the job's closures end, once it does.
        _ = backprop_atomic_fetch_add(words.finished, 1)
    }

    /// Runs `first`, then claims and runs the next until none is left;
    /// counts every task finished but the last (`work` counts it).
    @inline(__always)
    func runAll<Job: TeamJob>(_ job: Job, worker: Int, first: Int, generation: Int) {
        var task = first
        while true {
            job.run(worker: worker, task: task)
            guard let next = claim(generation: generation) else { return }
            _ = backprop_atomic_fetch_add(words.finished, 1)
            task = next
        }
    }

    /// The next unclaimed task of step `generation`, or nil when that step
    /// has none left or is over.
    func claim(generation: Int) -> Int? {
        while true {
            let current = backprop_atomic_load(words.next)
            let claim = Team.Words.split(current)
            if claim.tag != Team.Words.tag(generation) || claim.task >= claim.total { return nil }
            if backprop_atomic_compare_exchange(words.next, current, current + 1) != 0 { return claim.task }
        }
    }
}

extension Team {
    /// The words the workers share, each on a cache line of its own.
    final class Words: @unchecked Sendable {
        private static let spacing = 16
        private let storage: UnsafeMutablePointer<Int>

        init() {
            storage = .allocate(capacity: 8 * Self.spacing)
            storage.initialize(repeating: 0, count: 8 * Self.spacing)
        }

        deinit { storage.deallocate() }

        /// The step being run (0 before the first).
        var generation: UnsafeMutablePointer<Int> { storage }
        /// Workers asleep in the kernel, or about to be.
        var sleepers: UnsafeMutablePointer<Int> { storage + Self.spacing }
        /// The next task, with its step's tag and task count: `claim(generation:total:task:)`.
        var next: UnsafeMutablePointer<Int> { storage + 2 * Self.spacing }
        /// Tasks finished in the current step.
        var finished: UnsafeMutablePointer<Int> { storage + 3 * Self.spacing }
        /// The current step's `TaskRunner`, as an address.
        var job: UnsafeMutablePointer<Int> { storage + 4 * Self.spacing }
        /// 1 once the team ends.
        var stopping: UnsafeMutablePointer<Int> { storage + 5 * Self.spacing }

        /// The claim counter's value: the step's tag, its task count and
        /// the next task, in one word, so that a worker late for a step
        /// reads the step and its size together with the task.
        static func claim(generation: Int, total: Int, task: Int) -> Int { tag(generation) << 40 | total << 20 | task }
        static func tag(_ generation: Int) -> Int { generation & 0x7f_ffff }
        /// The most tasks of one step (20 bits).
        static let maximumTasks = 1 << 20 - 1
        static func split(_ claim: Int) -> (tag: Int, total: Int, task: Int) {
            (claim >> 40, (claim >> 20) & maximumTasks, claim & maximumTasks)
        }
    }
}

/// Work cut into tasks 0..<n that a team runs, each once, on any worker.
protocol TeamJob: Sendable {
    func run(worker: Int, task: Int)
}

/// A job type the team's workers can call without knowing it.
private protocol TaskRunner {
    func run(worker: Int, first: Int, generation: Int, team: TeamView)
}

/// Points at a job on the stack of `Team.run`, which returns only after
/// every task has finished.
private struct TaskPointer<Job: TeamJob>: TaskRunner {
    let job: UnsafePointer<Job>
    func run(worker: Int, first: Int, generation: Int, team: TeamView) {
        team.runAll(job.pointee, worker: worker, first: first, generation: generation)
    }
}
