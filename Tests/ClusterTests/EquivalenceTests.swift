import Foundation
import Testing
import TestSupport

/// `train` in one process and `launch` with 1–4 worker processes end with bit-identical
/// parameters (DESIGN §4), with one BLAS thread per process.
@Suite(.serialized) struct EquivalenceTests {
    static let cases: [(String, String)] = [
        ("mlp", "vanilla"), ("mlp", "spectral"), ("mlp", "adversarial"),
        ("densenet", "vanilla"), ("densenet", "spectral"), ("densenet", "adversarial"),
    ]

    @Test(arguments: cases)
    func launchWithOneToFourWorkersMatchesSingleProcessBitForBit(model: String, method: String) throws {
        let config = ClusterFixtures.write(ClusterFixtures.config(model: model, method: method))
        let reference = Fixtures.temporaryDirectory("ssgd-train")
        let single = try SSGDProcess.run(["train", "--config", config, "--run-dir", reference + "/run", "--threads", "1", "--max-steps", "7"])
        #expect(single.status == 0, "\(single.output)")
        let expected = try #require(SSGDProcess.parametersHash(runDirectory: reference + "/run"))
        for workers in 1...4 {
            let directory = Fixtures.temporaryDirectory("ssgd-launch") + "/run"
            let transport = workers % 2 == 0 ? "tcp" : "ipc"
            let launched = try SSGDProcess.run([
                "launch", "--config", config, "--run-dir", directory, "--threads", "1", "--max-steps", "7",
                "--workers", String(workers), "--transport", transport,
            ])
            #expect(launched.status == 0, "\(workers) workers: \(launched.output)")
            #expect(SSGDProcess.parametersHash(runDirectory: directory) == expected,
                    "\(model)/\(method) with \(workers) worker(s) over \(transport) differs from train")
            #expect(launched.output.contains("\(workers) worker(s)"))
            // No worker outlives a successful launch.
            let pids = SSGDProcess.workerPIDs(in: launched.output)
            #expect(pids.count == workers)
            #expect(pids.allSatisfy { !SSGDProcess.isAlive($0) })
        }
    }
}
