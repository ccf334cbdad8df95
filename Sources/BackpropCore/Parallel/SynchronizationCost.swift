/// What it costs to start and synchronise a step's workers, without their
/// work (`backprop bench`'s sync line): the numbers that explain a machine's
/// "other" time, so that the next machine's table explains itself.
public struct SynchronizationCost: Sendable, Codable, Equatable {
    /// Workers measured.
    public var workers: Int
    /// Median µs that one step on a team kept awake takes beyond its work
    /// (W tasks of `taskMicroseconds`, one a worker): publishing it, the
    /// workers' claims, and waiting for the last.
    public var teamStepMicroseconds: Double
    /// Median µs that one phase boundary inside a step takes beyond the work
    /// (phases of W such tasks, each waiting for all of the phase before).
    public var phaseBoundaryMicroseconds: Double
    /// Median µs that one `concurrentPerform` region of W such iterations
    /// takes beyond its work: what a step paid to start its workers before the team.
    public var regionMicroseconds: Double
    /// The work of each task, µs of spinning on the clock.
    public static let taskMicroseconds = 10.0

    /// Measures each cost `rounds` times (each a mean over 100 repetitions) and keeps the medians.
    public static func measure(workers: Int, rounds: Int = 7) -> SynchronizationCost {
        let team = Team(workers: workers)
        let phases = 8
        let counters = PhaseCounters(maximumPhases: phases)
        for p in 0..<phases { counters.phaseEnds[p] = (p + 1) * workers }
        let repetitions = 100
        /// The median over `rounds` of the mean µs of `body` beyond `tasks` tasks' work a worker, after one untimed round.
        func overhead(tasks: Int, _ body: () -> Void) -> Double {
            for _ in 0..<repetitions { body() }
            var samples: [Double] = []
            for _ in 0..<rounds {
                let start = monotonicNanoseconds()
                for _ in 0..<repetitions { body() }
                samples.append(Double(monotonicNanoseconds() &- start) / Double(repetitions) / 1000 - Double(tasks) * taskMicroseconds)
            }
            samples.sort()
            return samples[samples.count / 2]
        }
        let step = overhead(tasks: 1) { team.run(tasks: workers, Busy()) }
        let phased = overhead(tasks: phases) { runPhases(phases, team: team, counters: counters, Busy()) }
        let region = overhead(tasks: 1) { onWorkers(workers, Busy()) }
        return SynchronizationCost(workers: workers, teamStepMicroseconds: step,
                                   phaseBoundaryMicroseconds: (phased - step) / Double(phases - 1), regionMicroseconds: region)
    }

    /// Work of `taskMicroseconds` (spinning on the clock), as every kind of job.
    private struct Busy: TeamJob, PhasedJob, WorkerJob {
        func run(worker: Int, task: Int) { spin() }
        func run(worker: Int, phase: Int, task: Int) { spin() }
        func run(worker: Int) { spin() }

        private func spin() {
            let end = monotonicNanoseconds() &+ UInt64(SynchronizationCost.taskMicroseconds * 1000)
            while monotonicNanoseconds() < end {}
        }
    }
}
