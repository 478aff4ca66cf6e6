import Engine
import Foundation
import Testing
import TestSupport

/// What changes a run's result (docs/distributed.md, "What changes a result"), with real
/// processes: the lane and worker counts, the transport (sockets or shared memory) and
/// run-control keys do not change a bit; the seed, a trajectory key and the OpenBLAS kernel do, and OPENBLAS_CORETYPE pins one
/// kernel for a whole cluster. (Worker restarts: FaultToleranceTests; 1–4 workers at one lane
/// each over both transports: EquivalenceTests.)
@Suite(.serialized) struct DeterminismTests {
    static let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "spectral", epochs: 1))

    /// `ssgd ARGUMENTS --config … --run-dir …` to the end; its summary.json.
    static func summary(_ arguments: [String], environment: [String: String] = [:]) throws -> [String: Any] {
        let run = Fixtures.temporaryDirectory("ssgd-determinism") + "/run"
        let result = try SSGDProcess.run(arguments + ["--config", config, "--run-dir", run], environment: environment)
        #expect(result.status == 0, "\(arguments): \(result.output)")
        return try #require(SSGDProcess.summary(runDirectory: run), "\(arguments): \(result.output)")
    }

    static func hash(_ summary: [String: Any]) -> String? { summary["parameters_sha256"] as? String }

    @Test func lanesWorkersTransportsAndRunControlKeysDoNotChangeTheResult() throws {
        let expected = try #require(Self.hash(try Self.summary(["train", "--threads", "1"])))
        let variants: [[String]] = [
            ["train", "--threads", "2"],
            ["launch", "--workers", "2", "--threads", "2", "--transport", "tcp"],
            ["launch", "--workers", "3", "--threads", "1", "--transport", "ipc"],
            ["train", "--threads", "1", "--set", "checkpoint_every_steps=1", "--set", "progress_seconds=0.01"],
        ]
        for arguments in variants {
            #expect(Self.hash(try Self.summary(arguments)) == expected, "\(arguments)")
        }
        // Launch's workers share this host, so their parameters and gradients go through shared
        // memory; with it turned off, through the sockets: the same bits either way.
        for (environment, shared) in [([String: String](), true), (["SSGD_SHM_DISABLE": "1"], false)] {
            let run = Fixtures.temporaryDirectory("ssgd-determinism-shm") + "/run"
            let result = try SSGDProcess.run(
                ["launch", "--workers", "2", "--threads", "1", "--config", Self.config, "--run-dir", run], environment: environment)
            #expect(result.status == 0, "\(result.output)")
            #expect(Self.lines(result.output, containing: "through shared memory") == (shared ? 2 : 0), "\(result.output)")
            #expect(Self.hash(try #require(SSGDProcess.summary(runDirectory: run))) == expected, "\(environment)")
        }
    }

    static func lines(_ output: String, containing text: String) -> Int {
        output.split(separator: "\n").filter { $0.contains(text) }.count
    }

    @Test func theSeedATrajectoryKeyAndTheOpenBLASKernelChangeIt() throws {
        let reference = try Self.summary(["train", "--threads", "1"])
        let expected = try #require(Self.hash(reference))
        #expect(reference["blas_core"] as? String == BLASThreads.coreName)
        #expect(Self.hash(try Self.summary(["train", "--threads", "1", "--seed", "4"])) != expected)
        #expect(Self.hash(try Self.summary(["train", "--threads", "1", "--set", "lr=0.04"])) != expected)

        // Another kernel, pinned for the process with OPENBLAS_CORETYPE: other bits.
        let other = BLASThreads.coreName == "Nehalem" ? "Sandybridge" : "Nehalem"
        let pinned = ["OPENBLAS_CORETYPE": other]
        let alone = try Self.summary(["train", "--threads", "1"], environment: pinned)
        #expect(alone["blas_core"] as? String == other)
        #expect(Self.hash(alone) != expected)
        // The same variable in the environment of every process of a cluster: the kernel check
        // passes and the result is that kernel's, whatever the worker count.
        let cluster = try Self.summary(["launch", "--workers", "2", "--threads", "1"], environment: pinned)
        #expect(cluster["blas_core"] as? String == other)
        #expect(cluster["worker_blas_cores"] as? [String] == [other])
        #expect(Self.hash(cluster) == Self.hash(alone))
    }
}
