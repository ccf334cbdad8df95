import BackpropCore
import Foundation
import SwiftProtobuf

/// A trained network as an ONNX model (IR version `irVersion`, the default
/// domain's opset `opsetVersion`), which ONNX Runtime, OpenVINO, TensorRT and
/// the major frameworks load and run.
///
/// The graph, for layers l = 0 … L−1 with weights stored [out, in] as in the
/// checkpoint:
///
///     x [batch, n_0]                      (or x_raw, multiplied by the input scale first)
///     a_l = Gemm(z_l, W_l, b_l, transB=1) a_j = Σ_i w_ji z_i + b_j
///     z_{l+1} = h(a_l)                    Relu, LeakyRelu(α = 0.01), Tanh, Sigmoid; identity: no node
///     y = Softmax(a_{L−1}, axis = −1)     for a softmax output: the class probabilities
///
/// It is written through swift-protobuf from Backprop's own minimal
/// `onnx.proto` (the specification's messages and field numbers).
public enum ONNXExport {
    /// IR version 8 (ONNX 1.10+): read by every ONNX Runtime release since 1.10.
    public static let irVersion: Int64 = 8
    /// Opset 17 of the default domain (ONNX 1.12): every operator used here is defined there.
    public static let opsetVersion: Int64 = 17

    /// What a model's input expects, as its metadata says.
    public enum Input: Sendable, Equatable {
        /// The features as training saw them (for a byte dataset, scale · byte).
        case scaled(scale: Float?)
        /// Raw byte values as floats (0…255); the graph multiplies them by `scale` first.
        case raw(scale: Float)
    }

    /// The serialized model.
    /// - Parameters:
    ///   - network: the trained network.
    ///   - input: what the graph's input holds.
    ///   - metadata: extra `metadata_props` (Backprop's version, the fingerprint, class names…), in order.
    public static func model(_ network: Network<Float>, input: Input, metadata: [(String, String)]) throws -> [UInt8] {
        var graph = Onnx_GraphProto()
        graph.name = "backprop-mlp"
        var current: String
        switch input {
        case .scaled:
            current = "x"
            graph.input = [tensorInfo("x", features: network.sizes[0])]
        case .raw(let scale):
            graph.input = [tensorInfo("x_raw", features: network.sizes[0])]
            graph.initializer.append(tensor("input_scale", dims: [], values: [scale]))
            graph.node.append(node("Mul", inputs: ["x_raw", "input_scale"], output: "x"))
            current = "x"
        }
        for (l, layer) in network.layers.enumerated() {
            let weight = "layers.\(l).weight", bias = "layers.\(l).bias"
            let parameters = network.parameters
            graph.initializer.append(tensor(weight, dims: [layer.outputCount, layer.inputCount],
                                            values: Array(parameters[layer.weightRange])))
            graph.initializer.append(tensor(bias, dims: [layer.outputCount], values: Array(parameters[layer.biasRange])))
            let a = "a\(l)"
            graph.node.append(node("Gemm", inputs: [current, weight, bias], output: a, attributes: [integer("transB", 1)]))
            current = a
            let z = l == network.layers.count - 1 ? outputName(network) : "z\(l + 1)"
            switch layer.activation {
            case .identity:
                graph.node.append(node("Identity", inputs: [a], output: z))
            case .relu:
                graph.node.append(node("Relu", inputs: [a], output: z))
            case .leakyRelu:
                graph.node.append(node("LeakyRelu", inputs: [a], output: z, attributes: [real("alpha", Float(Activation.leakySlope))]))
            case .tanh:
                graph.node.append(node("Tanh", inputs: [a], output: z))
            case .sigmoid:
                graph.node.append(node("Sigmoid", inputs: [a], output: z))
            case .softmax:
                graph.node.append(node("Softmax", inputs: [a], output: z, attributes: [integer("axis", -1)]))
            }
            current = z
        }
        graph.output = [tensorInfo(current, features: network.outputCount)]

        var model = Onnx_ModelProto()
        model.irVersion = irVersion
        model.producerName = "backprop"
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = opsetVersion
        model.opsetImport = [opset]
        model.docString = "A multi-layer perceptron trained by Backprop: \(network.sizes.map(String.init).joined(separator: "-"))."
        model.graph = graph
        model.metadataProps = metadata.map { key, value in
            var entry = Onnx_StringStringEntryProto()
            entry.key = key
            entry.value = value
            return entry
        }
        return Array(try model.serializedBytes() as [UInt8])
    }

    /// The graph's output: the class probabilities after a softmax, else y.
    public static func outputName(_ network: Network<Float>) -> String {
        network.layers.last?.activation == .softmax ? "probabilities" : "y"
    }

    // MARK: - Messages

    private static func tensorInfo(_ name: String, features: Int) -> Onnx_ValueInfoProto {
        var batch = Onnx_TensorShapeProto.Dimension()
        batch.dimParam = "batch"
        var width = Onnx_TensorShapeProto.Dimension()
        width.dimValue = Int64(features)
        var type = Onnx_TypeProto.Tensor()
        type.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        type.shape.dim = [batch, width]
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.type.tensorType = type
        return info
    }

    /// A float32 tensor: its values as little-endian IEEE 754 bytes, row-major.
    private static func tensor(_ name: String, dims: [Int], values: [Float]) -> Onnx_TensorProto {
        var tensor = Onnx_TensorProto()
        tensor.name = name
        tensor.dims = dims.map(Int64.init)
        tensor.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        var bytes = Data(capacity: 4 * values.count)
        for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        tensor.rawData = bytes
        return tensor
    }

    private static func node(_ op: String, inputs: [String], output: String, attributes: [Onnx_AttributeProto] = []) -> Onnx_NodeProto {
        var node = Onnx_NodeProto()
        node.opType = op
        node.name = output
        node.input = inputs
        node.output = [output]
        node.attribute = attributes
        return node
    }

    /// A named attribute of `type`, its value set by `set`.
    private static func attribute(_ name: String, _ type: Onnx_AttributeProto.AttributeType,
                                  _ set: (inout Onnx_AttributeProto) -> Void) -> Onnx_AttributeProto {
        var attribute = Onnx_AttributeProto()
        attribute.name = name
        attribute.type = type
        set(&attribute)
        return attribute
    }

    private static func integer(_ name: String, _ value: Int64) -> Onnx_AttributeProto { attribute(name, .int) { $0.i = value } }

    private static func real(_ name: String, _ value: Float) -> Onnx_AttributeProto { attribute(name, .float) { $0.f = value } }
}
