// swift-tools-version:6.0
// A package that uses Backprop as a library, as the DocC article "Training
// the reference model from Swift" shows: it depends on the three library
// products by path and runs the article's code (run.sh builds and runs it,
// and checks that the binary links no OpenBLAS).
import PackageDescription

let package = Package(
    name: "LibraryUser",
    dependencies: [
        .package(name: "Backprop", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "LibraryUser",
            dependencies: [
                .product(name: "BackpropCore", package: "Backprop"),
                .product(name: "BackpropHDF5", package: "Backprop"),
                .product(name: "BackpropIO", package: "Backprop"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
