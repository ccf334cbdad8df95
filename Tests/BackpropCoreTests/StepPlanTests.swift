@testable import BackpropCore
import Testing

/// The order in which a step's tasks are claimed.
struct StepPlanTests {
    @Test("a phase that waits for all of the one before claims its longest tasks first, each task once; row phases keep their rows in order",
          arguments: [[784, 256, 128, 10], [70, 300, 40, 5], [5, 3]])
    func longestFirst(sizes: [Int]) {
        let plan = StepPlan(sizes: sizes, rows: 256, shardSize: 128, perSample: false, destination: .optimizer)
        for (p, phase) in plan.phases.enumerated() {
            let claimed = (0..<phase.taskCount).map { phase.locate($0) }
            // Every task of every part exactly once.
            for (partIsFirst, part) in [(true, phase.first)] + (phase.second.map { [(false, $0)] } ?? []) {
                let tasks = claimed.filter { $0.part.work == part.work }.map(\.task).sorted()
                #expect(tasks == Array(0..<part.grid.count), "phase \(p), \(partIsFirst ? "first" : "second") part")
            }
            let sizes = claimed.map { $0.part.grid.block($0.task) }.map { $0.rows.count * $0.columns.count }
            if phase.claims != nil {
                #expect(sizes == sizes.sorted(by: >), "phase \(p) does not claim its longest tasks first: \(sizes)")
            } else {
                // Row-blocked parts in grid order, so that rows are done in order.
                let rowTasks = claimed.filter { $0.part.work.isRowBlocked }.map(\.task)
                #expect(rowTasks == rowTasks.sorted(), "phase \(p)")
            }
        }
        // The last phase of the reference model: the 28 whole 32 × 256 blocks (layer 1's 4, layer 0's 24),
        // then layer 0's 8 blocks of 32 × 16 (its inputs 768…783), which were claimed among the others before.
        if sizes == [784, 256, 128, 10], let last = plan.phases.last {
            let claimed = (0..<last.taskCount).map { last.locate($0) }
            let blocks = claimed.map { $0.part.grid.block($0.task) }
            #expect(blocks.prefix(28).allSatisfy { $0.rows.count == 32 && $0.columns.count == 256 })
            #expect(claimed.suffix(8).allSatisfy { $0.part.work == .update(0) }
                    && blocks.suffix(8).allSatisfy { $0.columns == 768..<784 })
        }
    }
}
