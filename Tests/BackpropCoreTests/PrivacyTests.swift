import BackpropCore
import BackpropTestSupport
import Foundation
import Testing

/// The RDP accountant against Opacus (References/make_privacy_references.py),
/// and its parts against hand-derived values.
struct PrivacyTests {
    struct Case: Decodable {
        let sigma: Double, q: Double, steps: Int, delta: Double, epsilon: Double, order: Double
    }

    static let cases: [Case] = {
        guard let url = Bundle.module.url(forResource: "privacy_references", withExtension: "json", subdirectory: "References"),
              let data = try? Data(contentsOf: url) else { return [] }
        return (try? JSONDecoder().decode([Case].self, from: data)) ?? []
    }()

    @Test("ε and the best order match Opacus's RDP accountant to 1e-6 relative on 150 (σ, q, T, δ), q = 1, σ < 0.5 and T = 1 among them")
    func matchesOpacus() {
        #expect(Self.cases.count == 150)
        for c in Self.cases {
            let (epsilon, order) = PrivacyAccountant.epsilon(samplingRate: c.q, noise: c.sigma, steps: c.steps, delta: c.delta)
            #expect(isClose(epsilon, c.epsilon, .accountant) && order == c.order,
                    "σ \(c.sigma), q \(c.q), T \(c.steps), δ \(c.delta): \(epsilon) at \(order), Opacus \(c.epsilon) at \(c.order)")
        }
    }

    @Test("by hand: q = 1 is the Gaussian mechanism, α/(2σ²); A_2 = 1 + q²(e^{1/σ²} − 1)")
    func handValues() {
        #expect(PrivacyAccountant.rdp(samplingRate: 1, noise: 2, order: 3) == 3.0 / 8)
        let (q, σ) = (0.01, 1.5)
        let a2 = 1 + q * q * (exp(1 / (σ * σ)) - 1)
        #expect(isClose(PrivacyAccountant.rdp(samplingRate: q, noise: σ, order: 2), log(a2), .doubleReordered))
        #expect(PrivacyAccountant.rdp(samplingRate: 0, noise: σ, order: 2) == 0)
        #expect(PrivacyAccountant.rdp(samplingRate: q, noise: 0, order: 2) == .infinity)
        // Fractional orders lie between their integer neighbours.
        let rdp = [2.0, 2.5, 3.0].map { PrivacyAccountant.rdp(samplingRate: q, noise: σ, order: $0) }
        #expect(rdp[0] < rdp[1] && rdp[1] < rdp[2])
    }

    @Test("the noise for a target ε: the smallest σ whose ε is within it")
    func noiseForEpsilon() throws {
        let (q, steps, δ) = (256.0 / 60_000, 9_375, 1e-5)
        let σ = try #require(PrivacyAccountant.noise(forEpsilon: 3, samplingRate: q, steps: steps, delta: δ))
        #expect(PrivacyAccountant.epsilon(samplingRate: q, noise: σ, steps: steps, delta: δ).epsilon <= 3)
        #expect(PrivacyAccountant.epsilon(samplingRate: q, noise: σ * 0.99, steps: steps, delta: δ).epsilon > 3)
        #expect(PrivacyAccountant.isAtEdge(1.1) && PrivacyAccountant.isAtEdge(63) && !PrivacyAccountant.isAtEdge(12))
    }
}
