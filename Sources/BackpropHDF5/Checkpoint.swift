import BackpropCore
import Foundation

/// A trained model and the state of the run that produced it, as one HDF5 file:
///
///     /                              format = "backprop-checkpoint", format_version,
///                                    program_version, created
///     /model                         loss, sizes (e.g. "784,256,128,10")
///     /model/layers/<i>              activation ("relu", …, "softmax" or "identity" last)
///     /model/layers/<i>/weight       float32 [out, in]
///     /model/layers/<i>/bias         float32 [out]
///     /training                      configuration (JSON of TrainingConfiguration)
///     /optimizer                     kind, step
///     /optimizer/<buffer>/layers/<i>/weight|bias   moments, mirroring /model
///     /progress                      epoch, batch, step
///
/// Paths mirror parameter names, so h5py users find weights where they expect.
public struct Checkpoint: Sendable {
    public static let format = "backprop-checkpoint"
    public static let formatVersion = 1
    public static let programVersion = "0.1.0"

    public var network: Network<Float>
    public var configuration: TrainingConfiguration
    public var optimizerKind: OptimizerKind
    public var optimizerState: OptimizerState<Float>
    public var position: TrainingPosition

    public init(
        network: Network<Float>, configuration: TrainingConfiguration, optimizerKind: OptimizerKind,
        optimizerState: OptimizerState<Float>, position: TrainingPosition
    ) {
        self.network = network
        self.configuration = configuration
        self.optimizerKind = optimizerKind
        self.optimizerState = optimizerState
        self.position = position
    }

    /// The checkpoint of a trainer's current state.
    public init(of trainer: Trainer) {
        self.init(network: trainer.network, configuration: trainer.configuration,
                  optimizerKind: trainer.optimizer.kind, optimizerState: trainer.optimizer.state,
                  position: trainer.position)
    }

    // MARK: - Saving

    /// Writes the checkpoint to `path` atomically: a temporary file beside it is
    /// written, fsynced and renamed into place, so `path` is never half-written.
    /// - Throws: `StorageError.io` (directory missing or not writable, disk full), `.call`.
    public func save(to path: String) throws(StorageError) {
        try FileSystem.writeAtomically(path) { (temporary) throws(StorageError) in
            let file = try HDF5File.create(temporary)
            try file.setAttribute("format", Checkpoint.format)
            try file.setAttribute("format_version", Int64(Checkpoint.formatVersion))
            try file.setAttribute("program_version", Checkpoint.programVersion)
            try file.setAttribute("created", ISO8601DateFormatter().string(from: Date()))

            try file.createGroup("/model")
            try file.setAttribute("loss", network.loss.rawValue, on: "/model")
            try file.setAttribute("sizes", network.sizes.map(String.init).joined(separator: ","), on: "/model")
            try writeParameters(network.parameters, under: "/model", to: file)
            for (l, layer) in network.layers.enumerated() {
                try file.setAttribute("activation", layer.activation.rawValue, on: "/model/layers/\(l)")
            }

            try file.createGroup("/training")
            try file.setAttribute("configuration", try Checkpoint.json(configuration, path), on: "/training")

            try file.createGroup("/optimizer")
            try file.setAttribute("kind", optimizerKind.rawValue, on: "/optimizer")
            try file.setAttribute("step", Int64(optimizerState.step), on: "/optimizer")
            for (name, buffer) in optimizerState.buffers.sorted(by: { $0.key < $1.key }) {
                try writeParameters(buffer, under: "/optimizer/\(name)", to: file)
            }

            try file.createGroup("/progress")
            try file.setAttribute("epoch", Int64(position.epoch), on: "/progress")
            try file.setAttribute("batch", Int64(position.batch), on: "/progress")
            try file.setAttribute("step", Int64(position.step), on: "/progress")
            try file.flush()
        }
    }

    /// Writes a parameter-shaped vector as <group>/layers/<i>/weight [out, in] and bias [out].
    private func writeParameters(_ values: [Float], under group: String, to file: HDF5File) throws(StorageError) {
        for (l, layer) in network.layers.enumerated() {
            try file.write(Array(values[layer.weightRange]), shape: [layer.outputCount, layer.inputCount],
                           to: "\(group)/layers/\(l)/weight")
            try file.write(Array(values[layer.biasRange]), shape: [layer.outputCount], to: "\(group)/layers/\(l)/bias")
        }
    }

    private static func json(_ configuration: TrainingConfiguration, _ path: String) throws(StorageError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(configuration), let text = String(data: data, encoding: .utf8) else {
            throw .io(path: path, reason: "cannot encode the training configuration")
        }
        return text
    }

    // MARK: - Loading

    /// Reads and validates a checkpoint: the format and version first, then the
    /// layers (shapes must chain, activations must be known, values finite),
    /// the configuration, the optimizer state and the progress.
    /// - Throws: `StorageError` naming the file and the object at fault.
    public static func load(from path: String) throws(StorageError) -> Checkpoint {
        let file = try HDF5File.open(path)
        let format = file.hasAttribute("format") ? try file.stringAttribute("format") : "non-checkpoint HDF5"
        guard format == Checkpoint.format else { throw .wrongFormat(path: path, found: format, expected: Checkpoint.format) }
        let version = Int(try file.attribute("format_version", as: Int64.self))
        guard version == formatVersion else {
            throw .unsupportedVersion(path: path, found: version, supported: formatVersion)
        }

        let lossName = try file.stringAttribute("loss", of: "/model")
        guard let loss = Loss(rawValue: lossName) else {
            throw .invalidContent(path: path, object: "attribute 'loss' of /model", reason: "unknown loss '\(lossName)'")
        }
        var sizes: [Int] = []
        var activations: [Activation] = []
        for l in 0... {
            let group = "/model/layers/\(l)"
            guard file.exists(group) else { break }
            let shape = try file.shape(of: "\(group)/weight")
            guard shape.count == 2 else { throw .wrongRank(path: path, object: "\(group)/weight", expected: 2, found: shape.count) }
            if l == 0 { sizes.append(shape[1]) }
            guard shape[1] == sizes[l] else {
                throw .wrongShape(path: path, object: "\(group)/weight", expected: "[out, \(sizes[l])] (the previous layer's output)",
                                  found: "[\(shape[0]), \(shape[1])]")
            }
            sizes.append(shape[0])
            let name = try file.stringAttribute("activation", of: group)
            guard let activation = Activation(rawValue: name) else {
                throw .invalidContent(path: path, object: "attribute 'activation' of \(group)", reason: "unknown activation '\(name)'")
            }
            activations.append(activation)
        }
        guard !activations.isEmpty else { throw .missingObject(path: path, object: "/model/layers/0") }
        var network: Network<Float>
        do {
            network = try Network<Float>(sizes: sizes, activations: activations, loss: loss)
        } catch {
            throw .invalidContent(path: path, object: "/model", reason: error.description)
        }
        network.parameters = try readParameters(of: network, under: "/model", from: file)

        let text = try file.stringAttribute("configuration", of: "/training")
        guard let data = text.data(using: .utf8),
              let configuration = try? JSONDecoder().decode(TrainingConfiguration.self, from: data)
        else { throw .invalidContent(path: path, object: "attribute 'configuration' of /training", reason: "is not a valid configuration") }

        let kindName = try file.stringAttribute("kind", of: "/optimizer")
        guard let kind = OptimizerKind(rawValue: kindName) else {
            throw .invalidContent(path: path, object: "attribute 'kind' of /optimizer", reason: "unknown optimizer '\(kindName)'")
        }
        var state = OptimizerState<Float>(step: Int(try file.attribute("step", of: "/optimizer", as: Int64.self)))
        for name in ["velocity", "m", "v"] where file.exists("/optimizer/\(name)") {
            state.buffers[name] = try readParameters(of: network, under: "/optimizer/\(name)", from: file)
        }
        let position = TrainingPosition(
            epoch: Int(try file.attribute("epoch", of: "/progress", as: Int64.self)),
            batch: Int(try file.attribute("batch", of: "/progress", as: Int64.self)),
            step: Int(try file.attribute("step", of: "/progress", as: Int64.self)))
        return Checkpoint(network: network, configuration: configuration, optimizerKind: kind,
                          optimizerState: state, position: position)
    }

    /// Reads a parameter-shaped vector from <group>/layers/<i>/weight and bias,
    /// checking shapes against the network and that every value is finite.
    private static func readParameters(of network: Network<Float>, under group: String, from file: HDF5File) throws(StorageError) -> [Float] {
        var values = [Float](repeating: 0, count: network.parameterCount)
        for (l, layer) in network.layers.enumerated() {
            for (part, range, shape) in [("weight", layer.weightRange, [layer.outputCount, layer.inputCount]),
                                         ("bias", layer.biasRange, [layer.outputCount])] {
                let object = "\(group)/layers/\(l)/\(part)"
                let (read, found) = try file.read(object, as: Float.self, rank: shape.count)
                guard found == shape else {
                    throw .wrongShape(path: file.path, object: object, expected: "\(shape)", found: "\(found)")
                }
                if let bad = read.firstIndex(where: { !$0.isFinite }) {
                    throw .invalidContent(path: file.path, object: object, reason: "value \(bad) is \(read[bad]); weights must be finite")
                }
                values.replaceSubrange(range, with: read)
            }
        }
        return values
    }
}
