// swift-tools-version:6.0
import PackageDescription

// MARK: - System libraries (found through pkg-config; Debian: libopenblas-dev, libopenmpi-dev)

let systemLibraries: [Target] = [
    .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                   providers: [.apt(["libopenblas-dev"])]),
    .systemLibrary(name: "CMPI", pkgConfig: "ompi-c",
                   providers: [.apt(["libopenmpi-dev"])]),
]

// MARK: - C shim: the few MPI calls we need, so that no MPI macro reaches Swift

let shims: [Target] = [
    .target(name: "CMPIShim", dependencies: ["CMPI"]),
    // The CUDA backend's C ABI and its run-time loader: libdpcuda.so (scripts/build-cuda.sh) is
    // opened with dlopen, so the package builds and tests without CUDA.
    .target(name: "CDPCUDA", linkerSettings: [.linkedLibrary("dl")]),
]

// MARK: - Libraries, by concern

let libraries: [Target] = [
    .target(name: "DPTensor"),
    // Without -fno-math-errno, Float.squareRoot() goes through C's sqrtf, which may set errno,
    // so a vector of square roots (AdamW's) compiles to eight scalar calls behind branches.
    .target(name: "DPBackend", dependencies: ["DPTensor", "COpenBLAS", "CDPCUDA"],
            swiftSettings: [.unsafeFlags(["-Xcc", "-fno-math-errno"])]),
    .target(name: "DPModels", dependencies: ["DPTensor", "DPBackend"]),
    .target(name: "DPTrain", dependencies: ["DPTensor", "DPBackend", "DPModels", "DPDistributed", "DPData", "DPTokenizers"]),
    // Users' files: CSV/TSV/JSONL tables and YAML/JSON config files.
    .target(name: "DPData", dependencies: [.product(name: "Yams", package: "Yams")]),
    // tokenizer.json pipelines, identical to the Hugging Face `tokenizers` library.
    .target(name: "DPTokenizers", dependencies: ["DPData"]),
    // Ranks and collectives: MPI through the shim, or a single process.
    .target(name: "DPDistributed", dependencies: ["CMPIShim"]),
]

// MARK: - The executable stays thin

let executables: [Target] = [
    .executableTarget(name: "dp-train", dependencies: [
        "DPTrain", "DPModels", "DPBackend", "DPData", "DPTokenizers", "DPDistributed",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
    ]),
]

// MARK: - Tests

let tests: [Target] = [
    .target(name: "DPTestSupport", dependencies: ["DPTensor", "DPBackend", "DPModels"],
            path: "Tests/DPTestSupport"),
    .testTarget(name: "DPBackendTests", dependencies: ["DPBackend", "DPTensor", "DPTestSupport"]),
    .testTarget(name: "DPModelsTests", dependencies: ["DPModels", "DPTrain", "DPTestSupport"],
                resources: [.copy("Golden")]),
    .testTarget(name: "DPShimTests", dependencies: ["CMPIShim"]),
    // CPU against CUDA, op by op and for a whole training step; skipped without a GPU.
    .testTarget(name: "DPCUDATests", dependencies: ["DPTensor", "DPBackend", "DPModels", "DPTrain", "DPTestSupport"]),
    .testTarget(name: "DPDataTests", dependencies: ["DPData", "DPTestSupport"]),
    .testTarget(name: "DPTokenizersTests", dependencies: ["DPTokenizers", "DPTestSupport"]),
    .testTarget(name: "DPTrainTests", dependencies: ["DPTrain", "DPDistributed", "DPData", "DPTensor", "DPTestSupport"]),
]

let package = Package(
    name: "dp-train",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dp-train", targets: ["dp-train"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: systemLibraries + shims + libraries + executables + tests,
    // Swift 5 mode: the kernels share raw buffers across threads by design, which Swift 6's
    // Sendable checking cannot express without wrapping every pointer.
    swiftLanguageModes: [.v5]
)
