import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// Distillation: E^n = αT²·KL(q_T ‖ softmax(a/T)) + (1 − α)·CE(t, y), and
/// δ_k = αT(s_k − q_k) + (1 − α)(y_k − t_k) (Loss.swift's derivation).
struct DistillationTests {
    /// `count` rows of a teacher's probabilities over `classes`, each a distribution with no zero, from `seed`.
    static func teacher(count: Int, classes: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).flatMap { _ -> [Float] in
            let raw = (0..<classes).map { _ in Float(generator.nextNormal() * 1.5) }
            let top = raw.max()!
            let e = raw.map { Foundation.exp($0 - top) }
            let sum = e.reduce(0, +)
            return e.map { $0 / sum }
        }
    }

    @Test("the step's gradient equals central differences of its E = Σ_n αT²·KL + (1 − α)·CE, in Double",
          arguments: [(0.5, 1.0), (0.9, 4.0), (1.0, 0.5), (0.3, 2.0)])
    func centralDifferences(α: Double, T: Double) throws {
        let problem = try gradientCheckProblem(sizes: [5, 7, 4], activation: .tanh, loss: .crossEntropy, rows: 6, seed: 3)
        var dataset = gradientCheckDataset(inputs: problem.inputs, targets: problem.targets, inputCount: 5, loss: .crossEntropy)
        var teacher = Self.teacher(count: 6, classes: 4, seed: 8)
        // A class the teacher rules out: q_k = 0 (its KL term is 0, its gradient s_k).
        teacher[0..<4] = [0.6, 0, 0.3, 0.1]
        dataset.teacher = TeacherColumn(teacher)
        let results = checkStepGradients(of: problem.network, dataset: dataset, distillation: Distillation(weight: α, temperature: T))
        for result in results {
            #expect(result.worstRelativeError < Tolerance.finiteDifference.value,
                    "α \(α), T \(T), layer \(result.layer) \(result.tensor): \(result.worstRelativeError)")
        }
    }

    @Test("one sample by hand: zero weights give s = y = 1/3, so E = αT²·KL(q ‖ 1/3) + (1 − α) ln 3 and ∂E/∂b_k = αT(1/3 − q_k) + (1 − α)(1/3 − t_k)")
    func handComputed() throws {
        var c = TrainingConfiguration()
        c.sizes = [2, 3]
        let network: Network<Float> = try c.makeNetwork()
        var dataset = Dataset(name: "one", features: .floats([0.5, -1]), targets: .classes([0]), featureCount: 2)
        dataset.teacher = TeacherColumn([0.64, 0.32, 0.04])
        let (α, T) = (0.75, 2.0)
        let step = TrainingStep(network: network, batchSize: 1, shardSize: 1, workerCount: 1, kernel: .portable,
                                distillation: Distillation(weight: α, temperature: T))
        let (loss, gradient) = lossAndGradient(of: step, at: network, on: dataset)
        // q at T = 2: p^{1/2} = (0.8, √0.32, 0.2), normalised.
        let root = [0.8, 0.32.squareRoot(), 0.2]
        let q = root.map { $0 / root.reduce(0, +) }
        let kl = q.reduce(0) { $0 + $1 * log($1 * 3) }
        #expect(isClose(Double(loss), α * T * T * kl + (1 - α) * log(3), .floatAgainstDouble), "\(loss)")
        let t = [1.0, 0, 0]
        let expected = (0..<3).map { α * T * (1.0 / 3 - q[$0]) + (1 - α) * (1.0 / 3 - t[$0]) }
        let bias = Array(gradient[network.layers[0].biasRange]).map(Double.init)
        #expect(zip(bias, expected).allSatisfy { isClose($0, $1, .floatAgainstDouble) }, "\(bias) vs \(expected)")
        // ∂E/∂w_ji = δ_j z_i.
        let weights = Array(gradient[network.layers[0].weightRange]).map(Double.init)
        #expect(zip(weights, expected.flatMap { [$0 * 0.5, $0 * -1] }).allSatisfy { isClose($0, $1, .floatAgainstDouble) }, "\(weights)")
    }

    /// A run of 2 epochs on `dataset` with distillation (α 0.7, T 3) as `edit` says.
    func run(_ dataset: Dataset, workers: Int, kernel: Kernel = .portable,
             _ edit: (inout TrainingConfiguration) -> Void = { _ in }) throws -> [UInt32] {
        var c = TrainingConfiguration()
        (c.sizes, c.batchSize, c.shardSize, c.workers, c.epochs) = ([12, 9, 4], 40, 8, workers, 2)
        (c.distillAlpha, c.temperature) = (0.7, 3)
        edit(&c)
        let trainer = try Trainer(configuration: c, dataset: dataset, kernel: kernel)
        while !trainer.isFinished { try trainer.step() }
        return trainer.network.parameters.map(\.bitPattern)
    }

    static let dataset = {
        var dataset = randomDataset(count: 120, featureCount: 12, classCount: 4, seed: 9)
        dataset.teacher = TeacherColumn(teacher(count: 120, classes: 4, seed: 10))
        return dataset
    }()

    @Test("a distilled run is bit-identical for 1, 2 and 3 workers and any kernel path; the teacher, α and T each change it")
    func workers() throws {
        let one = try run(Self.dataset, workers: 1)
        #expect(try run(Self.dataset, workers: 2) == one && run(Self.dataset, workers: 3, kernel: .automatic) == one)
        #expect(try run(Self.dataset, workers: 1) { $0.distillAlpha = 0.5 } != one)
        #expect(try run(Self.dataset, workers: 1) { $0.temperature = 1 } != one)
        var other = Self.dataset
        other.teacher = TeacherColumn(Self.teacher(count: 120, classes: 4, seed: 11))
        #expect(try run(other, workers: 1) != one)
        #expect(other.taughtFingerprint != Self.dataset.taughtFingerprint, "the teacher is part of what a distilled run records")
        #expect(other.fingerprint == Self.dataset.fingerprint && other.teacherFingerprint != Self.dataset.teacherFingerprint,
                "the rows' fingerprint is the rows'; the teacher's column has its own")
    }

    @Test("the settings go together: T needs α, α needs cross-entropy and a teacher, whose rows are as wide as the output")
    func refusals() throws {
        var c = TrainingConfiguration()
        c.temperature = 2
        #expect(throws: TrainingError.self) { try c.validate() }
        c.distillAlpha = 0.5
        try c.validate()
        c.distillAlpha = 0
        #expect(throws: TrainingError.outOfDomain("distillAlpha", value: "0.0", domain: .probability)) { try c.validate() }
        (c.distillAlpha, c.temperature) = (0.5, 0)
        #expect(throws: TrainingError.outOfDomain("temperature", value: "0.0", domain: .positive)) { try c.validate() }
        (c.temperature, c.loss) = (2, .sumOfSquares)
        #expect(throws: TrainingError.self) { try c.validate() }
        c.loss = .crossEntropy
        c.sizes = [12, 9, 4]
        #expect(throws: TrainingError.self) { try Trainer(configuration: c, dataset: randomDataset(count: 20, featureCount: 12, classCount: 4, seed: 1)) }
        var narrow = randomDataset(count: 20, featureCount: 12, classCount: 4, seed: 1)
        narrow.teacher = TeacherColumn(Self.teacher(count: 20, classes: 3, seed: 2))
        #expect(throws: TrainingError.self) { try Trainer(configuration: c, dataset: narrow) }
    }

    @Test("the teacher's rows follow their samples into a subset and a held-out split")
    func subsets() throws {
        let (train, validation) = try Self.dataset.split(validationFraction: 0.25, seed: 3)
        let held = try Dataset.validationRows(labels: Self.dataset.labels, count: 120, fraction: 0.25, seed: 3)
        let kept = (0..<120).filter { !held.contains($0) }
        let rows = { (indices: [Int]) in indices.flatMap { Self.dataset.teacher!.probabilities[($0 * 4)..<($0 * 4 + 4)] } }
        #expect(train.teacher?.probabilities == rows(kept) && validation.teacher?.probabilities == rows(held))
        #expect(try Self.dataset.rows(10..<20).teacher?.probabilities == rows(Array(10..<20)))
    }

    @Test("a refit is exactly the members' training rows followed by their validation rows, whatever teacher rides along; every other arrangement or a malformed record is not")
    func refit() {
        let data = Dataset.random(count: 50, featureCount: 6, classCount: 3, seed: 4)
        let record = { (train: Dataset, validation: Dataset) in DataRecord.of(training: train, validation: validation) }
        let (kept, held) = (data.subset(0..<40), data.subset(40..<50))
        var taught = data
        taught.teacher = TeacherColumn(Self.teacher(count: 50, classes: 3, seed: 5))
        #expect(data.isRefit(of: record(kept, held)) && taught.isRefit(of: record(kept, held)))
        // The same rows in the same order, cut elsewhere: still every row of a run that trained and chose on them.
        #expect(data.isRefit(of: record(data.subset(0..<39), data.subset(39..<50))))
        let notRefits: [(String, String)] = [
            ("validation first", record(held, kept)),
            ("the first row left out", record(data.subset(1..<40), held)),
            ("a row short", record(kept, data.subset(40..<49))),
            ("shuffled", record(data.subset((0..<40).reversed()), held)),
            ("no validation split", kept.fingerprint),
            ("the whole as training rows", record(data, held)),
            ("no row count", "x6 bytes; validation " + held.fingerprint),
            ("zero rows", "0x6; validation " + held.fingerprint),
            ("empty", ""),
        ]
        for (name, trainedOn) in notRefits { #expect(!data.isRefit(of: trainedOn), "\(name)") }
    }
}
