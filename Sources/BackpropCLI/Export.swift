import ArgumentParser
import BackpropCore
import BackpropHDF5
import Foundation

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
        for suffix in format == .keras ? [".weights.h5", ".json"] : [".npz"] {
            try refuseOverwritingInputs(base + suffix, flag: "--output", inputs: [checkpoint])
        }
        switch format {
        case .keras:
            // The pair appears together or not at all: both are written
            // beside their places first, then renamed into them.
            let (weights, json) = (base + ".weights.h5", base + ".json")
            let staged = [weights, json].map {
                FileSystem.temporaryPath(in: URL(fileURLWithPath: $0).deletingLastPathComponent().path, for: "staged")
            }
            defer { for path in staged { unlink(path) } }
            try Export.kerasWeights(network, to: staged[0])
            try FileSystem.writeAtomically(Array(Export.kerasModelJSON(network).utf8), to: staged[1])
            for (from, to) in zip(staged.reversed(), [json, weights]) where rename(from, to) != 0 {
                throw StorageError.io(path: to, reason: "cannot put the exported file in place (\(String(cString: strerror(errno))))")
            }
            print("wrote \(weights) and \(json)")
        case .npz:
            try Export.npz(network, to: base + ".npz")
            print("wrote \(base).npz")
        }
    }
}
