import ArgumentParser
import BackpropCore
import BackpropHDF5

/// `backprop export`: a checkpoint's model for Keras or NumPy.
struct ExportModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a checkpoint's model as Keras 3 weights + model JSON, or as a NumPy .npz.",
        discussion: """
        keras: OUTPUT.weights.h5 (kernels stored [in, out]) and OUTPUT.json (a Sequential of Dense layers). \
        npz: layers.<i>.weight [out, in] and layers.<i>.bias, as a PyTorch state_dict names them.
        """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case keras, npz }

    @Option(help: "keras or npz.")
    var format: Format
    @Argument(help: "The checkpoint to export.")
    var checkpoint: String
    @Option(help: "The output path without extension (default: the checkpoint's, beside it).")
    var output: String?

    func run() throws {
        let network = try guardedRead(checkpoint) { try Checkpoint.load(from: checkpoint) }.network
        let base = output ?? String(checkpoint.dropLast(checkpoint.hasSuffix(".h5") ? 3 : 0))
        switch format {
        case .keras:
            try Export.kerasWeights(network, to: base + ".weights.h5")
            let json = base + ".json"
            try FileSystem.writeAtomically(Array(Export.kerasModelJSON(network).utf8), to: json)
            print("wrote \(base).weights.h5 and \(json)")
        case .npz:
            try Export.npz(network, to: base + ".npz")
            print("wrote \(base).npz")
        }
    }
}
