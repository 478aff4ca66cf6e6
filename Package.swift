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
    // The wire codec over byte frames; no transport in it.
    .target(name: "Wire", dependencies: ["Engine"]),
    // How frames travel: the transport protocols, ZeroMQ (CURVE, ZAP, key files), in-process.
    .target(name: "Transport", dependencies: ["Wire", "CZMQ"]),
    .target(name: "Cluster", dependencies: ["Training", "Engine", "Wire", "Transport", "CProcess"]),
    .target(
        name: "SSGDCommands",
        dependencies: [
            "Engine", "Training", "Wire", "Transport", "Cluster",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
    .executableTarget(name: "ssgd", dependencies: ["SSGDCommands"]),
]

// MARK: - Tests

let tests: [Target] = [
    .target(name: "TestSupport", dependencies: ["Engine", "Training"], path: "Tests/TestSupport"),
    .testTarget(name: "EngineTests", dependencies: ["Engine", "CBLAS", "TestSupport"]),
    .testTarget(name: "TrainingTests", dependencies: ["Training", "Engine", "CBLAS", "CZlib", "TestSupport"]),
    .testTarget(name: "WireTests", dependencies: ["Wire", "Engine"]),
    .testTarget(name: "TransportTests", dependencies: ["Transport", "Wire", "Engine", "TestSupport"]),
    .testTarget(name: "ClusterTests", dependencies: ["Cluster", "Transport", "Wire", "Training", "Engine", "TestSupport"]),
    // `ssgd` with the test-only fault hooks, for the fault-tolerance tests (not a product).
    .executableTarget(
        name: "ssgd-faults", dependencies: ["SSGDCommands", "Cluster", "Training", "Wire"], path: "Tests/FaultInjection"),
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
