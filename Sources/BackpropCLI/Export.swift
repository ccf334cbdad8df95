import ArgumentParser
import BackpropCore
import BackpropHDF5
import BackpropIO
import BackpropONNX
import Foundation

/// `backprop export`: a checkpoint's model for ONNX runtimes, Keras or NumPy.
struct ExportModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a checkpoint's model as ONNX, as Keras 3 weights + model JSON, or as a NumPy .npz.",
        discussion: """
        onnx: OUTPUT.onnx (IR version \(ONNXExport.irVersion), opset \(ONNXExport.opsetVersion)): input x float32 [batch, in], \
        one Gemm (transB = 1) and activation per layer, Softmax for classification (output "probabilities", else "y"); \
        metadata_props name the Backprop version, the parameter fingerprint, the class names and the input scale. \
        keras: OUTPUT.weights.h5 (kernels stored [in, out]) and OUTPUT.json (a Sequential of Dense layers). \
        npz: layers.<i>.weight [out, in] and layers.<i>.bias, as a PyTorch state_dict names them.
        """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case onnx, keras, npz }

    @Option(help: "onnx, keras or npz.")
    var format: Format
    @Argument(help: "The checkpoint to export.")
    var checkpoint: String
    @Option(help: "The output path without extension (default: the checkpoint's, beside it).")
    var output: String?
    @Flag(help: "onnx: the input is x_raw, raw bytes 0…255 as floats, multiplied by the dataset's scale in the graph.")
    var rawInput = false
    @Option(help: "onnx: the dataset whose input scale the metadata (and --raw-input) records (default: the checkpoint's).")
    var data: String?

    func validate() throws {
        if format != .onnx && (rawInput || data != nil) { throw ValidationError("--raw-input and --data apply only to --format onnx.") }
    }

    func run() throws {
        let saved = try guardedRead(checkpoint) { try Checkpoint.load(from: checkpoint) }
        let network = saved.network
        let base = output ?? String(checkpoint.dropLast(checkpoint.hasSuffix(".h5") ? 3 : 0))
        let suffixes = switch format { case .onnx: [".onnx"]; case .keras: [".weights.h5", ".json"]; case .npz: [".npz"] }
        for suffix in suffixes {
            try refuseOverwritingInputs(base + suffix, flag: "--output", inputs: [checkpoint])
        }
        switch format {
        case .onnx:
            let bytes = try ONNXExport.model(network, input: try onnxInput(saved), metadata: try onnxMetadata(saved))
            try FileSystem.writeAtomically(bytes, to: base + ".onnx")
            print("wrote \(base).onnx")
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

    // MARK: - ONNX

    /// The input scale of the dataset the model was trained on (nil: float features, or no dataset to read).
    private func inputScale(_ saved: Checkpoint) throws -> Float? {
        let path = data ?? saved.dataPath
        guard data != nil || FileSystem.exists(path) else { return nil }
        return try guardedRead(path) { try DatasetFile.featureScale(of: try HDF5File.open(path)) }
    }

    private func onnxInput(_ saved: Checkpoint) throws -> ONNXExport.Input {
        let scale = try inputScale(saved)
        guard rawInput else { return .scaled(scale: scale) }
        guard let scale else {
            throw ValidationError("--raw-input needs the dataset's byte scale, but \(data ?? saved.dataPath) "
                                  + (FileSystem.exists(data ?? saved.dataPath) ? "stores float features" : "cannot be read (give --data)") + ".")
        }
        return .raw(scale: scale)
    }

    /// metadata_props: what a user needs to run the model without guessing.
    private func onnxMetadata(_ saved: Checkpoint) throws -> [(String, String)] {
        let network = saved.network
        var metadata: [(String, String)] = [("backprop_version", Checkpoint.programVersion),
                                             ("parameter_fingerprint", network.fingerprint),
                                             ("layers", network.sizes.map(String.init).joined(separator: ","))]
        if let names = saved.classNames,
           let json = String(data: try JSONSerialization.data(withJSONObject: names), encoding: .utf8) {
            metadata.append(("class_names", json))
        }
        let scale = try inputScale(saved)
        if let scale { metadata.append(("input_scale", "\(scale)")) }
        metadata.append(("input", rawInput ? "x_raw: raw byte values 0…255 as float32; the graph multiplies them by input_scale"
                         : scale.map { "x: the features as training saw them, scale · byte (scale \($0))" } ?? "x: the features as stored (float32)"))
        metadata.append(("output", ONNXExport.outputName(network) == "probabilities" ? "probabilities: softmax over the classes" : "y: the outputs y_k"))
        return metadata
    }
}
