// Every reader of outside input on arbitrary bytes: the dataset and
// checkpoint readers (HDF5), and the CSV, NPY, IDX (plain or gzip) and
// configuration-file parsers.
//
// Built normally (`swift build --product backprop-fuzz`), this is a replay
// tool: `backprop-fuzz FILE…` runs each file through the readers of its door
// (from its name: `csv-…`, `npy-…`, `idx-…`, `config-…`, else HDF5) and
// prints what each said. Built with `-DFUZZING -sanitize=fuzzer,address`
// (Fuzz/run.sh), it is a libFuzzer target for the door named by
// BACKPROP_FUZZ_DOOR (default hdf5). A reader may refuse an input with its
// error; it must never crash, hang or touch memory it does not own.
import BackpropConfig
import BackpropCore
import BackpropHDF5
import Foundation

/// The kinds of input, each with the readers that take it.
enum Door: String, CaseIterable {
    case hdf5, csv, npy, idx, config

    /// The door a replayed file belongs to, from its name's prefix.
    init(file: String) {
        let name = URL(fileURLWithPath: file).lastPathComponent
        self = Door.allCases.first { name.hasPrefix("\($0.rawValue)-") } ?? .hdf5
    }

    /// Runs this door's readers on `bytes`; returns what each said.
    func read(_ bytes: [UInt8], name: String) -> [String] {
        switch self {
        case .hdf5: return readBoth(bytes, name: name)
        case .csv:
            return [LearningTask.classification, .regression].map { task in
                describe("csv \(task.rawValue)") {
                    let dataset = try TableImport.csv(Data(bytes), path: name, header: nil, task: task)
                    return "\(dataset.count) rows of \(dataset.featureCount) features"
                }
            }
        case .npy:
            return [describe("npy") { "shape \(try NPYArray.parse(bytes, path: name).shape)" }]
        case .idx:
            // zlib reads from a file: one per process, rewritten for each input.
            let path = NSTemporaryDirectory() + "/backprop-fuzz-\(getpid()).idx"
            return [describe("idx") {
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                return "shape \(try IDXArray.read(path).shape)"
            }]
        case .config:
            return ["json", "yaml"].map { suffix in
                describe("config .\(suffix)") { "\(try SettingsFile.flags(parsing: Data(bytes), path: name + "." + suffix).count) flags" }
            }
        }
    }
}

/// "label: result", or "label: error" for a reader that refused the input.
func describe(_ label: String, _ body: () throws -> String) -> String {
    do {
        return "\(label): \(try body())"
    } catch {
        return "\(label): \(error)"
    }
}

/// Runs every HDF5 reader (dataset, checkpoint, teacher) on `bytes`; returns what each said.
func readBoth(_ bytes: [UInt8], name: String) -> [String] {
    [describe("dataset") {
        let (train, test) = try DatasetFile.load(HDF5File.open(image: bytes, name: name))
        return "\(train.count) train and \(test.count) test samples of \(train.featureCount) features"
    }, describe("checkpoint") {
        let checkpoint = try Checkpoint.load(from: HDF5File.open(image: bytes, name: name))
        return "\(checkpoint.network.sizes.map(String.init).joined(separator: "-")) at step \(checkpoint.position.step)"
    }, describe("teacher") {
        let teacher = try TeacherFile.read(from: HDF5File.open(image: bytes, name: name))
        return "\(teacher.count) rows of \(teacher.classes) classes from \(teacher.members.count) members"
    }]
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
            let door = ProcessInfo.processInfo.environment["BACKPROP_FUZZ_DOOR"].flatMap(Door.init(rawValue:)) ?? .hdf5
            _ = door.read(bytes, name: "fuzz-input")
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
            print("usage: backprop-fuzz FILE… (replays fuzzer inputs through the readers of their door: csv-…, npy-…, idx-…, config-…, else HDF5)")
        }
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else {
                print("\(path): cannot read")
                continue
            }
            for line in Door(file: path).read([UInt8](data), name: path) { print("\(path): \(line)") }
        }
    }
}
#endif
