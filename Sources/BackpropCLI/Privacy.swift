import ArgumentParser
import BackpropCore
import Foundation

/// `backprop privacy`: the (ε, δ) that DP-SGD spends, without training.
struct Privacy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compute the (ε, δ) of DP-SGD from its noise, sampling rate and steps (RDP accountant), or the noise for a target ε.",
        discussion: """
        The accountant is Rényi DP of the subsampled Gaussian mechanism (Mironov et al. 2019) at Opacus's \
        orders 1.1…10.9 and 12…63, converted to (ε, δ) as Opacus does. With --epsilon it finds the smallest \
        noise multiplier that keeps ε within it. The analysis covers Poisson sampling (train --sampling poisson).
        """)

    @Option(help: "Noise multiplier σ (the noise's standard deviation over the clipping bound).")
    var noise: Double?
    @Option(help: "Find the smallest σ for this ε instead.")
    var epsilon: Double?
    @Option(help: "Sampling rate q: the probability that a step takes each example (batch size ÷ examples).")
    var sampleRate: Double
    @Option(help: "Optimizer steps.")
    var steps: Int
    @Option(help: "δ.")
    var delta: Double

    func validate() throws {
        try refuseOutOfDomain(in: self)
        guard (noise == nil) != (epsilon == nil) else { throw ValidationError("give one of --noise and --epsilon.") }
    }

    func run() throws {
        let σ: Double
        if let epsilon {
            guard let found = PrivacyAccountant.noise(forEpsilon: epsilon, samplingRate: sampleRate, steps: steps, delta: delta) else {
                throw ValidationError("no noise multiplier up to 1,000 keeps ε within \(epsilon) for \(steps) steps at q = \(sampleRate).")
            }
            σ = found
            print(String(format: "noise multiplier σ = %.4f", σ))
        } else {
            σ = noise!
        }
        let (ε, order) = PrivacyAccountant.epsilon(samplingRate: sampleRate, noise: σ, steps: steps, delta: delta)
        guard ε.isFinite else {
            print(String(format: "ε = ∞ at δ = %g after %ld steps at q = %g, σ = %g: noise this small gives no privacy guarantee",
                         delta, steps, sampleRate, σ))
            return
        }
        print(String(format: "ε = %.4f at δ = %g (best RDP order α = %g) after %ld steps at q = %g, σ = %g", ε, delta, order, steps, sampleRate, σ))
        if PrivacyAccountant.isAtEdge(order) {
            printError("warning: the best order α = \(order) lies at the edge of the orders tried (1.1…63); ε may be loose.")
        }
    }
}

extension Privacy: OptionDomains {
    static let domains: [String: SettingDomain] = ["noise": .nonNegative, "epsilon": .positive, "sampleRate": .probability,
                                                   "steps": .atLeast(1), "delta": .openUnit]
}
