import ArgumentParser
import BackpropCore

/// `backprop gradcheck`: backpropagation against finite differences.
struct GradientCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradcheck",
        abstract: "Check backpropagation against central finite differences in Double, for every activation × loss, and a training step's gradient with label smoothing and dropout (fixed masks).")

    @Option(help: "Largest relative error accepted.")
    var tolerance = 1e-6
    @Option(help: "Seed of the random networks and inputs.")
    var seed: UInt64 = 0

    func validate() throws {
        try refuseOutOfDomain(in: self)
        guard tolerance > 0 else { throw ValidationError("--tolerance: \(tolerance) is not a number > 0.") }
    }

    func run() throws {
        var worstOverall = 0.0
        let hidden: [Activation] = Activation.allCases.filter(\.isElementwise)
        for loss in Loss.allCases {
            for activation in hidden {
                // Sum-of-squares runs with g = h, so every g' is checked too.
                let problem = try gradientCheckProblem(
                    sizes: [5, 7, 6, 4], activation: activation, loss: loss,
                    outputActivation: loss == .sumOfSquares ? activation : nil, seed: seed)
                let results = checkGradients(of: problem.network, inputs: problem.inputs, targets: problem.targets)
                let worst = results.map(\.worstRelativeError).max() ?? 0
                worstOverall = max(worstOverall, worst)
                let detail = results.map { String(format: "L%ld.%@ %.1e", $0.layer, $0.tensor == "weight" ? "w" : "b", $0.worstRelativeError) }
                print("\(worst <= tolerance ? "ok  " : "FAIL") \(loss.rawValue) × \(activation.rawValue): " + detail.joined(separator: "  "))
            }
        }
        // A training step's own gradient, with what it keys held fixed.
        let steps: [(String, Activation, Double, Dropout)] = [
            ("label smoothing 0.1", .tanh, 0.1, Dropout()),
            ("dropout 0.3 (fixed masks)", .relu, 0, Dropout(hidden: [0.3])),
            ("dropout 0.2,0.5 (fixed masks)", .leakyRelu, 0, Dropout(hidden: [0.2, 0.5])),
            ("input dropout 0.25 (fixed masks)", .tanh, 0, Dropout(input: 0.25)),
            ("dropout 0.3 and label smoothing 0.2", .identity, 0.2, Dropout(input: 0.1, hidden: [0.3])),
        ]
        for (name, activation, smoothing, dropout) in steps {
            let problem = try gradientCheckProblem(sizes: [5, 7, 6, 4], activation: activation, loss: .crossEntropy, rows: 6, seed: seed)
            let dataset = gradientCheckDataset(inputs: problem.inputs, targets: problem.targets, inputCount: 5, loss: .crossEntropy)
            let results = checkStepGradients(of: problem.network, dataset: dataset, labelSmoothing: smoothing,
                                             regularization: KeyedRegularization(seed: seed, dropout: dropout))
            let worst = results.map(\.worstRelativeError).max() ?? 0
            worstOverall = max(worstOverall, worst)
            let detail = results.map { String(format: "L%ld.%@ %.1e", $0.layer, $0.tensor == "weight" ? "w" : "b", $0.worstRelativeError) }
            print("\(worst <= tolerance ? "ok  " : "FAIL") step: \(name), \(activation.rawValue): " + detail.joined(separator: "  "))
        }
        print(String(format: "worst relative error %.2e (tolerance %.0e)", worstOverall, tolerance))
        guard worstOverall <= tolerance else { throw ExitCode.failure }
    }
}
