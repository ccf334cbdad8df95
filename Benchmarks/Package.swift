// swift-tools-version:6.1
// Benchmarks for Backprop on ordo-one/package-benchmark (its own package, so
// that `swift test` at the root never builds it). Run from this directory:
//   swift package benchmark                         # everything
//   swift package benchmark --filter "checkpoint.*" # one group
//   swift package benchmark thresholds check --path Thresholds
import PackageDescription

let package = Package(
    name: "BackpropBenchmarks",
    dependencies: [
        .package(name: "Backprop", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "BackpropBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "BackpropCore", package: "Backprop"),
                .product(name: "BackpropHDF5", package: "Backprop"),
                .product(name: "BackpropOpenBLAS", package: "Backprop"),
            ],
            path: "Benchmarks/BackpropBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
