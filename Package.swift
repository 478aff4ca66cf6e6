// swift-tools-version:6.0
import PackageDescription

// MARK: - System libraries (Debian: libopenblas-dev liblapacke-dev libzmq3-dev zlib1g-dev)

let systemLibraries: [Target] = [
    .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas"),
    // No pkgConfig for libzmq: its .pc file pulls in krb5 flags that SwiftPM warns about;
    // header and library are on the default paths.
    .systemLibrary(name: "CZMQ", path: "Sources/CZMQ"),
    .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
    .systemLibrary(name: "CProcess", path: "Sources/CProcess"),
]

// MARK: - Modules (dependencies point down only)

let modules: [Target] = [
    .target(name: "Engine", dependencies: ["CBLAS"]),
    .target(
        name: "Training",
        dependencies: ["Engine", "CZlib", .product(name: "Yams", package: "Yams")]),
    .target(name: "Cluster", dependencies: ["Training", "Engine", "CZMQ", "CProcess"]),
    .executableTarget(
        name: "ssgd",
        dependencies: [
            "Engine", "Training", "Cluster",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
]

// MARK: - Tests

let tests: [Target] = [
    .target(name: "TestSupport", dependencies: ["Engine", "Training"], path: "Tests/TestSupport"),
    .testTarget(name: "EngineTests", dependencies: ["Engine", "CBLAS", "TestSupport"]),
    .testTarget(name: "TrainingTests", dependencies: ["Training", "Engine", "CBLAS", "CZlib", "TestSupport"]),
    .testTarget(name: "ClusterTests", dependencies: ["Cluster", "Training", "Engine", "CZMQ", "TestSupport"]),
]

let package = Package(
    name: "ssgd",
    platforms: [.macOS(.v13)],
    products: [.executable(name: "ssgd", targets: ["ssgd"])],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: systemLibraries + modules + tests
)
