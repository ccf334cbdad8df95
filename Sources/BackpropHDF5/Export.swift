import BackpropCore
import BackpropIO
import CZlib
import Foundation

/// A trained network in the formats other tools read.
public enum Export {
    // MARK: - Keras 3

    /// Keras 3 weights (`model.weights.h5`): /layers/<name>/vars/0 the kernel
    /// [in, out] (Wᵀ: Keras computes z·K), /layers/<name>/vars/1 the bias,
    /// for Dense layers named dense, dense_1, … in order.
    public static func kerasWeights(_ network: Network<Float>, to path: String) throws(StorageError) {
        try HDF5File.createAtomically(path) { (file) throws(StorageError) in
            try file.createGroup("/vars")
            for (l, layer) in network.layers.enumerated() {
                let name = l == 0 ? "dense" : "dense_\(l)"
                let w = Array(network.parameters[layer.weightRange])
                var kernel = [Float](repeating: 0, count: w.count)
                for j in 0..<layer.outputCount {
                    for i in 0..<layer.inputCount { kernel[i * layer.outputCount + j] = w[j * layer.inputCount + i] }
                }
                try file.write(kernel, shape: [layer.inputCount, layer.outputCount], to: "/layers/\(name)/vars/0")
                try file.write(Array(network.parameters[layer.biasRange]), shape: [layer.outputCount], to: "/layers/\(name)/vars/1")
            }
        }
    }

    /// The matching Keras 3 model JSON (`Sequential` of `Dense` layers; a
    /// leaky ReLU becomes a linear Dense and a `LeakyReLU(0.01)` layer), as
    /// `keras.models.model_from_json` reads it: each object with the module
    /// its class is found in and no registered name (Keras 3 needs both).
    public static func kerasModelJSON(_ network: Network<Float>) -> String {
        func object(_ module: String, _ className: String, _ config: String) -> String {
            #"{"module": "\#(module)", "class_name": "\#(className)", "config": {\#(config)}, "registered_name": null}"#
        }
        var layers = [object("keras.layers", "InputLayer", #""batch_shape": [null, \#(network.inputCount)], "dtype": "float32", "name": "input_layer""#)]
        for (l, layer) in network.layers.enumerated() {
            let name = l == 0 ? "dense" : "dense_\(l)"
            let activation: String
            switch layer.activation {
            case .identity, .leakyRelu: activation = "linear"
            case .relu: activation = "relu"
            case .tanh: activation = "tanh"
            case .sigmoid: activation = "sigmoid"
            case .softmax: activation = "softmax"
            }
            layers.append(object("keras.layers", "Dense",
                                 #""name": "\#(name)", "units": \#(layer.outputCount), "activation": "\#(activation)", "use_bias": true, "dtype": "float32""#))
            if layer.activation == .leakyRelu {
                layers.append(object("keras.layers", "LeakyReLU", #""name": "leaky_re_lu_\#(l)", "negative_slope": 0.01"#))
            }
        }
        let sequential = object("keras", "Sequential", #""name": "sequential", "layers": [\#n  "# + layers.joined(separator: ",\n  ") + "\n]")
        return String(sequential.dropLast()) + #", "backprop": {"loss": "\#(network.loss.rawValue)", "sizes": \#(network.sizes)}}"# + "\n"
    }

    // MARK: - NumPy

    /// A NumPy `.npz` (a zip of `.npy` files, stored): `layers.<i>.weight`
    /// float32 [out, in] and `layers.<i>.bias` float32 [out], as in a PyTorch
    /// state_dict of nn.Linear layers.
    public static func npz(_ network: Network<Float>, to path: String) throws(StorageError) {
        var archive = ZipWriter()
        for (l, layer) in network.layers.enumerated() {
            archive.add("layers.\(l).weight.npy", npy(Array(network.parameters[layer.weightRange]), shape: [layer.outputCount, layer.inputCount]))
            archive.add("layers.\(l).bias.npy", npy(Array(network.parameters[layer.biasRange]), shape: [layer.outputCount]))
        }
        let bytes = archive.finish()
        try FileSystem.writeAtomically(bytes, to: path)
    }

    /// A `.npy` file (format 1.0) of little-endian float32 values.
    static func npy(_ values: [Float], shape: [Int]) -> [UInt8] {
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(dims), }"
        // Magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64, ending in \n.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        bytes += [UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        bytes += Array(header.utf8)
        values.withUnsafeBytes { bytes += $0 }
        return bytes
    }
}

/// The smallest zip writer that NumPy reads: stored (uncompressed) entries,
/// CRC-32 from zlib, a central directory.
struct ZipWriter {
    private var data: [UInt8] = []
    private var directory: [UInt8] = []
    private var count = 0

    mutating func add(_ name: String, _ content: [UInt8]) {
        let crc = content.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
        let offset = UInt32(data.count)
        let nameBytes = Array(name.utf8)
        func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(v >> (8 * $0) & 0xFF) } }
        let size = le32(UInt32(content.count))
        let common = le16(20) + le16(0) + le16(0) + le16(0) + le16(0x21) + le32(crc) + size + size + le16(nameBytes.count)
        data += le32(0x0403_4B50) + common + le16(0) + nameBytes + content
        directory += le32(0x0201_4B50) + le16(20) + common + le16(0) + le16(0) + le16(0) + le16(0) + le32(0) + le32(offset) + nameBytes
        count += 1
    }

    func finish() -> [UInt8] {
        func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8(v >> (8 * $0) & 0xFF) } }
        return data + directory + le32(0x0605_4B50) + le16(0) + le16(0) + le16(count) + le16(count)
            + le32(directory.count) + le32(data.count) + le16(0)
    }
}
