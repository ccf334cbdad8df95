// swift-tools-version:6.0
// Backprop: multi-layer perceptrons trained by hand-derived backpropagation,
// data-parallel on threads, with HDF5 datasets and checkpoints.
import PackageDescription

let package = Package(
    name: "Backprop",
    products: [
        .library(name: "BackpropCore", targets: ["BackpropCore"]),
        .library(name: "BackpropHDF5", targets: ["BackpropHDF5"]),
        // StorageError, which BackpropHDF5's readers and writers throw, and the checked file operations.
        .library(name: "BackpropIO", targets: ["BackpropIO"]),
        // The bench's yardstick (Benchmarks/ uses it): OpenBLAS's sgemm beside the own kernel.
        .library(name: "BackpropOpenBLAS", targets: ["BackpropOpenBLAS"]),
        .executable(name: "backprop", targets: ["BackpropCLI"]),
        .executable(name: "backprop-fuzz", targets: ["BackpropFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // The tests' approximate equality (RealModule's isApproximatelyEqual).
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        // `swift package generate-documentation` for the library products.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        // ONNX export: the protocol-buffer runtime (the generated code is committed; no plugin at build time).
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // MARK: - C libraries from Debian, at the bottom of the graph
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .target(name: "CHDF5Shim", dependencies: ["CHDF5"]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPrefetch"),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "CMPIShim", dependencies: ["CMPI"]),
        // Backprop's own fp32 matrix kernel (AVX-512, AVX2) and the CPU and
        // atomic primitives Swift cannot reach.
        .target(name: "CGemm"),

        // MARK: - Swift modules: CLI -> HDF5 -> Core, IO; CLI -> OpenBLAS (the bench's yardstick) -> Core; CLI -> TensorBoard -> IO; CLI -> Config (settings files), MPI (other processes)
        .target(name: "BackpropCore", dependencies: ["CGemm", "CPrefetch"]),
        // OpenBLAS, the bench's yardstick: no library user links it.
        .target(name: "BackpropOpenBLAS", dependencies: ["BackpropCore", "CBLAS"]),
        // Files without libhdf5: checked system calls, atomic and no-follow writes, StorageError.
        .target(name: "BackpropIO"),
        .target(name: "BackpropHDF5", dependencies: ["BackpropCore", "BackpropIO", "CHDF5Shim", "CZlib"]),
        .target(name: "BackpropConfig", dependencies: [.product(name: "Yams", package: "Yams")]),
        // The job's other processes over Open MPI (mpirun), for DistributedStep.
        .target(name: "BackpropMPI", dependencies: ["BackpropCore", "CMPIShim"]),
        // Models as ONNX (onnx.proto, generated into onnx.pb.swift with protoc-gen-swift).
        .target(name: "BackpropONNX", dependencies: ["BackpropCore", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["onnx.proto"]),
        // TensorBoard event files (events.proto, generated into events.pb.swift).
        .target(name: "BackpropTensorBoard", dependencies: ["BackpropIO", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["events.proto"]),
        .target(name: "BackpropTestSupport", dependencies: ["BackpropCore", .product(name: "RealModule", package: "swift-numerics")]),
        .executableTarget(
            name: "BackpropCLI",
            dependencies: [
                "BackpropCore", "BackpropIO", "BackpropHDF5", "BackpropConfig", "BackpropMPI", "BackpropONNX", "BackpropTensorBoard", "BackpropOpenBLAS", "CGemm",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The readers on arbitrary bytes: a replay tool, or with -DFUZZING a
        // libFuzzer target (Fuzz/run.sh).
        .executableTarget(name: "BackpropFuzz", dependencies: ["BackpropCore", "BackpropHDF5", "BackpropConfig"]),

        // MARK: - Tests
        .testTarget(
            name: "BackpropCoreTests",
            dependencies: ["BackpropCore", "BackpropTestSupport"],
            resources: [.copy("References")]
        ),
        .testTarget(name: "BackpropHDF5Tests", dependencies: ["BackpropIO", "BackpropHDF5", "BackpropTensorBoard", "BackpropTestSupport"]),
        // Depends on the executable so that `swift test` builds `backprop` first.
        .testTarget(name: "BackpropCLITests", dependencies: ["BackpropCLI", "BackpropConfig", "BackpropIO", "BackpropHDF5", "BackpropTestSupport"],
                    exclude: ["check_export.py", "check_onnx.py", "check_tensorboard.py"]),  // run by the tests with python3, from the source tree
    ],
    swiftLanguageModes: [.v6]
)
