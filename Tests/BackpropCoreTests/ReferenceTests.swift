import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// Gradients and optimizer steps against numbers from References/make_references.py.
struct ReferenceTests {
    struct OptimizerCase: Decodable {
        let settings: OptimizerSettings
        /// η, which make_references.py writes among the rule's settings (Backprop keeps it in the schedule).
        let learningRate: Double
        let steps: [[Double]]

        private enum Keys: String, CodingKey { case settings, steps, learningRate }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            settings = try c.decode(OptimizerSettings.self, forKey: .settings)
            learningRate = try c.nestedContainer(keyedBy: Keys.self, forKey: .settings).decode(Double.self, forKey: .learningRate)
            steps = try c.decode([[Double]].self, forKey: .steps)
        }
    }

    struct References: Decodable {
        let sizes: [Int]
        let inputs: [Double]
        let labels: [Int]
        let parameters: [Double]
        let meanLoss: Double
        let meanGradient: [Double]
        let optimizers: [OptimizerCase]
    }

    static let references: References = {
        guard let url = Bundle.module.url(forResource: "references", withExtension: "json", subdirectory: "References"),
              let data = try? Data(contentsOf: url),
              let references = try? JSONDecoder().decode(References.self, from: data)
        else { preconditionFailure("References/references.json is missing or malformed") }
        return references
    }()

    /// The reference network in Float, its inputs and one-hot targets.
    func problem() throws -> (network: Network<Float>, inputs: [Float], targets: [Float]) {
        let r = Self.references
        var network = try Network<Float>(sizes: r.sizes, hiddenActivation: .relu, loss: .crossEntropy)
        network.parameters = r.parameters.map { Float($0) }
        var targets = [Float](repeating: 0, count: r.labels.count * network.outputCount)
        for (n, label) in r.labels.enumerated() { targets[n * network.outputCount + label] = 1 }
        return (network, r.inputs.map { Float($0) }, targets)
    }

    @Test("loss and mean gradient match NumPy")
    func gradient() throws {
        let (network, inputs, targets) = try problem()
        let batch = Float(Self.references.labels.count)
        let (g, e) = network.gradient(inputs: inputs, targets: targets)
        #expect(isClose(Double(e / batch), Self.references.meanLoss, .float32Reference))
        for (i, expected) in Self.references.meanGradient.enumerated() {
            #expect(isClose(Double(g[i] / batch), expected, .float32Reference), "parameter \(i)")
        }
    }

    @Test("two steps of each optimizer match NumPy", arguments: Self.references.optimizers.map(\.settings.kind))
    func optimizerSteps(kind: OptimizerKind) throws {
        let reference = try #require(Self.references.optimizers.first { $0.settings.kind == kind })
        var (network, inputs, targets) = try problem()
        var optimizer = reference.settings.makeOptimizer(parameterCount: network.parameterCount, scalar: Float.self)
        let batch = Float(Self.references.labels.count)
        for (step, expected) in reference.steps.enumerated() {
            let mean = network.gradient(inputs: inputs, targets: targets).gradient.map { $0 / batch }
            optimizer.update(&network.parameters, along: mean, learningRate: Float(reference.learningRate))
            for (i, value) in expected.enumerated() {
                #expect(abs(Double(network.parameters[i]) - value) < 2e-6 * max(1, abs(value)),
                        "\(kind) step \(step + 1), parameter \(i): \(network.parameters[i]) vs \(value)")
            }
        }
        #expect(optimizer.state.step == 2)
    }

    @Test("learning rate 0 leaves the parameters unchanged", arguments: OptimizerKind.allCases)
    func zeroLearningRate(kind: OptimizerKind) throws {
        var (network, inputs, targets) = try problem()
        let before = network.parameters
        var optimizer = OptimizerSettings(kind: kind, weightDecay: 0.1)
            .makeOptimizer(parameterCount: network.parameterCount, scalar: Float.self)
        for _ in 0..<3 {
            optimizer.update(&network.parameters, along: network.gradient(inputs: inputs, targets: targets).gradient, learningRate: 0)
        }
        #expect(network.parameters == before)
    }
}
