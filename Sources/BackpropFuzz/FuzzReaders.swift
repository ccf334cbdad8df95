// The dataset and checkpoint readers on arbitrary bytes.
//
// Built normally (`swift build --product backprop-fuzz`), this is a replay
// tool: `backprop-fuzz FILE…` runs each file through both readers and prints
// the error each one gives. Built with `-DFUZZING -sanitize=fuzzer,address`
// (Fuzz/run.sh), it is a libFuzzer target: every input is opened as an HDF5
// file image in memory and read by both validating readers. A reader may
// refuse an input with a StorageError; it must never crash, hang or touch
// memory it does not own.
import BackpropCore
import BackpropHDF5
import Foundation

/// Runs both readers on `bytes`; returns what each said.
func readBoth(_ bytes: [UInt8], name: String) -> [String] {
    var outcomes: [String] = []
    do {
        let (train, test) = try DatasetFile.load(HDF5File.open(image: bytes, name: name))
        outcomes.append("dataset: \(train.count) train and \(test.count) test samples of \(train.featureCount) features")
    } catch {
        outcomes.append("dataset: \(error.description)")
    }
    do {
        let checkpoint = try Checkpoint.load(from: HDF5File.open(image: bytes, name: name))
        outcomes.append("checkpoint: \(checkpoint.network.sizes.map(String.init).joined(separator: "-")) at step \(checkpoint.position.step)")
    } catch {
        outcomes.append("checkpoint: \(error.description)")
    }
    return outcomes
}

#if FUZZING
/// libFuzzer's entry for programs that have their own main (SwiftPM gives
/// every executable one).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@main
enum Fuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
            _ = readBoth(bytes, name: "fuzz-input")
            return 0
        })
    }
}
#else
@main
enum Replay {
    static func main() {
        let paths = CommandLine.arguments.dropFirst()
        if paths.isEmpty {
            print("usage: backprop-fuzz FILE… (replays fuzzer inputs through the dataset and checkpoint readers)")
        }
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else {
                print("\(path): cannot read")
                continue
            }
            for line in readBoth([UInt8](data), name: path) { print("\(path): \(line)") }
        }
    }
}
#endif
