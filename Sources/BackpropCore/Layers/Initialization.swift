/// How a network's parameters are drawn before training.
public enum Initialization: String, CaseIterable, Sendable, Codable {
    /// PyTorch's nn.Linear default: w and b uniform on ±1/√fan_in.
    case pytorch
    /// He et al. (2015): w ~ N(0, 2/fan_in), b = 0; suited to ReLU.
    case he
    /// Glorot & Bengio (2010): w uniform on ±√(6/(fan_in + fan_out)), b = 0.
    case xavier
}

extension Network {
    /// Draws every parameter from `scheme`, layer by layer, w before b, from
    /// `generator` (the run's initialisation stream).
    public mutating func initialize(_ scheme: Initialization, generator: inout SeededGenerator) {
        for layer in layers {
            let fanIn = Double(layer.inputCount), fanOut = Double(layer.outputCount)
            switch scheme {
            case .pytorch:
                let bound = 1 / fanIn.squareRoot()
                for i in layer.weightRange { parameters[i] = T(uniform(bound, &generator)) }
                for i in layer.biasRange { parameters[i] = T(uniform(bound, &generator)) }
            case .he:
                let deviation = (2 / fanIn).squareRoot()
                for i in layer.weightRange { parameters[i] = T(deviation * generator.nextNormal()) }
                for i in layer.biasRange { parameters[i] = 0 }
            case .xavier:
                let bound = (6 / (fanIn + fanOut)).squareRoot()
                for i in layer.weightRange { parameters[i] = T(uniform(bound, &generator)) }
                for i in layer.biasRange { parameters[i] = 0 }
            }
        }
    }

    /// Uniform on [−bound, bound).
    private func uniform(_ bound: Double, _ generator: inout SeededGenerator) -> Double {
        (2 * generator.nextUnitDouble() - 1) * bound
    }
}
