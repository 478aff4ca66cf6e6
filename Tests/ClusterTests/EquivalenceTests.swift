import Foundation
import Testing
import TestSupport

/// `train` in one process and `launch` with 1–4 worker processes end with bit-identical
/// parameters (DESIGN §4), with one lane per process.
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

/// The result is a function of config, seed and data only (issue 8): `train` with 1, 2 or 3
/// lanes, `launch` with 2 or 3 workers of 1 or 2 lanes, and a coordinator whose two workers run
/// different lane counts all end with the same parameters — for the MLP and a ghost-BN
/// DenseNet, for a batch of six units (cut into two chunks each) and a batch of one unit (cut
/// into four chunks, more chunks than lanes); and a DenseNet wide enough for Winograd layers.
@Suite(.serialized) struct LaneEquivalenceTests {
    static let cases: [(model: String, batch: String)] = [
        ("mlp", "batch_size: 96"), ("densenet", "batch_size: 96"),
        ("mlp", "batch_size: 16\nchunk_size: 4"), ("densenet", "batch_size: 16\nchunk_size: 4"),
        ("densenet-winograd", "batch_size: 16\nchunk_size: 4"),
        // One MLP unit, automatic chunking: its GEMMs are split into 2 fixed pieces instead.
        ("mlp", "batch_size: 16"),
    ]

    @Test(arguments: cases)
    func everyLaneAndWorkerLayoutGivesTheSameBits(model: String, batch: String) throws {
        let text = ClusterFixtures.config(model: model, method: "spectral", epochs: 1)
            .replacingOccurrences(of: "batch_size: 96\n", with: "") + "\n" + batch + "\nmax_steps: 6\n"
        let config = ClusterFixtures.write(text)
        func hash(_ arguments: [String], _ label: String) throws -> String? {
            let run = Fixtures.temporaryDirectory("ssgd-lanes") + "/run"
            let result = try SSGDProcess.run(arguments + ["--run-dir", run], timeout: 180)
            #expect(result.status == 0, "\(label): \(result.output)")
            return SSGDProcess.parametersHash(runDirectory: run)
        }
        // The first train run also says how its step is cut.
        let announced = Fixtures.temporaryDirectory("ssgd-lanes") + "/run"
        let first = try SSGDProcess.run(["train", "--config", config, "--threads", "1", "--run-dir", announced], timeout: 180)
        let cut = batch.contains("chunk_size: 4") ? "each cut into 4 chunks of 4"
            : batch == "batch_size: 16" ? "each whole, its GEMMs in 2 fixed pieces" : "each whole"
        let units = batch.contains("batch_size: 96") ? 6 : 1
        #expect(first.output.contains("each step: \(units) unit(s) of 16 samples, \(cut)\n"), "\(first.output)")
        let expected = try #require(try hash(["train", "--config", config, "--threads", "1"], "train 1 lane"))
        #expect(SSGDProcess.parametersHash(runDirectory: announced) == expected)
        for lanes in [2, 3] {
            #expect(try hash(["train", "--config", config, "--threads", String(lanes)], "train \(lanes) lanes") == expected,
                    "\(model) \(batch): train with \(lanes) lanes differs from 1 lane")
        }
        for (workers, lanes) in [(2, 2), (3, 1)] {
            let label = "launch \(workers) workers × \(lanes) lanes"
            #expect(try hash(["launch", "--config", config, "--workers", String(workers), "--threads", String(lanes)], label) == expected,
                    "\(model) \(batch): \(label) differs from train")
        }
        // One coordinator, two workers with different lane counts.
        let endpoint = ClusterFixtures.ipcEndpoint()
        let run = Fixtures.temporaryDirectory("ssgd-mixed") + "/run"
        let coordinator = try SSGDProcess(["coordinator", "--config", config, "--run-dir", run, "--bind", endpoint, "--workers", "2", "--threads", "1"])
        let one = try SSGDProcess(["worker", "--connect", endpoint, "--threads", "1", "--name", "one-lane"])
        let three = try SSGDProcess(["worker", "--connect", endpoint, "--threads", "3", "--name", "three-lanes"])
        #expect(coordinator.wait(timeout: 180) == 0, "\(coordinator.output)")
        #expect(one.wait(timeout: 30) == 0 && three.wait(timeout: 30) == 0)
        #expect(three.output.contains("3 lane(s)"), "\(three.output)")
        #expect(SSGDProcess.parametersHash(runDirectory: run) == expected, "\(model) \(batch): mixed lane counts differ from train")
    }
}
