import BackpropCore
import Testing

/// The history a run carries (and every checkpoint saves) stays the same size
/// however long the run: the thinned epoch log, the best epoch, the digest of
/// every step's loss.
struct HistoryTests {
    /// Epoch `epoch`'s row, whose validation score is `score`.
    static func record(_ epoch: Int, score: Double) -> EpochRecord {
        var record = EpochRecord(epoch: epoch, step: 10 * (epoch + 1), trainLoss: 1, testLoss: .nan, testScore: .nan, learningRate: 0.1,
                                 samplesPerSecond: 1, wallTime: Double(epoch))
        (record.validationLoss, record.validationScore) = (1, score)
        return record
    }

    /// A history of `count` epochs whose scores rise to epoch `peak`, then fall.
    static func logged(_ count: Int, peak: Int) -> History {
        var history = History()
        for epoch in 0..<count { history.log(record(epoch, score: 1 / (1 + Double(abs(epoch - peak)))), task: .classification) }
        return history
    }

    @Test("the epoch log keeps every epoch up to the limit, then every 2^k-th and the last, at most keptEpochs rows")
    func thinning() {
        let short = Self.logged(History.keptEpochs, peak: 7)
        #expect(short.epochs.map(\.epoch) == Array(0..<History.keptEpochs) && short.epochStride == 1)
        for count in [History.keptEpochs + 1, 1_000, 10_001] {
            let history = Self.logged(count, peak: 7)
            let kept = history.epochs.map(\.epoch)
            #expect(kept.count <= History.keptEpochs && kept.count > History.keptEpochs / 2, "\(count): \(kept.count) rows")
            #expect(history.epochStride > 1 && history.epochStride & (history.epochStride - 1) == 0)
            // Exactly the multiples of the stride, and the last epoch.
            let expected = Array(Set(stride(from: 0, to: count, by: history.epochStride)).union([count - 1])).sorted()
            #expect(kept == expected, "\(count) epochs, stride \(history.epochStride)")
        }
    }

    @Test("the best epoch survives thinning; NaN never is best")
    func bestAfterThinning() {
        let history = Self.logged(10_001, peak: 4_321)
        #expect(history.best == History.Best(epoch: 4_321, score: 1))
        #expect(!history.epochs.contains { $0.epoch == 4_321 }, "4321 is no multiple of the stride: thinned out")
        var nan = History()
        #expect(!nan.log(Self.record(0, score: .nan), task: .classification) && nan.best == nil)
    }

    @Test("rows read back keep what log kept: resuming never changes the log or the best")
    func rowsReadBack() {
        for count in [3, 999, 5_000] {
            let history = Self.logged(count, peak: count / 3)
            let read = History(stepLosses: history.stepLosses, stepLossDigest: history.stepLossDigest, epochs: history.epochs,
                               epochStride: history.epochStride, best: history.best, task: .classification, wallTime: 0)
            #expect(read == history)
            // Logging on from either gives the same rows.
            var (a, b) = (history, read)
            for epoch in count..<(count + 777) {
                a.log(Self.record(epoch, score: 0), task: .classification)
                b.log(Self.record(epoch, score: 0), task: .classification)
            }
            #expect(a == b && a.epochs == Self.logged(count + 777, peak: count / 3).epochs.map { row in
                row.epoch < count ? row : Self.record(row.epoch, score: 0)
            })
        }
        // A pre-0.8 file holds every row: they are thinned as they are read, and the best found among them.
        let all = (0..<1_000).map { Self.record($0, score: $0 == 601 ? 0.99 : 0.5) }
        let old = History(stepLosses: [], stepLossDigest: History.emptyDigest, epochs: all, task: .classification, wallTime: 0)
        #expect(old.epochs.count <= History.keptEpochs && old.best == History.Best(epoch: 601, score: 0.99))
    }

    @Test("step losses: the epoch under way's, and a digest of every one in order")
    func stepLosses() {
        var history = History()
        let losses = [2.5, 1.25, 0.5, 0.25, 0.125]
        for (i, loss) in losses.enumerated() { history.log(stepLoss: loss, startsEpoch: i % 2 == 0) }
        #expect(history.stepLosses == [0.125])
        #expect(history.stepLossDigest == losses.reduce(History.emptyDigest, History.digest))
        // Order matters, and so does every bit.
        #expect(history.stepLossDigest != losses.reversed().reduce(History.emptyDigest, History.digest))
        #expect(history.stepLossDigest != (losses.dropLast() + [(0.125 as Double).nextUp]).reduce(History.emptyDigest, History.digest))
    }
}

/// Early stopping's and the plateau's rules on a hand-made log.
struct ChoosingTests {
    /// A log of validation losses, monitored as losses.
    static func logged(_ losses: [Double], minDelta: Double = 0) -> History {
        var history = History()
        for (epoch, loss) in losses.enumerated() {
            var record = HistoryTests.record(epoch, score: 0)
            record.validationLoss = loss
            history.log(record, task: .classification, monitor: .validationLoss, minDelta: minDelta)
        }
        return history
    }

    @Test("the monitor: lower loss is better, higher accuracy, lower RMSE; min-delta must be exceeded")
    func monitor() {
        #expect(Monitor.validationLoss.improves(0.5, on: 0.6, minDelta: 0, task: .classification))
        #expect(!Monitor.validationLoss.improves(0.55, on: 0.6, minDelta: 0.05, task: .classification))
        #expect(Monitor.validationScore.improves(0.9, on: 0.8, minDelta: 0, task: .classification))
        #expect(Monitor.validationScore.improves(0.1, on: 0.2, minDelta: 0, task: .regression))
        #expect(Self.logged([1, 0.9, 0.95, 0.89], minDelta: 0.02).best == History.Best(epoch: 1, score: 0.9))
    }

    @Test("early stopping stops `patience` epochs after the best, and not before")
    func stopping() {
        let history = Self.logged([1, 0.8, 0.9, 0.85])
        let rule = EarlyStopping(patience: 2)
        #expect(!rule.stops(after: 2, best: history.best) && rule.stops(after: 3, best: history.best))
        #expect(!rule.stops(after: 3, best: nil), "no validation split: nothing to watch")
    }

    @Test("a plateau reduces once per `patience` epochs without a better monitor, counting from the best and from the last reduction")
    func plateau() {
        var history = History()
        var reducedAt: [Int] = []
        for (epoch, loss) in [1, 0.8, 0.9, 0.9, 0.9, 0.7, 0.8, 0.8].enumerated() {
            var record = HistoryTests.record(epoch, score: 0)
            record.validationLoss = loss
            history.log(record, task: .classification, monitor: .validationLoss)
            if history.reducesRate(after: epoch, patience: 2) { reducedAt.append(epoch) }
        }
        // Best at 1; epochs 2, 3 without: reduce after 3; 4 alone is not 2 more; best at 5; 6, 7: reduce after 7.
        #expect(reducedAt == [3, 7] && history.reductions == 2 && history.lastReduction == 7)
        let schedule = LearningRateSchedule(base: 0.1, .plateau(factor: 0.5, patience: 2, minimum: 0.03))
        #expect(schedule.rate(at: 99, reductions: 0) == 0.1 && schedule.rate(at: 0, reductions: 1) == 0.05)
        #expect(schedule.rate(at: 0, reductions: 2) == 0.03, "floored at η_min")
    }
}
