/// A multi-layer perceptron: a stack of dense layers, a loss, and all their
/// parameters in one flat vector (layer 0's w then b, layer 1's w then b, …).
///
/// Gradients and optimizer state are arrays of the same length and layout, so
/// they can be summed, scaled, updated and saved as plain arrays.
public struct Network<T: NetworkScalar>: Sendable, Equatable {
    public let layers: [Dense]
    public let loss: Loss
    /// Every weight and bias; see `Dense.weightRange` and `Dense.biasRange`.
    public var parameters: [T]

    /// Builds a network with zero parameters (call `initialize` next).
    ///
    /// - Parameters:
    ///   - sizes: widths from input to output, e.g. [784, 256, 128, 10].
    ///   - hiddenActivation: h of every layer but the last.
    ///   - outputActivation: g of the last layer; the loss's default if nil.
    ///   - loss: the error E^n of one sample (sum-of-squares or cross-entropy).
    /// - Throws: `TrainingError.invalidLayers`, `.softmaxHiddenActivation`,
    ///   `.outputActivationMismatch`.
    public init(
        sizes: [Int], hiddenActivation: Activation = .relu,
        outputActivation: Activation? = nil, loss: Loss
    ) throws(TrainingError) {
        try self.init(sizes: sizes, activations: Self.activations(layerCount: sizes.count - 1, hidden: hiddenActivation,
                                                                   output: outputActivation, loss: loss), loss: loss)
    }

    /// One activation per layer: h for every layer but the last, then g (the
    /// loss's default if nil).
    public static func activations(layerCount: Int, hidden: Activation, output: Activation?, loss: Loss) -> [Activation] {
        Array(repeating: hidden, count: max(layerCount - 1, 0)) + [output ?? loss.defaultOutputActivation]
    }

    /// Builds a network with one activation per layer (the last one is g).
    /// - Throws: as `init(sizes:hiddenActivation:outputActivation:loss:)`.
    public init(sizes: [Int], activations: [Activation], loss: Loss) throws(TrainingError) {
        guard sizes.count >= 2, sizes.allSatisfy({ $0 >= 1 }), activations.count == sizes.count - 1
        else { throw .invalidLayers(sizes) }
        // Counted in checked arithmetic: widths come from outside.
        var total = 0
        for (input, output) in zip(sizes, sizes.dropFirst()) {
            let (weights, overflow) = input.multipliedReportingOverflow(by: output)
            guard !overflow, weights <= Self.parameterLimit - output - total else {
                throw .tooManyParameters(sizes: sizes, limit: Self.parameterLimit)
            }
            total += weights + output
        }
        guard activations.dropLast().allSatisfy(\.isElementwise) else { throw .softmaxHiddenActivation }
        guard let output = activations.last, loss.allowsOutput(output) else {
            throw .outputActivationMismatch(loss: loss, activation: activations.last ?? .identity)
        }
        var layers: [Dense] = []
        var offset = 0
        for l in 0..<(sizes.count - 1) {
            let layer = Dense(inputCount: sizes[l], outputCount: sizes[l + 1],
                              activation: activations[l], weightOffset: offset)
            layers.append(layer)
            offset += layer.parameterCount
        }
        self.layers = layers
        self.loss = loss
        self.parameters = Array(repeating: 0, count: offset)
    }

    /// The most parameters a network may have: 2²⁸ (1 GiB of Float), which
    /// checkpoints also enforce on read.
    public static var parameterLimit: Int { 1 << 28 }

    public var inputCount: Int { layers[0].inputCount }
    public var outputCount: Int { layers[layers.count - 1].outputCount }
    public var parameterCount: Int { parameters.count }
    /// Layer widths from input to output.
    public var sizes: [Int] { [inputCount] + layers.map(\.outputCount) }
    /// The widest layer input or output (sizes the δ buffers).
    var maximumWidth: Int { sizes.max() ?? 0 }

    /// Multiply–add operations of one sample's forward and backward pass
    /// (2 FLOP each): forward z·wᵀ, backward δᵀ·z and δ·w (none below layer 0).
    public var flopsPerSample: Int {
        layers.enumerated().reduce(0) { total, item in
            let (l, layer) = item
            return total + 2 * layer.weightCount * (l == 0 ? 2 : 3)
        }
    }

    /// The same network with its parameters converted to another scalar type.
    public func converted<U: NetworkScalar>(to _: U.Type) -> Network<U> {
        // Sizes and activations were validated when self was built.
        guard var copy = try? Network<U>(sizes: sizes, activations: layers.map(\.activation), loss: loss)
        else { preconditionFailure("a valid network must convert") }
        copy.parameters = parameters.map { U($0) }
        return copy
    }
}

extension Network where T == Float {
    /// A short name for the exact parameters: FNV-1a (64-bit) over the bytes
    /// of every parameter's fp32 bit pattern in order, little-endian, as 16 hex digits.
    /// Two runs with the same fingerprint have the same bits (barring a
    /// collision); one differing bit anywhere changes it.
    public var fingerprint: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for value in parameters {
            var bits = UInt64(value.bitPattern)
            for _ in 0..<4 {
                hash = (hash ^ (bits & 0xff)) &* 0x0000_0100_0000_01b3
                bits >>= 8
            }
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
