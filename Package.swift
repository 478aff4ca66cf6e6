// swift-tools-version:6.0
import PackageDescription

// MARK: - System libraries (Debian: libopenblas-dev liblapacke-dev libzmq3-dev zlib1g-dev libssl-dev)

let systemLibraries: [Target] = [
    .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas"),
    // No pkgConfig for libzmq: its .pc file pulls in krb5 flags that SwiftPM warns about;
    // header and library are on the default paths.
    .systemLibrary(name: "CZMQ", path: "Sources/CZMQ"),
    .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
    // OpenSSL libcrypto (Debian: libssl-dev) for SHA-256.
    .systemLibrary(name: "CCrypto", path: "Sources/CCrypto"),
    .systemLibrary(name: "CProcess", path: "Sources/CProcess"),
    // mmap, posix_fallocate and atomics on mapped memory (the transport's shared-memory slots).
    .systemLibrary(name: "CSharedMemory", path: "Sources/CSharedMemory"),
]

// MARK: - Modules (dependencies point down only)

let modules: [Target] = [
    // Tensors, BLAS/LAPACK, layers, losses, models.
    .target(name: "Engine", dependencies: ["CBLAS"]),
    // Data sets: readers, preprocessing, augmentation, synthetic data, fingerprints.
    .target(name: "Data", dependencies: ["Engine", "CZlib", "CCrypto"]),
    // The training loop: config, schedule, methods, optimiser, the executor and run-store seams.
    .target(
        name: "Training",
        dependencies: ["Engine", "Data", .product(name: "Yams", package: "Yams")]),
    // What outlives a process: run directories, checkpoints, safetensors, session setup.
    .target(name: "Runs", dependencies: ["Training", "Data", "Engine"]),
    // The paper's measurements and report: analysis, Table 1, SVG figures; experiments (plans of runs).
    .target(
        name: "Study",
        dependencies: ["Runs", "Training", "Data", "Engine", .product(name: "Yams", package: "Yams")]),
    // `ssgd bench`: sgemm peak and per-model throughput.
    .target(name: "Bench", dependencies: ["Training", "Data", "Engine"]),
    // The wire codec over byte frames; no transport in it.
    .target(name: "Wire", dependencies: ["Engine"]),
    // How frames travel: the transport protocols, ZeroMQ (CURVE, ZAP, key files), in-process.
    .target(name: "Transport", dependencies: ["Wire", "CZMQ", "CSharedMemory"]),
    // Membership, scheduling, reduction, status: the coordinator and the worker.
    .target(name: "Cluster", dependencies: ["Runs", "Training", "Data", "Engine", "Wire", "Transport", "CProcess"]),
    // Prometheus metrics of a run: the exporter (a TrainingObserver) and its /metrics HTTP responder.
    .target(
        name: "Monitoring",
        dependencies: ["Training", "Transport", .product(name: "Prometheus", package: "swift-prometheus")]),
    // The command-line interface (a library, so the test-only ssgd-faults can reuse it).
    .target(
        name: "SSGDCommands",
        dependencies: [
            "Engine", "Data", "Training", "Runs", "Study", "Bench", "Wire", "Transport", "Cluster", "Monitoring",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
    .executableTarget(name: "ssgd", dependencies: ["SSGDCommands"]),
]

// MARK: - Tests

let tests: [Target] = [
    // Enforces the module graph (docs/ARCHITECTURE.md) by reading Sources/*/ imports.
    .testTarget(name: "ArchitectureTests"),
    .target(name: "TestSupport", dependencies: ["Engine", "Data", "Training", "Runs", "Study"], path: "Tests/TestSupport"),
    .testTarget(name: "EngineTests", dependencies: ["Engine", "CBLAS", "TestSupport"]),
    .testTarget(
        name: "TrainingTests",
        dependencies: ["Training", "Data", "Runs", "Study", "Bench", "Engine", "CBLAS", "CZlib", "TestSupport"]),
    .testTarget(name: "WireTests", dependencies: ["Wire", "Engine"]),
    .testTarget(name: "TransportTests", dependencies: ["Transport", "CZMQ", "Wire", "Engine", "TestSupport"]),
    .testTarget(
        name: "ClusterTests",
        dependencies: ["Cluster", "Transport", "Wire", "Runs", "Training", "Data", "Engine", "TestSupport"]),
    .testTarget(name: "MonitoringTests", dependencies: ["Monitoring", "Training", "Data", "Engine", "TestSupport"]),
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
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: systemLibraries + modules + tests
)
